package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/singleflight"
)

// Conn is what the package needs of one database: the map database or a
// shard. *pgxpool.Pool satisfies it, and so does any router with the
// same methods (a shard may itself be a primary with replicas behind a
// dbrouter.Router): every call the package makes through Conn either
// writes or must see the latest committed state, so a router should send
// them all to its primary.
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// batcher is the optional fast path: a Conn that can send a batch (as
// *pgxpool.Pool can) runs a routed call in one round trip (enter, then the
// statement, in one implicit transaction) instead of BEGIN, enter, the
// statement, COMMIT.
type batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Config says where the map and the shards are. Create and Open copy it.
type Config struct {
	// Map is the database that holds the map and the state of moves.
	// Required. It may be one of the shards' databases.
	Map Conn
	// Shards maps each shard's name to its database. Every shard the
	// stored map names must be here; others may be (to be added).
	Shards map[string]Conn
	// Tables are the sharded tables. The package installs a row trigger on
	// each (on every shard) that logs changes during moves and refuses
	// writes that did not go through the package.
	Tables []Table
	// FenceWait bounds how long a write waits for a fenced bucket (a move's
	// last catch-up) before it fails with ErrFenced; default 10 s. The
	// context's deadline bounds it too.
	FenceWait time.Duration
	// Retries is how many times a call whose map was stale is routed
	// again after reloading the map; default 5.
	Retries int
}

func (c *Config) defaults() error {
	var errs []error
	if c.Map == nil {
		errs = append(errs, errors.New("shard: Config.Map is nil"))
	}
	if len(c.Shards) == 0 {
		errs = append(errs, errors.New("shard: Config.Shards is empty"))
	}
	for name, conn := range c.Shards {
		if name == "" || conn == nil {
			errs = append(errs, fmt.Errorf("shard: Config.Shards[%q] is nil or unnamed", name))
		}
	}
	seen := map[string]bool{}
	for _, t := range c.Tables {
		if err := t.validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("shard: table %s listed twice", t.Name))
		}
		seen[t.Name] = true
	}
	if c.FenceWait == 0 {
		c.FenceWait = 10 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 5
	}
	// The DB keeps its own copy: a caller's later changes to its map do not
	// race with routing.
	shards := make(map[string]Conn, len(c.Shards))
	for n, conn := range c.Shards {
		shards[n] = conn
	}
	c.Shards = shards
	c.Tables = slices.Clone(c.Tables)
	return errors.Join(errs...)
}

// Errors callers branch on.
var (
	// ErrFenced: the key's bucket stayed fenced for a move longer than
	// Config.FenceWait (a move crashed in its fence: run Resume).
	ErrFenced = errors.New("shard: bucket fenced for a move")
	// ErrStaleMap: the map kept changing under a call for Config.Retries
	// reloads.
	ErrStaleMap = errors.New("shard: map stale after reloads")
	// ErrNoMap: the map database has no map (run Create).
	ErrNoMap = errors.New("shard: no map in the map database")
	// ErrMoveRunning: another mover holds the bucket's move.
	ErrMoveRunning = errors.New("shard: a move of this bucket is running elsewhere")
)

// DB routes calls by key to the shard that owns the key's bucket under
// the current map, and runs queries over all shards. Safe for concurrent
// use. Make one with Create or Open.
type DB struct {
	cfg    Config
	tables []Table
	cur    atomic.Pointer[Map]
	sf     singleflight.Group

	// hook, if set (tests), is called as a move enters each phase; an error
	// stops the move there as a crash would.
	hook func(bucket int, phase string) error
}

