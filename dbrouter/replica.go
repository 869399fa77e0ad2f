package dbrouter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// A replica's states.
const (
	stateUp      int32 = iota // in the read pool
	stateLagging              // reachable, but too far behind
	stateDown                 // quarantined: failed FailThreshold times in a row
)

// ReplicaState is where a replica stands in the read pool.
type ReplicaState int32

// The states a replica is in.
const (
	// Up: the replica takes reads.
	Up = ReplicaState(stateUp)
	// Lagging: the replica is further behind than MaxLag or MaxLagBytes,
	// and takes no reads until it is under RejoinFraction of them.
	Lagging = ReplicaState(stateLagging)
	// Down: the replica failed FailThreshold times in a row, and takes no
	// reads until a poll reaches it again.
	Down = ReplicaState(stateDown)
)

// String names s for logs and metrics.
func (s ReplicaState) String() string {
	switch s {
	case Up:
		return "up"
	case Lagging:
		return "lagging"
	case Down:
		return "down"
	}
	return fmt.Sprintf("ReplicaState(%d)", int32(s))
}

// replica is one replica's live state. Config lives in Router.
type replica struct {
	pool *Pool
	idx  int

	state    atomic.Int32
	fails    atomic.Int32  // connection failures in a row
	inflight atomic.Int64  // reads now
	replayed atomic.Uint64 // replay LSN last seen (only grows, but for a re-made replica)

	mu       sync.Mutex // guards the fields below, written by polls
	lagBytes int64
	lagTime  time.Duration
	polled   time.Time
	lastErr  error
}

// query runs a read on the replica and waits for its first row, so that a
// failure can still be handed to the primary.
func (rep *replica) query(ctx context.Context, sql string, args []any) (pgx.Rows, error) {
	rep.inflight.Add(1)
	rows, err := rep.pool.Query(ctx, sql, args...)
	if err != nil {
		rep.inflight.Add(-1)
		return nil, err
	}
	first := rows.Next()
	if !first {
		if err := rows.Err(); err != nil {
			rows.Close()
			rep.inflight.Add(-1)
			return nil, err
		}
	}
	rep.fails.Store(0)
	return &hookRows{Rows: rows, peeked: true, first: first, done: func(error) { rep.inflight.Add(-1) }}, nil
}

// failed counts a connection failure; at the threshold the replica is
// quarantined until a poll reaches it.
func (rep *replica) failed(r *Router, err error) {
	n := rep.fails.Add(1)
	rep.mu.Lock()
	rep.lastErr = err
	rep.mu.Unlock()
	if int(n) >= r.cfg.FailThreshold {
		r.setState(rep, stateDown, err)
	}
}

// refreshReplay asks the replica for its replay position.
func (rep *replica) refreshReplay(ctx context.Context) {
	var lsn *int64
	if err := rep.pool.QueryRow(ctx, "select (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8").Scan(&lsn); err == nil && lsn != nil {
		rep.advance(uint64(*lsn))
	}
}

// advance raises the replay position seen to lsn.
func (rep *replica) advance(lsn uint64) {
	for {
		cur := rep.replayed.Load()
		if lsn <= cur || rep.replayed.CompareAndSwap(cur, lsn) {
			return
		}
	}
}

func (r *Router) setState(rep *replica, to int32, why error) {
	from := rep.state.Swap(to)
	if from == to {
		return
	}
	attrs := []any{"server", rep.pool.name, "from", ReplicaState(from).String(), "to", ReplicaState(to).String()}
	if why != nil {
		attrs = append(attrs, "why", why)
	}
	r.cfg.Logger.Info("dbrouter: replica state", attrs...)
}

func (r *Router) pollLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), max(r.cfg.PollInterval, time.Second))
			r.pollOnce(ctx)
			cancel()
		}
	}
}

// Poll measures every replica's lag now and updates its state, as the
// poller does every PollInterval. Tests and operators call it to act on a
// change at once.
func (r *Router) Poll(ctx context.Context) { r.pollOnce(ctx) }

var errNotReplica = errors.New("not a replica of the primary")

// pollOnce measures lag: bytes from the primary's current WAL position
// and the replica's replay position, time from the replica's last
// replayed commit when it is behind.
func (r *Router) pollOnce(ctx context.Context) {
	var primaryLSN int64
	primaryErr := r.primary.QueryRow(ctx, "select (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8").Scan(&primaryLSN)
	var wg sync.WaitGroup
	for _, rep := range r.replicas {
		wg.Go(func() { r.pollReplica(ctx, rep, primaryLSN, primaryErr == nil) })
	}
	wg.Wait()
}

