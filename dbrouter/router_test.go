package dbrouter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// count returns how many rows of items have id.
func count(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ctx context.Context, id int) int {
	t.Helper()
	var n int
	if err := q.QueryRow(ctx, "select count(*) from items where id = $1", id).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// TestReadYourWrites: with replay paused, a read without the write's token
// is served by the replica and is stale; with it, by the primary, fresh.
func TestReadYourWrites(t *testing.T) {
	e := newEnv(t, true, nil)
	ctx := ctxT(t)
	e.pauseReplay(t)
	defer e.resumeReplay(t)

	wctx := WithToken(ctx, Token{})
	if _, err := e.r.Exec(wctx, "insert into items values (1, 'a')"); err != nil {
		t.Fatal(err)
	}
	tok := TokenFrom(wctx)
	if tok.IsZero() || tok.LSN(e.r.Cluster()) == 0 {
		t.Fatalf("token after a write under a holder = %q; want one for cluster %d", tok, e.r.Cluster())
	}

	sel := e.r.Decisions("replica0", "selected")
	if got := count(t, e.r.Read(), ctx, 1); got != 0 {
		t.Fatalf("read without a token saw %d rows; want 0 (stale), or the test cannot tell a replica from the primary", got)
	}
	if got := e.r.Decisions("replica0", "selected") - sel; got != 1 {
		t.Fatalf("reads the replica took = %d; want 1", got)
	}

	tokReads := e.r.Decisions("primary", "token")
	// The same through a new context carrying the token, as across services.
	rctx := WithToken(ctx, tok)
	if got := count(t, e.r.Read(), rctx, 1); got != 1 {
		t.Fatalf("read with the token saw %d rows; want 1", got)
	}
	if got := count(t, e.r, ReadOnly(wctx), 1); got != 1 {
		t.Fatalf("ReadOnly read under the writer's context saw %d rows; want 1", got)
	}
	if got := e.r.Decisions("primary", "token") - tokReads; got != 2 {
		t.Fatalf("reads sent to the primary for their token = %d; want 2", got)
	}

	// Once the replica replays past the token, it takes the read.
	e.resumeReplay(t)
	eventually(t, "the replica to pass the token", func() bool {
		e.r.Poll(ctx)
		return e.r.Stat().Replicas[0].Replayed >= tok.LSN(e.r.Cluster())
	})
	sel = e.r.Decisions("replica0", "selected")
	if got := count(t, e.r.Read(), rctx, 1); got != 1 {
		t.Fatalf("read with the token after replay saw %d rows; want 1", got)
	}
	if got := e.r.Decisions("replica0", "selected") - sel; got != 1 {
		t.Fatalf("reads the replica took after replay = %d; want 1", got)
	}
}

// TestTokenWait: with TokenWait, a read whose token is not replayed waits
// for the replica instead of going to the primary.
func TestTokenWait(t *testing.T) {
	e := newEnv(t, true, func(c *Config) { c.TokenWait = 10 * time.Second })
	ctx := ctxT(t)
	e.pauseReplay(t)
	defer e.resumeReplay(t)
	wctx := WithToken(ctx, Token{})
	if _, err := e.r.Exec(wctx, "insert into items values (2, 'b')"); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go func() {
		var n int
		if err := e.r.Read().QueryRow(wctx, "select count(*) from items where id = 2").Scan(&n); err != nil {
			n = -1
		}
		got <- n
	}()
	eventually(t, "the read to wait", func() bool { return e.r.Stat().TokenWaiting == 1 })
	e.resumeReplay(t)
	if n := <-got; n != 1 {
		t.Fatalf("read after waiting saw %d rows; want 1", n)
	}
	if n := e.r.Decisions("replica0", "selected"); n != 1 {
		t.Fatalf("reads the replica took = %d; want 1 (the read waited for it)", n)
	}
	if n := e.r.Decisions("primary", "token"); n != 0 {
		t.Fatalf("reads on the primary for their token = %d; want 0", n)
	}
}

// TestLagQuarantine: a paused replica falls behind past MaxLagBytes and
// leaves the read pool; resumed, it rejoins.
func TestLagQuarantine(t *testing.T) {
	e := newEnv(t, true, func(c *Config) {
		c.MaxLagBytes = 256 << 10
		c.MaxLag = -1
		c.PollInterval = time.Hour // the test polls
	})
	ctx := ctxT(t)
	e.pauseReplay(t)
	defer e.resumeReplay(t)
	// About 2 MB of WAL.
	if _, err := e.r.Exec(ctx, "insert into items select g, repeat('x', 200) from generate_series(100, 10100) g"); err != nil {
		t.Fatal(err)
	}
	e.r.Poll(ctx)
	st := e.r.Stat().Replicas[0]
	if st.State != Lagging {
		t.Fatalf("state after 2 MB behind = %v (lag %d bytes); want lagging", st.State, st.LagBytes)
	}
	lag := e.r.Decisions("primary", "lagging")
	if got := count(t, e.r.Read(), ctx, 100); got != 1 {
		t.Fatalf("read while the replica lags saw %d rows; want 1 (from the primary)", got)
	}
	if got := e.r.Decisions("primary", "lagging") - lag; got != 1 {
		t.Fatalf("reads sent to the primary for lag = %d; want 1", got)
	}
	e.resumeReplay(t)
	e.awaitState(t, Up)
	sel := e.r.Decisions("replica0", "selected")
	if got := count(t, e.r.Read(), ctx, 100); got != 1 {
		t.Fatalf("read after rejoining saw %d rows; want 1", got)
	}
	if got := e.r.Decisions("replica0", "selected") - sel; got != 1 {
		t.Fatalf("reads the rejoined replica took = %d; want 1", got)
	}
}

// TestNextState holds the hysteresis: out over the limit, back only under
// RejoinFraction of it.
func TestNextState(t *testing.T) {
	cfg := Config{MaxLag: 10 * time.Second, MaxLagBytes: 1000, RejoinFraction: 0.5}
	for _, tc := range []struct {
		name  string
		cur   int32
		bytes int64
		lag   time.Duration
		want  int32
	}{
		{"up under", stateUp, 900, 9 * time.Second, stateUp},
		{"up over bytes", stateUp, 1001, 0, stateLagging},
		{"up over time", stateUp, 0, 11 * time.Second, stateLagging},
		{"lagging in band", stateLagging, 600, 0, stateLagging},
		{"lagging in time band", stateLagging, 0, 6 * time.Second, stateLagging},
		{"lagging under band", stateLagging, 500, 5 * time.Second, stateUp},
		{"down reached", stateDown, 0, 0, stateUp},
		{"down reached lagging", stateDown, 5000, 0, stateLagging},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextState(tc.cur, tc.bytes, tc.lag, cfg); got != tc.want {
				t.Errorf("got %v; want %v", ReplicaState(got), ReplicaState(tc.want))
			}
		})
	}
	off := Config{MaxLag: -1, MaxLagBytes: -1, RejoinFraction: 0.5}
	if got := nextState(stateUp, 1<<40, time.Hour, off); got != stateUp {
		t.Errorf("with limits off: got %v; want up", ReplicaState(got))
	}
}

