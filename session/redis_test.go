package session

import (
	"strings"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
)

// TestRedisTTL: the session key's real TTL follows the deadline (PEXPIRE),
// idle and absolute, and its user's index lives at least as long.
func TestRedisTTL(t *testing.T) {
	u := testenv.Redis(t)
	c := redisClient(t, u)
	prefix := "herdtest:session:" + randHex(6) + ":"
	t.Cleanup(func() { flushPrefix(t, u, prefix) })
	st := NewRedisStore(c, RedisOptions{Prefix: prefix})
	clk := newClock()
	// Idle 30 min, lifetime 40 min: the second touch is capped.
	m := &Manager{Store: st, IdleTimeout: 30 * time.Minute, Lifetime: 40 * time.Minute, Now: clk.Now}
	ctx := ctxT(t)
	tok := login(t, m, "ttl-user", "a", "1")
	key := st.Key(idOf(tok))
	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	near := func(what string, got, want time.Duration) {
		t.Helper()
		if got > want || got < want-5*time.Second {
			t.Errorf("%s: got PTTL %v; want %v", what, got, want)
		}
	}
	near("after create", pttl(key), 30*time.Minute)
	near("user index after create", pttl(prefix+"user:ttl-user"), 30*time.Minute)

	clk.Advance(5 * time.Minute) // touch due (interval 3 min): idle deadline
	use(t, m, tok)
	near("after a touch at +5m", pttl(key), 30*time.Minute)

	clk.Advance(15 * time.Minute) // +20m: min(+50m, +40m) = 20 min away
	use(t, m, tok)
	near("after a touch at +20m (capped by the lifetime)", pttl(key), 20*time.Minute)
	if idx := pttl(prefix + "user:ttl-user"); idx < pttl(key) {
		t.Errorf("user index PTTL %v below its session's %v", idx, pttl(key))
	}

	// A touch writes the deadline and the TTL only: a value another
	// instance wrote straight into the hash meanwhile survives it.
	if err := c.HSet(ctx, key, "v:other", "kept").Err(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Minute)
	use(t, m, tok)
	if v, _ := c.HGet(ctx, key, "v:other").Result(); v != "kept" {
		t.Errorf("a touch rewrote the values: got v:other=%q; want kept", v)
	}
	// The token itself appears nowhere in Redis.
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.Contains(k, tok) {
			t.Errorf("key %q holds the token", k)
		}
		if vals, _ := c.HGetAll(ctx, k).Result(); vals != nil {
			for f, v := range vals {
				if strings.Contains(f+v, tok) {
					t.Errorf("key %q field %q holds the token", k, f)
				}
			}
		}
	}
}
