package dbrouter

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestTxRetriesSerializationFailure: two concurrent SERIALIZABLE
// transactions update the same row; the one whose snapshot is older fails
// with 40001 and Tx runs it again, which then succeeds.
func TestTxRetriesSerializationFailure(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx := ctxT(t)
	if _, err := e.r.Exec(ctx, "insert into items values (1, '0')"); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	var firstErr error
	err := e.r.TxWith(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
		attempts++
		var v string
		if err := tx.QueryRow(ctx, "select v from items where id = 1").Scan(&v); err != nil {
			return err
		}
		if attempts == 1 {
			// Another SERIALIZABLE transaction changes the row after our
			// snapshot was taken, and commits.
			if err := e.r.TxWith(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "update items set v = v || 'b' where id = 1")
				return err
			}); err != nil {
				t.Errorf("the other transaction: %v", err)
			}
		}
		_, err := tx.Exec(ctx, "update items set v = $1 || 'a' where id = 1", v)
		if attempts == 1 {
			firstErr = err
		}
		return err
	})
	if err != nil {
		t.Fatalf("Tx: %v", err)
	}
	if !Retryable(firstErr) {
		t.Fatalf("first attempt's error = %v; want a serialization failure (40001)", firstErr)
	}
	if attempts != 2 {
		t.Fatalf("attempts = %d; want 2", attempts)
	}
	var v string
	if err := e.r.QueryRow(ctx, "select v from items where id = 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "0ba" {
		t.Fatalf("v = %q; want 0ba (the other's update, then ours on top of it)", v)
	}
}

// TestTxRetriesDeadlock: two transactions lock two rows in opposite orders;
// PostgreSQL aborts one with 40P01, Tx runs it again, and both commit.
func TestTxRetriesDeadlock(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx := ctxT(t)
	if _, err := e.r.Exec(ctx, "insert into items values (1, ''), (2, '')"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := map[string]int{}
	var deadlocks int
	locked := make(chan struct{}, 2) // each has taken its first row
	run := func(name string, first, second int) error {
		return e.r.Tx(ctx, func(tx pgx.Tx) error {
			mu.Lock()
			attempts[name]++
			n := attempts[name]
			mu.Unlock()
			if _, err := tx.Exec(ctx, "set local deadlock_timeout = '20ms'"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "update items set v = v || $1 where id = $2", name, first); err != nil {
				return err
			}
			if n == 1 {
				locked <- struct{}{}
				// Wait until the other holds its first row too, so that the
				// second updates cross.
				for len(locked) < 2 {
					time.Sleep(time.Millisecond)
				}
			}
			_, err := tx.Exec(ctx, "update items set v = v || $1 where id = $2", name, second)
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "40P01" {
				mu.Lock()
				deadlocks++
				mu.Unlock()
			}
			return err
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = run("a", 1, 2) })
	wg.Go(func() { errs[1] = run("b", 2, 1) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	if deadlocks != 1 || attempts["a"]+attempts["b"] != 3 {
		t.Fatalf("deadlocks = %d, attempts = %v; want 1 deadlock and 3 attempts", deadlocks, attempts)
	}
	var v1, v2 string
	if err := e.r.QueryRow(ctx, "select (select v from items where id = 1), (select v from items where id = 2)").Scan(&v1, &v2); err != nil {
		t.Fatal(err)
	}
	if len(v1) != 2 || len(v2) != 2 {
		t.Fatalf("rows = %q, %q; want each updated once by each transaction", v1, v2)
	}
}

// TestTxRollsBack: an error or a panic in fn rolls back; a plain error is
// not retried; a panic goes on.
func TestTxRollsBack(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.Pool.MaxConns = 1 })
	ctx := ctxT(t)
	boom := errors.New("boom")
	attempts := 0
	err := e.r.Tx(ctx, func(tx pgx.Tx) error {
		attempts++
		if _, err := tx.Exec(ctx, "insert into items values (1, 'err')"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || attempts != 1 {
		t.Fatalf("Tx = %v after %d attempts; want boom after 1", err, attempts)
	}
	var pidBefore, pidAfter int32
	if err := e.r.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidBefore); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != "kaboom" {
				t.Fatalf("recovered %v; want the panic to go on", p)
			}
		}()
		_ = e.r.Tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "insert into items values (2, 'panic')"); err != nil {
				return err
			}
			panic("kaboom")
		})
	}()
	// Rolled back, the connection is kept (a connection left in a
	// transaction would be closed by the pool).
	eventually(t, "no connection in use after the panic", func() bool { return e.r.Primary().Stat().Acquired == 0 })
	if err := e.r.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidAfter); err != nil {
		t.Fatal(err)
	}
	if pidAfter != pidBefore {
		t.Fatalf("backend after the panic = %d; want %d, the same connection, rolled back and kept", pidAfter, pidBefore)
	}
	if got := count(t, e.r, ctx, 1) + count(t, e.r, ctx, 2); got != 0 {
		t.Fatalf("rows after an error and a panic = %d; want 0 (rolled back)", got)
	}
	// pgxpool hands a connection back (through AfterRelease) in a goroutine.
	eventually(t, "no connection in use after Tx", func() bool { return e.r.Primary().Stat().Acquired == 0 })
}

