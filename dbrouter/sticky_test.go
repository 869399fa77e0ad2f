package dbrouter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herdhq/herd/dbrouter/consistency"
	"github.com/herdhq/herd/internal/testenv"
)

// stores runs f on a MemoryStore and on a RedisStore (real Redis).
func stores(t *testing.T, f func(t *testing.T, s StickyStore)) {
	t.Run("memory", func(t *testing.T) { f(t, NewMemoryStore(time.Minute)) })
	t.Run("redis", func(t *testing.T) {
		opt, err := redis.ParseURL(testenv.Redis(t))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { _ = c.Close() })
		var b [6]byte
		_, _ = rand.Read(b[:])
		prefix := "herd-test-dbrouter-" + hex.EncodeToString(b[:]) + ":"
		t.Cleanup(func() {
			keys, _ := c.Keys(context.Background(), prefix+"*").Result()
			if len(keys) > 0 {
				c.Del(context.Background(), keys...)
			}
		})
		f(t, NewRedisStore(c, prefix, time.Minute))
	})
}

// TestStickyKeepsMax: a later Record of an older position never lowers
// what a scope has; clusters are kept apart.
func TestStickyKeepsMax(t *testing.T) {
	stores(t, func(t *testing.T, s StickyStore) {
		ctx := ctxT(t)
		steps := []struct {
			record consistency.Token
			want   map[uint64]LSN
		}{
			{consistency.NewToken(1, 0x100), map[uint64]LSN{1: 0x100}},
			{consistency.NewToken(1, 0x50), map[uint64]LSN{1: 0x100}},
			{consistency.NewToken(2, 0x10), map[uint64]LSN{1: 0x100, 2: 0x10}},
			{consistency.NewToken(1, 0x1_0000_0200), map[uint64]LSN{1: 0x1_0000_0200, 2: 0x10}},
		}
		for i, st := range steps {
			if err := s.Record(ctx, "user:42", st.record); err != nil {
				t.Fatal(err)
			}
			got, err := s.Load(ctx, "user:42")
			if err != nil {
				t.Fatal(err)
			}
			for c, want := range st.want {
				if got.LSN(c) != want {
					t.Fatalf("step %d: cluster %d = %v; want %v (token %q)", i, c, got.LSN(c), want, got)
				}
			}
		}
		if got, err := s.Load(ctx, "user:43"); err != nil || !got.IsZero() {
			t.Fatalf("another scope = %q, %v; want nothing", got, err)
		}
	})
}

// TestMemoryStoreExpires: an entry lives TTL after its last Record, and
// expired ones are swept.
func TestMemoryStoreExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewMemoryStore(time.Minute)
	s.Now = func() time.Time { return now }
	ctx := context.Background()
	_ = s.Record(ctx, "a", consistency.NewToken(1, 5))
	now = now.Add(59 * time.Second)
	if got, _ := s.Load(ctx, "a"); got.LSN(1) != 5 {
		t.Fatalf("before TTL: got %v; want 5", got.LSN(1))
	}
	now = now.Add(2 * time.Second)
	if got, _ := s.Load(ctx, "a"); !got.IsZero() {
		t.Fatalf("after TTL: got %q; want nothing", got)
	}
	// An expired entry does not hold a later Record up: it starts anew.
	_ = s.Record(ctx, "a", consistency.NewToken(1, 3))
	if got, _ := s.Load(ctx, "a"); got.LSN(1) != 3 {
		t.Fatalf("recorded after expiry: got %v; want 3", got.LSN(1))
	}
	for i := range 2000 {
		_ = s.Record(ctx, "k"+string(rune('a'+i%26))+time.Duration(i).String(), consistency.NewToken(1, 1))
	}
	now = now.Add(2 * time.Minute)
	for i := range 1500 {
		_ = s.Record(ctx, "fresh"+time.Duration(i).String(), consistency.NewToken(1, 1))
	}
	if n := s.Len(); n > 1500 {
		t.Fatalf("entries after expiry and 1,500 new ones = %d; want the expired swept", n)
	}
}

// TestRedisStoreTTL: the key expires TTL after the last Record.
func TestRedisStoreTTL(t *testing.T) {
	opt, err := redis.ParseURL(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := ctxT(t)
	s := NewRedisStore(c, "herd-test-dbrouter-ttl:", 30*time.Second)
	defer c.Del(ctx, "herd-test-dbrouter-ttl:x")
	if err := s.Record(ctx, "x", consistency.NewToken(9, 1)); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, "herd-test-dbrouter-ttl:x").Result()
	if err != nil || ttl <= 29*time.Second || ttl > 30*time.Second {
		t.Fatalf("TTL = %v, %v; want about 30s", ttl, err)
	}
}

// TestScopeSticking: a write under a scope makes a later read in the same
// scope, with no token, fresh (on the primary while the replica is paused).
func TestScopeSticking(t *testing.T) {
	e := newEnv(t, true, nil)
	ctx := ctxT(t)
	e.pauseReplay(t)
	defer e.resumeReplay(t)
	if _, err := e.r.Exec(WithScope(ctx, "user:1"), "insert into items values (11, 'a')"); err != nil {
		t.Fatal(err)
	}
	if got := count(t, e.r.Read(), WithScope(ctx, "user:1"), 11); got != 1 {
		t.Fatalf("read in the writer's scope saw %d rows; want 1", got)
	}
	if got := count(t, e.r.Read(), WithScope(ctx, "user:2"), 11); got != 0 {
		t.Fatalf("read in another scope saw %d rows; want 0 (stale, from the replica)", got)
	}
}
