package dbrouter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of PoolConfig, the seed's DatabasePool settings.
const (
	DefaultMaxConns       = 20
	DefaultMinConns       = 5
	DefaultIdleTimeout    = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultMaxUses        = 7500
	DefaultMaxLifetime    = time.Hour
	DefaultSlowQuery      = time.Second
)

// PoolConfig sizes and watches the pool of one server. Zero fields take the
// defaults above; they win over pool_* parameters in the server's URL.
type PoolConfig struct {
	// MaxConns is the most connections open at once (20). A caller past it
	// waits for one to be released, bounded by its context.
	MaxConns int32
	// MinConns is how many connections the pool keeps open even when idle
	// (5); negative keeps none. It is capped at MaxConns.
	MinConns int32
	// IdleTimeout closes a connection idle that long, down to MinConns
	// (30 s); negative never does.
	IdleTimeout time.Duration
	// ConnectTimeout bounds opening one connection (10 s).
	ConnectTimeout time.Duration
	// MaxUses closes a connection once it was handed out that many times
	// (7,500, as the seed's pg Pool maxUses), spreading connections over
	// servers that join behind a balancer and bounding per-backend memory
	// growth; negative never does.
	MaxUses int
	// MaxLifetime closes a connection that old (1 h, with pgxpool's jitter
	// of a tenth of it); negative never does.
	MaxLifetime time.Duration
	// SlowQuery logs, at warn level, every statement that took at least
	// that long (1 s): its SQL without the arguments, the duration, the
	// server and the error if any. Negative logs none.
	SlowQuery time.Duration
	// Logger receives the slow-query log; nil is slog.Default().
	Logger *slog.Logger
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	switch {
	case c.MinConns == 0:
		c.MinConns = DefaultMinConns
	case c.MinConns < 0:
		c.MinConns = 0
	}
	c.MinConns = min(c.MinConns, c.MaxConns)
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxUses == 0 {
		c.MaxUses = DefaultMaxUses
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.SlowQuery == 0 {
		c.SlowQuery = DefaultSlowQuery
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// forever stands for "never" in pgxpool's durations.
const forever = 100 * 365 * 24 * time.Hour

// Pool is a pgxpool.Pool for one server with the seed's options, a
// slow-query log, use counting and statistics. It is safe for concurrent
// use. Its query methods are pgxpool's.
type Pool struct {
	name string
	cfg  PoolConfig
	pool *pgxpool.Pool

	uses sync.Map // *pgx.Conn → *int: times handed out

	waiting      atomic.Int64 // acquires in progress
	usesDestroy  atomic.Int64
	slowQueries  atomic.Int64
	queryErrors  atomic.Int64
	acquireFails atomic.Int64
}

// NewPool makes the pool of the server at url (a PostgreSQL URL or DSN,
// as pgx parses it) and names it name in logs, metrics and Stat. It opens
// no connection before MinConns are made in the background or a call
// needs one; an unreachable server is reported by the first call.
func NewPool(ctx context.Context, name, url string, cfg PoolConfig) (*Pool, error) {
	cfg = cfg.withDefaults()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("dbrouter: pool %s: %w", name, err)
	}
	p := &Pool{name: name, cfg: cfg}
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = cfg.MinConns
	pc.MaxConnIdleTime = cfg.IdleTimeout
	if cfg.IdleTimeout < 0 {
		pc.MaxConnIdleTime = forever
	}
	pc.MaxConnLifetime = cfg.MaxLifetime
	pc.MaxConnLifetimeJitter = cfg.MaxLifetime / 10
	if cfg.MaxLifetime < 0 {
		pc.MaxConnLifetime, pc.MaxConnLifetimeJitter = forever, 0
	}
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	if cfg.SlowQuery > 0 {
		pc.ConnConfig.Tracer = &slowTracer{p: p}
	} else {
		pc.ConnConfig.Tracer = &acquireTracer{p: p}
	}
	if cfg.MaxUses > 0 {
		// Counted on acquire, not in AfterRelease: pgxpool runs an
		// AfterRelease hook in a goroutine per release, which cost 28 % of
		// the throughput of a one-row SELECT here (bench/db).
		pc.PrepareConn = p.prepareConn
		pc.BeforeClose = func(c *pgx.Conn) { p.uses.Delete(c) }
	}
	p.pool, err = pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("dbrouter: pool %s: %w", name, err)
	}
	return p, nil
}

// prepareConn counts a use of c as it is handed out; one used MaxUses
// times already is closed instead, and pgxpool hands out another.
func (p *Pool) prepareConn(_ context.Context, c *pgx.Conn) (bool, error) {
	v, ok := p.uses.Load(c)
	if !ok {
		v, _ = p.uses.LoadOrStore(c, new(atomic.Int64))
	}
	if v.(*atomic.Int64).Add(1) > int64(p.cfg.MaxUses) {
		p.usesDestroy.Add(1)
		p.uses.Delete(c)
		return false, nil
	}
	return true, nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Pgx returns the pgxpool.Pool underneath, for what Pool does not wrap
// (CopyFrom, SendBatch, Acquire...). Calls through it are pooled, counted
// and logged the same.
func (p *Pool) Pgx() *pgxpool.Pool { return p.pool }

// Exec runs sql with args, as pgxpool.Pool.Exec.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return p.pool.Exec(ctx, sql, args...)
}

// Query runs sql with args, as pgxpool.Pool.Query.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return p.pool.Query(ctx, sql, args...)
}