// Create stores version 1 of a map of buckets buckets (0: DefaultBuckets)
// over all of cfg.Shards (NewMap's placement), installs the package's
// tables and functions on the map database and every shard and the
// trigger on every table, and returns the DB. The bucket count can never
// change afterwards. Create fails if a map is already stored.
func Create(ctx context.Context, cfg Config, buckets int) (*DB, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if buckets == 0 {
		buckets = DefaultBuckets
	}
	names := make([]string, 0, len(cfg.Shards))
	for n := range cfg.Shards {
		names = append(names, n)
	}
	m, err := NewMap(buckets, names...)
	if err != nil {
		return nil, err
	}
	db := &DB{cfg: cfg, tables: cfg.Tables}
	if _, err := cfg.Map.Exec(ctx, mapSchema); err != nil {
		return nil, fmt.Errorf("shard: create map schema: %w", err)
	}
	for _, n := range m.shards {
		if err := db.installShard(ctx, n); err != nil {
			return nil, err
		}
	}
	tx, err := cfg.Map.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("shard: create map: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `INSERT INTO herd_shard_map (buckets, version, hash) VALUES ($1, 1, 'xxh64') ON CONFLICT DO NOTHING`, buckets)
	if err != nil {
		return nil, fmt.Errorf("shard: create map: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, errors.New("shard: create map: a map is already stored")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO herd_shard_shards (name) SELECT unnest($1::text[])`, m.shards); err != nil {
		return nil, fmt.Errorf("shard: create map: %w", err)
	}
	owners := make([]string, buckets)
	for b := range owners {
		owners[b] = m.Shard(b)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO herd_shard_buckets (bucket, shard, version) SELECT b - 1, s, 1 FROM unnest($1::text[]) WITH ORDINALITY AS u(s, b)`, owners); err != nil {
		return nil, fmt.Errorf("shard: create map: %w", err)
	}
	// Each shard's own view: it owns its buckets. Written before the map
	// commits; a failed Create leaves rows that a second Create rewrites.
	for _, n := range m.shards {
		if _, err := cfg.Shards[n].Exec(ctx, `INSERT INTO herd_shard_local (bucket, state, version) SELECT unnest($1::integer[]), 'owned', 1
			ON CONFLICT (bucket) DO UPDATE SET state = 'owned', version = 1`, m.BucketsOf(n)); err != nil {
			return nil, fmt.Errorf("shard: create map: shard %s: %w", n, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("shard: create map: %w", err)
	}
	db.cur.Store(m)
	return db, nil
}

// Open loads the stored map and returns the DB. It installs the package's
// functions and triggers on every shard of cfg.Shards (idempotent), so a
// shard being added needs only to be in cfg.Shards.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	db := &DB{cfg: cfg, tables: cfg.Tables}
	if _, err := cfg.Map.Exec(ctx, mapSchema); err != nil {
		return nil, fmt.Errorf("shard: open: map schema: %w", err)
	}
	if _, err := db.Refresh(ctx); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cfg.Shards))
	for n := range cfg.Shards {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := db.installShard(ctx, n); err != nil {
			return nil, err
		}
	}
	return db, nil
}

func (db *DB) installShard(ctx context.Context, name string) error {
	c := db.cfg.Shards[name]
	if c == nil {
		return fmt.Errorf("shard: no connection for shard %s in Config.Shards", name)
	}
	if _, err := c.Exec(ctx, shardSchema); err != nil {
		return fmt.Errorf("shard: install on shard %s: %w", name, err)
	}
	for _, t := range db.tables {
		if _, err := c.Exec(ctx, t.triggerSQL()); err != nil {
			return fmt.Errorf("shard: install trigger on shard %s: %w", name, err)
		}
	}
	return nil
}

// Map returns the map the DB routes by now.
func (db *DB) Map() *Map { return db.cur.Load() }

// Bucket returns key's bucket: the value for the table's bucket column.
func (db *DB) Bucket(key string) int { return BucketOf(key, db.cur.Load().Buckets()) }

// Refresh reloads the map from the map database (one load at a time; calls
// that arrive meanwhile share it) and returns it.
func (db *DB) Refresh(ctx context.Context) (*Map, error) {
	v, err, _ := db.sf.Do("map", func() (any, error) {
		m, err := loadMap(ctx, db.cfg.Map)
		if err != nil {
			return nil, err
		}
		for _, s := range m.shards {
			if db.cfg.Shards[s] == nil {
				return nil, fmt.Errorf("shard: the map names shard %s, which Config.Shards lacks", s)
			}
		}
		// Never step back to an older map loaded concurrently.
		for {
			old := db.cur.Load()
			if old != nil && old.version >= m.version {
				return old, nil
			}
			if db.cur.CompareAndSwap(old, m) {
				return m, nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return v.(*Map), nil
}

func loadMap(ctx context.Context, c Conn) (*Map, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("shard: load map: %w", err)
	}
	defer tx.Rollback(ctx)
	// One snapshot for the version and the buckets.
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
		return nil, fmt.Errorf("shard: load map: %w", err)
	}
	var n int
	var version int64
	err = tx.QueryRow(ctx, `SELECT buckets, version FROM herd_shard_map`).Scan(&n, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoMap
	}
	if err != nil {
		return nil, fmt.Errorf("shard: load map: %w", err)
	}
	var names []string
	if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM herd_shard_shards`).Scan(&names); err != nil {
		return nil, fmt.Errorf("shard: load map: %w", err)
	}
	var owners []string
	if err := tx.QueryRow(ctx, `SELECT array_agg(shard ORDER BY bucket) FROM herd_shard_buckets`).Scan(&owners); err != nil {
		return nil, fmt.Errorf("shard: load map: %w", err)
	}
	if len(owners) != n {
		return nil, fmt.Errorf("shard: load map: %d buckets stored; want %d", len(owners), n)
	}
	sort.Strings(names)
	m := &Map{version: version, shards: names, owner: make([]int, n)}
	for b, s := range owners {
		i, ok := slices.BinarySearch(names, s)
		if !ok {
			return nil, fmt.Errorf("shard: load map: bucket %d on unknown shard %s", b, s)
		}
		m.owner[b] = i
	}
	return m, nil
}

// AddShard registers shard (which must be in Config.Shards) in the map,
// owning no bucket, and installs the package's schema on it. Moving
// buckets to it is the next step (Plan, then Rebalance).
func (db *DB) AddShard(ctx context.Context, name string) error {
	if err := db.installShard(ctx, name); err != nil {
		return err
	}
	if _, err := db.cfg.Map.Exec(ctx, `INSERT INTO herd_shard_shards (name) VALUES ($1) ON CONFLICT DO NOTHING`, name); err != nil {
		return fmt.Errorf("shard: add shard %s: %w", name, err)
	}
	// A new shard name changes the map's names but not its version: bump
	// it so every DB reloads and learns the name.
	if _, err := db.cfg.Map.Exec(ctx, `UPDATE herd_shard_map SET version = version + 1`); err != nil {
		return fmt.Errorf("shard: add shard %s: %w", name, err)
	}
	_, err := db.Refresh(ctx)
	return err
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// route runs call on the shard that owns key's bucket, entered for write
// or read, reloading the map and trying again when the shard says it does
// not own the bucket, and waiting while the bucket is fenced. call runs
// only after the enter succeeded, so a retry never repeats a statement
// that ran.
func (db *DB) route(ctx context.Context, key string, write bool, call func(ctx context.Context, c Conn, name string, b int) error) error {
	m := db.cur.Load()
	b := BucketOf(key, m.Buckets())
	var fencedSince time.Time
	wait := time.Millisecond
	for stale := 0; ; {
		name := m.Shard(b)
		err := call(ctx, db.cfg.Shards[name], name, b)
		code := sqlState(err)
		var ue userErr
		if errors.As(err, &ue) {
			code = "" // the caller's own statement: never retried
		}
		switch code {
		case codeNotOwned:
			stale++
			if stale > db.cfg.Retries {
				return fmt.Errorf("%w: bucket %d on %s: %w", ErrStaleMap, b, name, err)
			}
			nm, rerr := db.Refresh(ctx)
			if rerr != nil {
				return rerr
			}
			if nm.version == m.version {
				// The flip is committed on the map after the target owns
				// the bucket and before the source lets go, so an equal
				// version means a move is between those steps: wait.
				if err := sleepCtx(ctx, wait); err != nil {
					return err
				}
				wait = min(wait*2, 50*time.Millisecond)
			}
			m = nm
		case codeFenced:
			if fencedSince.IsZero() {
				fencedSince = time.Now()
			} else if time.Since(fencedSince) > db.cfg.FenceWait {
				return fmt.Errorf("%w: bucket %d on %s for over %v", ErrFenced, b, name, db.cfg.FenceWait)
			}
			if err := sleepCtx(ctx, wait); err != nil {
				return fmt.Errorf("shard: waiting for bucket %d's fence: %w", b, err)
			}
			wait = min(wait*2, 20*time.Millisecond)
			if nm, rerr := db.Refresh(ctx); rerr == nil {
				m = nm
			}
		default:
			if err != nil {
				return fmt.Errorf("shard: %s (bucket %d): %w", name, b, err)
			}
			return nil
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exec runs a writing statement on key's shard, after entering key's
// bucket: it waits while the bucket is fenced for a move, and follows the
// bucket when it moved. Every row the statement writes must carry key's
// bucket (db.Bucket(key)); the trigger refuses others.
func (db *DB) Exec(ctx context.Context, key string, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := db.route(ctx, key, true, func(ctx context.Context, c Conn, _ string, b int) error {
		if bc, ok := c.(batcher); ok {
			batch := &pgx.Batch{}
			batch.Queue(`SELECT herd_shard_enter($1, true)`, b)
			batch.Queue(sql, args...)
			br := bc.SendBatch(ctx, batch)
			if _, err := br.Exec(); err != nil {
				br.Close()
				return err
			}
			t, err := br.Exec()
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return userErr{err}
			}
			tag = t
			return nil
		}
		return db.inTx(ctx, c, b, true, func(tx pgx.Tx) error {
			t, err := tx.Exec(ctx, sql, args...)
			tag = t
			return err
		})
	})
	return tag, err
}

// userErr marks an error of the caller's statement, so that route never
// mistakes it for the package's own (a statement could raise HS002 too).
type userErr struct{ err error }

func (e userErr) Error() string { return e.err.Error() }
func (e userErr) Unwrap() error { return e.err }

// inTx runs fn in a transaction on c that entered bucket b first.
func (db *DB) inTx(ctx context.Context, c Conn, b int, write bool, fn func(pgx.Tx) error) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT herd_shard_enter($1, $2)`, b, write); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return userErr{err}
	}
	if err := tx.Commit(ctx); err != nil {
		return userErr{err}
	}
	return nil
}

// Tx runs fn in a transaction on key's shard that entered key's bucket
// for writing (see Exec), and commits it if fn returns nil. fn must touch
// only rows of key's bucket. fn may run again if the bucket moved before
// it started; never after it started.
func (db *DB) Tx(ctx context.Context, key string, fn func(tx pgx.Tx) error) error {
	return db.route(ctx, key, true, func(ctx context.Context, c Conn, _ string, b int) error {
		return db.inTx(ctx, c, b, true, fn)
	})
}

// Read runs fn on key's shard in a transaction that entered key's bucket
// for reading, so the bucket cannot move away while fn reads (a read
// waits for nothing: a fenced bucket is still readable). Use it for
// reads that must see the bucket's latest rows.
func (db *DB) Read(ctx context.Context, key string, fn func(q pgx.Tx) error) error {
	return db.route(ctx, key, false, func(ctx context.Context, c Conn, _ string, b int) error {
		return db.inTx(ctx, c, b, false, fn)
	})
}

// QueryRows runs a reading statement on key's shard after entering key's
// bucket for reading, and returns every row's values. It is one round
// trip when the shard's Conn can send batches.
func (db *DB) QueryRows(ctx context.Context, key string, sql string, args ...any) ([][]any, error) {
	var out [][]any
	err := db.route(ctx, key, false, func(ctx context.Context, c Conn, _ string, b int) error {
		out = nil
		collect := func(rows pgx.Rows) error {
			defer rows.Close()
			for rows.Next() {
				v, err := rows.Values()
				if err != nil {
					return err
				}
				out = append(out, v)
			}
			return rows.Err()
		}
		if bc, ok := c.(batcher); ok {
			batch := &pgx.Batch{}
			batch.Queue(`SELECT herd_shard_enter($1, false)`, b)
			batch.Queue(sql, args...)
			br := bc.SendBatch(ctx, batch)
			defer br.Close()
			if _, err := br.Exec(); err != nil {
				return err
			}
			rows, err := br.Query()
			if err != nil {
				return userErr{err}
			}
			if err := collect(rows); err != nil {
				return userErr{err}
			}
			return br.Close()
		}
		return db.inTx(ctx, c, b, false, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			return collect(rows)
		})
	})
	return out, err
}