// TestReplicaStopUnderLoad: stopping the replica under a read load fails
// no read; the reads' failures quarantine it (the poller is idle), and a
// poll once it is started brings it back.
func TestReplicaStopUnderLoad(t *testing.T) {
	e := newEnv(t, true, func(c *Config) { c.FailThreshold = 2; c.PollInterval = time.Hour })
	ctx := ctxT(t)
	if _, err := e.r.Exec(ctx, "insert into items values (7, 'x')"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the row on the replica", func() bool {
		var n int
		e.queryReplica(t, "select count(*) from items where id = 7", &n)
		return n == 1
	})
	var reads, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				err := e.r.Read().QueryRow(ctx, "select count(*) from items where id = 7").Scan(&n)
				reads.Add(1)
				if err != nil || n != 1 {
					failed.Add(1)
					if err == nil {
						err = errors.New("wrong count")
					}
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	eventually(t, "reads on the replica", func() bool { return e.r.Decisions("replica0", "selected") > 50 })
	if err := e.replica.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replica quarantined", func() bool { return e.r.Stat().Replicas[0].State == Down })
	down := e.r.Decisions("primary", "down")
	eventually(t, "reads on the primary", func() bool { return e.r.Decisions("primary", "down") > down+50 })
	if err := e.replica.Start(); err != nil {
		t.Fatal(err)
	}
	e.awaitState(t, Up)
	sel := e.r.Decisions("replica0", "selected")
	eventually(t, "reads on the replica again", func() bool { return e.r.Decisions("replica0", "selected") > sel+50 })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d reads failed (first: %v); want 0", n, reads.Load(), firstErr.Load())
	}
	t.Logf("%d reads, %v fell back to the primary", reads.Load(), e.r.Decisions("primary", "fallback"))
}

// TestFallbackOnReplicaError: a statement the replica refuses (it cannot
// assign a transaction id in recovery) is answered by the primary.
func TestFallbackOnReplicaError(t *testing.T) {
	e := newEnv(t, true, nil)
	ctx := ctxT(t)
	var xid int64
	if err := e.r.Read().QueryRow(ctx, "select txid_current()").Scan(&xid); err != nil {
		t.Fatalf("read the replica refuses: %v; want the primary's answer", err)
	}
	if got := e.r.Decisions("primary", "fallback"); got != 1 {
		t.Fatalf("fallbacks = %d; want 1", got)
	}
	if st := e.r.Stat().Replicas[0].State; st != Up {
		t.Fatalf("replica after a statement error = %v; want up (not the server's fault)", st)
	}
}

// TestNoReplicas: reads go to the primary.
func TestNoReplicas(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx := ctxT(t)
	if got := count(t, e.r.Read(), ctx, 1); got != 0 {
		t.Fatalf("got %d; want 0", got)
	}
	if got := e.r.Decisions("primary", "no_replica"); got != 1 {
		t.Fatalf("no_replica decisions = %d; want 1", got)
	}
}