func (r *Router) pollReplica(ctx context.Context, rep *replica, primaryLSN int64, havePrimary bool) {
	var (
		inRecovery bool
		replay     *int64
		since      *float64
		cluster    uint64
	)
	err := rep.pool.QueryRow(ctx, `select pg_is_in_recovery(),
		(pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8,
		extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp())::float8,
		(select system_identifier from pg_control_system())`).Scan(&inRecovery, &replay, &since, &cluster)
	if err == nil && (cluster != r.cluster || !inRecovery || replay == nil) {
		err = fmt.Errorf("dbrouter: %s: %w (system %d, in recovery %v)", rep.pool.name, errNotReplica, cluster, inRecovery)
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, errNotReplica) {
			return // our own deadline, e.g. Close; not the replica's fault
		}
		rep.mu.Lock()
		rep.lastErr = err
		rep.polled = time.Now()
		rep.mu.Unlock()
		if errors.Is(err, errNotReplica) || int(rep.fails.Add(1)) >= r.cfg.FailThreshold {
			r.setState(rep, stateDown, err)
		}
		return
	}
	rep.fails.Store(0)
	rep.advance(uint64(*replay))
	var lagBytes int64
	var lagTime time.Duration
	if havePrimary {
		lagBytes = max(primaryLSN-*replay, 0)
	}
	if lagBytes > 0 && since != nil {
		lagTime = time.Duration(*since * float64(time.Second))
	}
	rep.mu.Lock()
	rep.lagBytes, rep.lagTime, rep.polled, rep.lastErr = lagBytes, lagTime, time.Now(), nil
	rep.mu.Unlock()

	r.setState(rep, nextState(rep.state.Load(), lagBytes, lagTime, r.cfg), fmt.Errorf("lag %d bytes, %v", lagBytes, lagTime))
}

// nextState is the state of a reachable replica lagging that much, from
// cur: over the limits it is Lagging; a Lagging one rejoins only under
// RejoinFraction of them (hysteresis); else it is Up.
func nextState(cur int32, lagBytes int64, lagTime time.Duration, cfg Config) int32 {
	over := func(frac float64) bool {
		return (cfg.MaxLag > 0 && float64(lagTime) > frac*float64(cfg.MaxLag)) ||
			(cfg.MaxLagBytes > 0 && float64(lagBytes) > frac*float64(cfg.MaxLagBytes))
	}
	switch {
	case over(1):
		return stateLagging
	case cur == stateLagging && over(cfg.RejoinFraction):
		return stateLagging // inside the hysteresis band: stays out
	}
	return stateUp
}

// ReplicaStats is a replica's state as the Router sees it.
type ReplicaStats struct {
	PoolStats
	State ReplicaState
	// LagBytes and LagTime are the lag at the last poll; Replayed the
	// replay LSN last seen.
	LagBytes int64
	LagTime  time.Duration
	Replayed LSN
	// InFlight is the reads running on it now.
	InFlight int64
	// Polled is when it was last polled; LastErr its last failure, nil
	// once a poll succeeds.
	Polled  time.Time
	LastErr error
}

// Stats is the Router's state.
type Stats struct {
	Primary  PoolStats
	Replicas []ReplicaStats
	// StickyErrors counts failures of the sticky store.
	StickyErrors int64
	// TokenWaiting is the reads waiting now for a replica to replay their
	// token (see Config.TokenWait).
	TokenWaiting int64
}

// Stat returns the Router's state now.
func (r *Router) Stat() Stats {
	s := Stats{Primary: r.primary.Stat(), StickyErrors: r.stickyErr.Load(), TokenWaiting: r.tokenWaiting.Load()}
	for _, rep := range r.replicas {
		rep.mu.Lock()
		rs := ReplicaStats{
			PoolStats: rep.pool.Stat(),
			State:     ReplicaState(rep.state.Load()),
			LagBytes:  rep.lagBytes,
			LagTime:   rep.lagTime,
			Replayed:  LSN(rep.replayed.Load()),
			InFlight:  rep.inflight.Load(),
			Polled:    rep.polled,
			LastErr:   rep.lastErr,
		}
		rep.mu.Unlock()
		s.Replicas = append(s.Replicas, rs)
	}
	return s
}
