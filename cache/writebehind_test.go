package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// applyOnce is an idempotent store: the entry id goes into a set, and the
// amount is added only when the id was new. calls counts every Apply.
var applyOnce = redis.NewScript(`
redis.call('INCR', KEYS[3])
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('INCRBY', KEYS[2], ARGV[2]) end
return 1`)

func applier(rdb *redis.Client, name string, delay time.Duration) func(ctx context.Context, id, key string, p []byte) error {
	return func(ctx context.Context, id, key string, p []byte) error {
		time.Sleep(delay) // a slow store
		return applyOnce.Run(ctx, rdb, []string{name + ":done", name + ":sum", name + ":calls"}, id, string(p)).Err()
	}
}

func wbConsumer(rdb *redis.Client, name string) int {
	q, err := NewQueue(rdb, QueueOptions{Stream: name + ":wb", Consumer: "doomed", Batch: 50, Block: 20 * time.Millisecond,
		Apply: applier(rdb, name, 2*time.Millisecond), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	q.Run(context.Background()) // until kill -9
	return 0
}

func TestWriteBehindSurvivesKill9(t *testing.T) {
	rdb, name := sharedRedis(t)
	url := testenv.Redis(t)
	ctx := context.Background()
	q, err := NewQueue(rdb, QueueOptions{Stream: name + ":wb", Consumer: "rescuer", Batch: 50, Block: 20 * time.Millisecond,
		ClaimIdle: 200 * time.Millisecond, Apply: applier(rdb, name, 0), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	want := 0
	for i := 1; i <= n; i++ {
		if _, err := q.Enqueue(ctx, "item"+strconv.Itoa(i), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		want += i
	}
	cmd := helperCmd(t, "wbconsume", url, name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the consumer to apply some", 10*time.Second, func() bool {
		c, _ := rdb.SCard(ctx, name+":done").Result()
		return c >= 75
	})
	cmd.Process.Kill() // SIGKILL, mid-batch
	cmd.Wait()
	applied, _ := rdb.SCard(ctx, name+":done").Result()
	pend, _ := rdb.XPending(ctx, name+":wb", "writers").Result()
	if applied >= n || pend.Count == 0 {
		t.Fatalf("kill came too late: %d applied, %d pending", applied, pend.Count)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- q.Run(rctx) }()
	waitFor(t, "every item applied", 20*time.Second, func() bool {
		c, _ := rdb.SCard(ctx, name+":done").Result()
		p, _ := rdb.XPending(ctx, name+":wb", "writers").Result()
		return c == n && p.Count == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sum, _ := rdb.Get(ctx, name+":sum").Int()
	calls, _ := rdb.Get(ctx, name+":calls").Int()
	if sum != want {
		t.Fatalf("sum applied: got %d; want %d (each item exactly once)", sum, want)
	}
	if dead, _ := rdb.XLen(ctx, name+":wb:dead").Result(); dead != 0 {
		t.Fatalf("dead letters: got %d; want 0", dead)
	}
	t.Logf("killed after %d of %d applied with %d pending; %d apply calls in all, each item's effect once", applied, n, pend.Count, calls)
}

func TestWriteBehindDeadLetter(t *testing.T) {
	rdb, name := sharedRedis(t)
	ctx := context.Background()
	var tries int
	q, _ := NewQueue(rdb, QueueOptions{Stream: name + ":wb", Block: 10 * time.Millisecond, ClaimIdle: 10 * time.Millisecond,
		MaxTries: 3, Logger: slog.New(slog.DiscardHandler),
		Apply: func(ctx context.Context, id, key string, p []byte) error {
			if key == "poison" {
				tries++
				return errors.New("constraint violation")
			}
			return rdb.SAdd(ctx, name+":done", key).Err()
		}})
	q.Enqueue(ctx, "poison", []byte("x"))
	q.Enqueue(ctx, "fine", []byte("y"))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- q.Run(rctx) }()
	waitFor(t, "a dead letter", 10*time.Second, func() bool { n, _ := rdb.XLen(ctx, name+":wb:dead").Result(); return n == 1 })
	waitFor(t, "nothing pending", 10*time.Second, func() bool {
		p, _ := rdb.XPending(ctx, name+":wb", "writers").Result()
		return p.Count == 0
	})
	cancel()
	<-done
	if tries != 3 {
		t.Fatalf("applies of the poison entry: got %d; want MaxTries=3", tries)
	}
	if ok, _ := rdb.SIsMember(ctx, name+":done", "fine").Result(); !ok {
		t.Fatal("the good entry was not applied")
	}
	d, _ := rdb.XRange(ctx, name+":wb:dead", "-", "+").Result()
	if d[0].Values["k"] != "poison" {
		t.Fatalf("dead letter: got %v; want the poison entry", d[0].Values)
	}
}

func TestWriteBehindFromCache(t *testing.T) {
	rdb, name := sharedRedis(t)
	ctx := context.Background()
	got := make(chan string, 1)
	q, _ := NewQueue(rdb, QueueOptions{Stream: name + ":wb", Block: 10 * time.Millisecond,
		Apply: func(ctx context.Context, id, key string, p []byte) error { got <- key + "=" + string(p); return nil }})
	c := newRedisCache[int](t, Options{Name: name, Redis: rdb})
	if err := c.WriteBehind(ctx, q, "k", 42); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k", nil); v != 42 || err != nil {
		t.Fatalf("Get after WriteBehind = %d, %v; want 42 at once", v, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go q.Run(rctx)
	select {
	case s := <-got:
		if s != "k=42" {
			t.Fatalf("applied %q; want k=42", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write never reached the store")
	}
}
