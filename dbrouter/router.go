package dbrouter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herdhq/herd/dbrouter/consistency"
)

// Policy picks the replica a read goes to.
type Policy int

const (
	// LeastOutstanding sends a read to the available replica with the
	// fewest reads in flight, rotating among ties. The default.
	LeastOutstanding Policy = iota
	// RoundRobin sends reads to the available replicas in turn, as the
	// seed's DatabaseRouter does.
	RoundRobin
)

// Defaults of Config.
const (
	DefaultMaxLag         = 10 * time.Second
	DefaultMaxLagBytes    = 64 << 20
	DefaultRejoinFraction = 0.5
	DefaultPollInterval   = time.Second
	DefaultFailThreshold  = 3
	DefaultTxAttempts     = 5
)

// Config says where the servers are and how reads are routed. Zero fields
// take the defaults; New applies them and reports every problem at once.
type Config struct {
	// Primary is the URL of the primary, which takes every write and
	// transaction. Required.
	Primary string
	// Replicas are the URLs of streaming replicas of Primary. With none,
	// reads go to the primary.
	Replicas []string
	// Pool configures the pool of every server.
	Pool PoolConfig
	// Policy picks among available replicas (LeastOutstanding).
	Policy Policy

	// MaxLag takes a replica out of the read pool while its replay is that
	// far behind in time (10 s); negative never does.
	MaxLag time.Duration
	// MaxLagBytes does the same for WAL bytes behind the primary (64 MiB);
	// negative never does.
	MaxLagBytes int64
	// RejoinFraction is the hysteresis: a lagging replica rejoins only once
	// its lag is under this fraction of MaxLag and MaxLagBytes (0.5), so
	// that a replica hovering at the limit does not flap.
	RejoinFraction float64
	// PollInterval is how often lag is measured and a quarantined replica
	// probed (1 s).
	PollInterval time.Duration
	// FailThreshold quarantines a replica after that many connection
	// failures in a row, from reads or polls (3). A poll that succeeds
	// brings it back.
	FailThreshold int

	// TokenWait is how long a read whose token no replica has replayed yet
	// waits for one to catch up before it goes to the primary (0: to the
	// primary at once). The wait is bounded by the read's context too.
	TokenWait time.Duration
	// Sticky keeps each scope's last write (see WithScope). Nil is an
	// in-memory store per Router (NewMemoryStore(time.Minute)); use a
	// RedisStore when several processes serve the same scopes.
	Sticky StickyStore

	// TxAttempts is how many times Tx runs a transaction that fails with a
	// serialization failure or a deadlock (5).
	TxAttempts int

	// Logger receives state changes of replicas and errors of the sticky
	// store; nil is slog.Default(). Pool.Logger defaults to it.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.MaxLagBytes == 0 {
		c.MaxLagBytes = DefaultMaxLagBytes
	}
	if c.RejoinFraction == 0 {
		c.RejoinFraction = DefaultRejoinFraction
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.FailThreshold == 0 {
		c.FailThreshold = DefaultFailThreshold
	}
	if c.TxAttempts == 0 {
		c.TxAttempts = DefaultTxAttempts
	}
	if c.Sticky == nil {
		c.Sticky = NewMemoryStore(time.Minute)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Pool.Logger == nil {
		c.Pool.Logger = c.Logger
	}
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c Config) Validate() error {
	var errs []error
	if c.Primary == "" {
		errs = append(errs, errors.New("the primary's URL (Primary) is empty"))
	}
	for i, u := range c.Replicas {
		if u == "" {
			errs = append(errs, fmt.Errorf("replica %d's URL (Replicas[%d]) is empty", i, i))
		}
	}
	if c.Policy != LeastOutstanding && c.Policy != RoundRobin {
		errs = append(errs, fmt.Errorf("policy %d is unknown", c.Policy))
	}
	if c.RejoinFraction < 0 || c.RejoinFraction > 1 {
		errs = append(errs, fmt.Errorf("rejoin fraction %v is outside [0, 1]", c.RejoinFraction))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll interval %v is negative", c.PollInterval))
	}
	if c.FailThreshold < 0 {
		errs = append(errs, fmt.Errorf("fail threshold %d is negative", c.FailThreshold))
	}
	if c.TokenWait < 0 {
		errs = append(errs, fmt.Errorf("token wait %v is negative", c.TokenWait))
	}
	if c.TxAttempts < 0 {
		errs = append(errs, fmt.Errorf("tx attempts %d is negative", c.TxAttempts))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dbrouter: config: %w", err)
	}
	return nil
}

// Router sends writes and transactions to the primary and reads to
// replicas that are up, not lagging and past the read's token. It is safe
// for concurrent use; Close stops it.
type Router struct {
	cfg      Config
	primary  *Pool
	replicas []*replica
	cluster  uint64 // the primary's system identifier

	rr           atomic.Uint64
	decisions    [][numReasons]atomic.Int64 // [0] primary, [i+1] replica i
	stickyErr    atomic.Int64
	tokenWaiting atomic.Int64

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// New connects to the primary (to learn its system identifier, which
// tokens name), makes a pool per server and starts measuring the
// replicas' lag. Replicas need not be up: one that is not starts
// quarantined. ctx bounds the connection to the primary.
func New(ctx context.Context, cfg Config) (*Router, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	primary, err := NewPool(ctx, "primary", cfg.Primary, cfg.Pool)
	if err != nil {
		return nil, err
	}
	r := &Router{
		cfg:     cfg,
		primary: primary,
		stop:    make(chan struct{}),
	}
	if err := primary.QueryRow(ctx, "select system_identifier from pg_control_system()").Scan(&r.cluster); err != nil {
		primary.Close()
		return nil, fmt.Errorf("dbrouter: reaching the primary: %w", err)
	}
	r.decisions = make([][numReasons]atomic.Int64, 1+len(cfg.Replicas))
	for i, u := range cfg.Replicas {
		p, err := NewPool(ctx, "replica"+strconv.Itoa(i), u, cfg.Pool)
		if err != nil {
			r.closePools()
			return nil, err
		}
		r.replicas = append(r.replicas, &replica{pool: p, idx: i})
	}
	if len(r.replicas) > 0 {
		r.pollOnce(ctx)
		r.wg.Add(1)
		go r.pollLoop()
	}
	return r, nil
}

// Close stops the lag poller and closes every pool. It is safe to call
// more than once.
func (r *Router) Close() {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.wg.Wait()
		r.closePools()
	})
}

