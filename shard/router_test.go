package shard

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/herdhq/herd/dbrouter"
	"github.com/herdhq/herd/internal/testenv"
)

// Interface guard: a shard may be a dbrouter.Router (primary + replicas).
var _ Conn = (*dbrouter.Router)(nil)

// Shards behind dbrouter Routers: the Router has no SendBatch, so every
// routed call takes the transaction path (BEGIN, enter, statement,
// COMMIT); routing, the fence and a move under writes work the same.
func TestShardsBehindRouters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 2)
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.config(2)
	for i, name := range c.names {
		u.Path = "/" + c.prefix + "_" + strconv.Itoa(i)
		r, err := dbrouter.New(ctx, dbrouter.Config{Primary: u.String()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		if _, ok := Conn(r).(batcher); ok {
			t.Log("the Router can send batches now: this test no longer covers the transaction path")
		}
		cfg.Shards[name] = r
	}
	db, err := Create(ctx, cfg, 16)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoad(db, 2, 20)
	l.start(ctx)
	for l.done.Load() < 100 {
		select {
		case err := <-l.errs:
			t.Fatal(err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	moves, err := Plan(db.Map(), "s0", "s1")
	if err != nil {
		t.Fatal(err)
	}
	// The map is even: move four buckets of s0 to s1 and back.
	bs := db.Map().BucketsOf("s0")[:4]
	for _, b := range bs {
		if err := db.Move(ctx, b, "s1"); err != nil {
			l.finish(t)
			t.Fatal(err)
		}
	}
	for _, b := range bs {
		if err := db.Move(ctx, b, "s0"); err != nil {
			l.finish(t)
			t.Fatal(err)
		}
	}
	l.finish(t)
	if len(moves) != 0 {
		t.Errorf("plan of an even map: %v; want none", moves)
	}
	t.Logf("%d writes, %d reads, %d counts over Routers", l.ops.Load(), l.reads.Load(), l.scans.Load())
	l.verify(ctx, t, c)
}