// TestTxNoRetryAfterCommit: a 40001 from COMMIT itself (a deferred
// constraint fails only at COMMIT, here made to raise 40001) is returned
// as a *CommitError, never retried.
func TestTxNoRetryAfterCommit(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx := ctxT(t)
	for _, sql := range []string{
		`create function fail_at_commit() returns trigger language plpgsql as $$
		 begin raise exception 'serialization at commit' using errcode = '40001'; end $$`,
		`create constraint trigger at_commit after insert on items deferrable initially deferred
		 for each row execute function fail_at_commit()`,
	} {
		if _, err := e.r.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name       string
		selfCommit bool
	}{{"Tx commits", false}, {"fn commits", true}} {
		t.Run(tc.name, func(t *testing.T) {
			attempts := 0
			err := e.r.Tx(ctx, func(tx pgx.Tx) error {
				attempts++
				if _, err := tx.Exec(ctx, "insert into items values (1, 'x')"); err != nil {
					return err
				}
				if tc.selfCommit {
					return tx.Commit(ctx)
				}
				return nil
			})
			var ce *CommitError
			if !errors.As(err, &ce) || !Retryable(err) {
				t.Fatalf("Tx = %v; want a *CommitError wrapping 40001", err)
			}
			if attempts != 1 {
				t.Fatalf("attempts = %d; want 1 (COMMIT was sent)", attempts)
			}
		})
	}
}

// TestMaxUses: a connection is closed after MaxUses uses, so the backend
// serving the pool changes.
func TestMaxUses(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.Pool.MaxConns = 1; c.Pool.MaxUses = 3 })
	ctx := ctxT(t)
	pids := map[int32]int{}
	for range 9 {
		var pid int32
		if err := e.r.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids[pid]++
	}
	// New used the first connection once already (the cluster's id): uses
	// are 1+2, 3, 3, 1.
	if len(pids) != 4 {
		t.Fatalf("backends over 10 uses with MaxUses 3 = %v; want 4", pids)
	}
	for pid, n := range pids {
		if n > 3 {
			t.Fatalf("backend %d used %d times; want at most 3", pid, n)
		}
	}
	// A connection is closed as it would be handed out a fourth time.
	if got := e.r.Primary().Stat().ClosedMaxUses; got != 3 {
		t.Fatalf("ClosedMaxUses = %d; want 3", got)
	}
}

// TestSlowQueryLog: a statement over the threshold is logged with its SQL
// (not its arguments), duration and server; a fast one is not.
func TestSlowQueryLog(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&lockedWriter{mu: &mu, w: &buf}, nil))
	e := newEnv(t, false, func(c *Config) { c.Pool.SlowQuery = 100 * time.Millisecond; c.Logger = log })
	ctx := ctxT(t)
	if _, err := e.r.Exec(ctx, "select pg_sleep(0.15), $1::text", "secret-argument"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.Exec(ctx, "select 1 as fast"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	var slow []map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "dbrouter: slow query" {
			slow = append(slow, m)
		}
	}
	if len(slow) != 1 {
		t.Fatalf("slow-query lines = %d; want 1:\n%s", len(slow), out)
	}
	m := slow[0]
	if m["sql"] != "select pg_sleep(0.15), $1::text" || m["server"] != "primary" {
		t.Fatalf("logged sql=%v server=%v; want the statement and primary", m["sql"], m["server"])
	}
	if d, _ := m["duration"].(float64); time.Duration(d) < 150*time.Millisecond {
		t.Fatalf("logged duration %v; want ≥ 150ms", time.Duration(d))
	}
	if strings.Contains(out, "secret-argument") {
		t.Fatalf("the log holds an argument:\n%s", out)
	}
	if got := e.r.Primary().Stat().SlowQueries; got != 1 {
		t.Fatalf("SlowQueries = %d; want 1", got)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