func (r *Router) closePools() {
	r.primary.Close()
	for _, rep := range r.replicas {
		rep.pool.Close()
	}
}

// Primary returns the primary's pool.
func (r *Router) Primary() *Pool { return r.primary }

// Replicas returns the replicas' pools, in Config order.
func (r *Router) Replicas() []*Pool {
	out := make([]*Pool, len(r.replicas))
	for i, rep := range r.replicas {
		out[i] = rep.pool
	}
	return out
}

// Cluster returns the primary's system identifier, the cluster tokens name.
func (r *Router) Cluster() uint64 { return r.cluster }

type readKey struct{}

// ReadOnly returns a context under which the Router's Query and QueryRow
// are reads: the caller promises the statement writes nothing, so it may
// go to a replica. Code written against pgxpool's methods (a shard, a
// repository) routes its reads with it and needs no other change.
func ReadOnly(ctx context.Context) context.Context { return context.WithValue(ctx, readKey{}, true) }

func isRead(ctx context.Context) bool { v, _ := ctx.Value(readKey{}).(bool); return v }

// Exec runs a statement on the primary. Under a context with a token
// holder (WithToken, Middleware) or a scope (WithScope), it then takes the
// primary's WAL insert LSN on the same connection and records it, so that
// later reads see the write.
func (r *Router) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	r.decide(0, reasonWrite)
	if !r.wantsToken(ctx) {
		return r.primary.Exec(ctx, sql, args...)
	}
	conn, err := r.primary.pool.Acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer conn.Release()
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		return tag, err
	}
	r.recordFrom(ctx, conn.Conn())
	return tag, nil
}