// QueryRow runs sql with args, as pgxpool.Pool.QueryRow.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return p.pool.QueryRow(ctx, sql, args...)
}

// Begin starts a transaction, as pgxpool.Pool.Begin.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) { return p.pool.Begin(ctx) }

// BeginTx starts a transaction with opts, as pgxpool.Pool.BeginTx.
func (p *Pool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return p.pool.BeginTx(ctx, opts)
}

// Ping checks that a connection can be had and answers.
func (p *Pool) Ping(ctx context.Context) error { return p.pool.Ping(ctx) }

// Close closes every connection, waiting for those in use to be released.
func (p *Pool) Close() { p.pool.Close() }

// PoolStats is a Pool's state. The first three are the seed's
// getPoolStatus(): total, idle and waiting.
type PoolStats struct {
	Name string
	// Total is the connections open or being opened; Idle those ready in
	// the pool; Waiting the callers inside an acquire now, waiting for a
	// connection to be released or opened.
	Total, Idle, Waiting int
	// Acquired is the connections in use; Constructing those being
	// opened; Max the pool's MaxConns.
	Acquired, Constructing, Max int
	// Acquires counts connections handed out; EmptyAcquires those that had
	// to wait for one; CanceledAcquires the waits a context ended.
	Acquires, EmptyAcquires, CanceledAcquires int64
	// AcquireWait is the time spent waiting in EmptyAcquires.
	AcquireWait time.Duration
	// NewConns counts connections opened; ClosedMaxUses, ClosedLifetime and
	// ClosedIdle those closed for MaxUses, MaxLifetime and IdleTimeout.
	NewConns, ClosedMaxUses, ClosedLifetime, ClosedIdle int64
	// SlowQueries counts statements logged as slow.
	SlowQueries int64
}

// Stat returns the pool's state now.
func (p *Pool) Stat() PoolStats {
	s := p.pool.Stat()
	return PoolStats{
		Name:             p.name,
		Total:            int(s.TotalConns()),
		Idle:             int(s.IdleConns()),
		Waiting:          int(max(p.waiting.Load(), 0)),
		Acquired:         int(s.AcquiredConns()),
		Constructing:     int(s.ConstructingConns()),
		Max:              int(s.MaxConns()),
		Acquires:         s.AcquireCount(),
		EmptyAcquires:    s.EmptyAcquireCount(),
		CanceledAcquires: s.CanceledAcquireCount(),
		AcquireWait:      s.EmptyAcquireWaitTime(),
		NewConns:         s.NewConnsCount(),
		ClosedMaxUses:    p.usesDestroy.Load(),
		ClosedLifetime:   s.MaxLifetimeDestroyCount(),
		ClosedIdle:       s.MaxIdleDestroyCount(),
		SlowQueries:      p.slowQueries.Load(),
	}
}

// acquireTracer counts the callers waiting for a connection.
type acquireTracer struct{ p *Pool }

func (t *acquireTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	t.p.waiting.Add(1)
	return ctx
}

func (t *acquireTracer) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	t.p.waiting.Add(-1)
	if d.Err != nil {
		t.p.acquireFails.Add(1)
	}
}

func (*acquireTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (*acquireTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// slowTracer is acquireTracer plus the slow-query log.
type slowTracer struct{ p *Pool }

type queryStartKey struct{}

type queryStart struct {
	sql   string
	start time.Time
}

func (t *slowTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	t.p.waiting.Add(1)
	return ctx
}

func (t *slowTracer) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	t.p.waiting.Add(-1)
	if d.Err != nil {
		t.p.acquireFails.Add(1)
	}
}

func (t *slowTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, queryStartKey{}, queryStart{d.SQL, time.Now()})
}

func (t *slowTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	qs, ok := ctx.Value(queryStartKey{}).(queryStart)
	if !ok {
		return
	}
	if d.Err != nil {
		t.p.queryErrors.Add(1)
	}
	took := time.Since(qs.start)
	if took < t.p.cfg.SlowQuery {
		return
	}
	t.p.slowQueries.Add(1)
	attrs := []any{"server", t.p.name, "duration", took, "sql", qs.sql}
	if d.Err != nil {
		attrs = append(attrs, "err", d.Err)
	}
	t.p.cfg.Logger.WarnContext(ctx, "dbrouter: slow query", attrs...)
}
