package dbrouter

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herdhq/herd/internal/testenv"
)

// env is a test's database on the shared primary, optionally with a
// private streaming replica, and a Router over them.
type env struct {
	primaryURL string
	replica    *testenv.PGReplica // nil without one
	replicaURL string
	r          *Router
}

// quiet drops the Router's logs in tests that do not look at them.
var quiet = slog.New(slog.DiscardHandler)

// newEnv makes the test's database with table items(id int primary key,
// v text), a replica if asked, and a Router with fast polls. mod may
// change the Config before New.
func newEnv(t *testing.T, withReplica bool, mod func(*Config)) *env {
	t.Helper()
	e := &env{}
	var name string
	e.primaryURL, name = testenv.PostgresDatabase(t)
	execOn(t, e.primaryURL, "create table items (id int primary key, v text)")
	if withReplica {
		e.replica = testenv.PostgresReplica(t)
		e.replicaURL = e.replica.DatabaseURL(name)
	}
	cfg := Config{
		Primary:      e.primaryURL,
		PollInterval: 20 * time.Millisecond,
		Pool:         PoolConfig{MaxConns: 8, MinConns: -1},
		Logger:       quiet,
	}
	if withReplica {
		cfg.Replicas = []string{e.replicaURL}
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(r.Close)
	e.r = r
	if withReplica {
		e.awaitState(t, Up)
	}
	return e
}

// execOn runs sql on a connection of its own to url.
func execOn(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pauseReplay pauses WAL replay on the replica and waits until it is
// paused; the test's end (or resumeReplay) resumes it.
func (e *env) pauseReplay(t *testing.T) {
	t.Helper()
	execOn(t, e.replicaURL, "select pg_wal_replay_pause()")
	eventually(t, "replay paused", func() bool {
		var state string
		e.queryReplica(t, "select pg_get_wal_replay_pause_state()", &state)
		return state == "paused"
	})
}

func (e *env) resumeReplay(t *testing.T) {
	t.Helper()
	execOn(t, e.replicaURL, "select pg_wal_replay_resume()")
}

// queryReplica reads one row from the replica directly.
func (e *env) queryReplica(t *testing.T, sql string, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.replicaURL)
	if err != nil {
		t.Fatalf("connecting to the replica: %v", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// awaitState polls until the replica is in state want.
func (e *env) awaitState(t *testing.T, want ReplicaState) {
	t.Helper()
	eventually(t, "replica "+want.String(), func() bool {
		e.r.Poll(context.Background())
		return e.r.Stat().Replicas[0].State == want
	})
}

// eventually waits up to 15 s for cond, checking every 10 ms.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