// Query runs sql on the primary, or, under ReadOnly, as a read (see Read).
// On the primary it records the write's LSN as Exec does, when the rows
// are closed.
func (r *Router) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if isRead(ctx) {
		return r.read(ctx, sql, args)
	}
	r.decide(0, reasonWrite)
	if !r.wantsToken(ctx) {
		return r.primary.Query(ctx, sql, args...)
	}
	conn, err := r.primary.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		conn.Release()
		return nil, err
	}
	return &hookRows{Rows: rows, done: func(err error) {
		if err == nil {
			r.recordFrom(ctx, conn.Conn())
		}
		conn.Release()
	}}, nil
}

// QueryRow is Query for one row.
func (r *Router) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := r.Query(ctx, sql, args...)
	return &row{rows: rows, err: err}
}

// Begin starts a transaction on the primary. Prefer Tx, which retries,
// rolls back and records the token for you.
func (r *Router) Begin(ctx context.Context) (pgx.Tx, error) {
	r.decide(0, reasonWrite)
	return r.primary.Begin(ctx)
}

// BeginTx is Begin with options.
func (r *Router) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	r.decide(0, reasonWrite)
	return r.primary.BeginTx(ctx, opts)
}

// Token returns a token for everything committed on the primary so far
// (its WAL insert LSN now), for a caller that wrote without a token
// holder: take it right after the write.
func (r *Router) Token(ctx context.Context) (Token, error) {
	var lsn int64
	if err := r.primary.QueryRow(ctx, lsnSQL).Scan(&lsn); err != nil {
		return Token{}, fmt.Errorf("dbrouter: taking the primary's LSN: %w", err)
	}
	return consistency.NewToken(r.cluster, LSN(lsn)), nil
}

// lsnSQL is the primary's WAL insert position, as a number.
const lsnSQL = "select (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8"

func (r *Router) wantsToken(ctx context.Context) bool {
	return consistency.Tracking(ctx) || ScopeFrom(ctx) != ""
}

// recordFrom takes the insert LSN on conn, after the caller's COMMIT (or
// autocommit), and keeps it in ctx's holder and scope.
func (r *Router) recordFrom(ctx context.Context, conn *pgx.Conn) {
	var lsn int64
	if err := conn.QueryRow(ctx, lsnSQL).Scan(&lsn); err != nil {
		// The write is done; without its LSN, later reads under ctx may be
		// stale, so say so rather than fail a write that succeeded.
		r.cfg.Logger.WarnContext(ctx, "dbrouter: could not take the LSN after a write", "err", err)
		return
	}
	r.record(ctx, consistency.NewToken(r.cluster, LSN(lsn)))
}

func (r *Router) record(ctx context.Context, t Token) {
	consistency.Observe(ctx, t)
	if s := ScopeFrom(ctx); s != "" {
		if err := r.cfg.Sticky.Record(ctx, s, t); err != nil {
			r.stickyErr.Add(1)
			r.cfg.Logger.WarnContext(ctx, "dbrouter: sticky store: recording a write", "scope", s, "err", err)
		}
	}
}

// Read returns the Router's read side: Query and QueryRow on a replica.
func (r *Router) Read() *Reader { return &Reader{r: r} }

// Reader runs reads: on an available replica that has replayed the
// read's token (see Router), else on the primary. A replica that fails the
// read hands it to the primary: the caller sees the primary's answer, not
// the replica's error. Reader's methods are safe for concurrent use.
type Reader struct{ r *Router }

// Query runs a read. It waits for the first row (or the end) before it
// returns, so that a replica's failure can still go to the primary; an
// error after the first row is the caller's, as with pgx.
func (rd *Reader) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return rd.r.read(ctx, sql, args)
}

// QueryRow runs a read for one row.
func (rd *Reader) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := rd.r.read(ctx, sql, args)
	return &row{rows: rows, err: err}
}

// required is the LSN on this cluster the read under ctx must see.
func (r *Router) required(ctx context.Context) (LSN, error) {
	need := consistency.TokenFrom(ctx).LSN(r.cluster)
	if s := ScopeFrom(ctx); s != "" {
		t, err := r.cfg.Sticky.Load(ctx, s)
		if err != nil {
			r.stickyErr.Add(1)
			return 0, err
		}
		need = max(need, t.LSN(r.cluster))
	}
	return need, nil
}

func (r *Router) read(ctx context.Context, sql string, args []any) (pgx.Rows, error) {
	if len(r.replicas) == 0 {
		r.decide(0, reasonNoReplica)
		return r.primary.Query(ctx, sql, args...)
	}
	need, err := r.required(ctx)
	if err != nil {
		// Without the scope's last write we cannot tell a fresh replica.
		r.cfg.Logger.WarnContext(ctx, "dbrouter: sticky store: reading a scope; reading from the primary", "err", err)
		r.decide(0, reasonFallback)
		return r.primary.Query(ctx, sql, args...)
	}
	rep, reason := r.pick(need)
	if rep == nil && reason == reasonToken && r.cfg.TokenWait > 0 {
		rep = r.waitFor(ctx, need)
	}
	if rep == nil {
		r.decide(0, reason)
		return r.primary.Query(ctx, sql, args...)
	}
	rows, err := rep.query(ctx, sql, args)
	if err == nil {
		r.decide(rep.idx+1, reasonSelected)
		return rows, nil
	}
	if ctx.Err() != nil {
		return nil, err // the caller gave up; the primary would not be asked either
	}
	if connectionFailure(err) {
		rep.failed(r, err)
	}
	r.decide(0, reasonFallback)
	return r.primary.Query(ctx, sql, args...)
}

// pick returns the replica for a read needing need, or nil and why not.
func (r *Router) pick(need LSN) (*replica, int) {
	n := len(r.replicas)
	start := int(r.rr.Add(1) % uint64(n))
	var best *replica
	var bestLoad int64
	reason := reasonDown
	for i := range n {
		rep := r.replicas[(start+i)%n]
		switch rep.state.Load() {
		case stateDown:
			continue
		case stateLagging:
			if reason == reasonDown {
				reason = reasonLagging
			}
			continue
		}
		if rep.replayed.Load() < uint64(need) {
			reason = reasonToken
			continue
		}
		if r.cfg.Policy == RoundRobin {
			return rep, reasonSelected
		}
		if load := rep.inflight.Load(); best == nil || load < bestLoad {
			best, bestLoad = rep, load
		}
	}
	if best == nil {
		return nil, reason
	}
	return best, reasonSelected
}

// waitFor polls the available replicas' replay position until one has
// replayed need, within TokenWait and ctx; nil if none did.
func (r *Router) waitFor(ctx context.Context, need LSN) *replica {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.TokenWait)
	defer cancel()
	r.tokenWaiting.Add(1)
	defer r.tokenWaiting.Add(-1)
	pause := time.Millisecond
	for {
		for _, rep := range r.replicas {
			if rep.state.Load() != stateUp {
				continue
			}
			if rep.replayed.Load() < uint64(need) {
				rep.refreshReplay(ctx)
			}
			if rep.replayed.Load() >= uint64(need) {
				return rep
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// connectionFailure reports whether err says the server, not the
// statement, failed: a refused or broken connection, a server shutting
// down or starting up.
func connectionFailure(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) >= 2 && pe.Code[:2] == "08": // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, crash, cannot connect now
			return true
		}
		return false
	}
	// Anything else from pgx (dial errors, a closed connection, an acquire
	// timeout) is about reaching the server.
	return true
}
