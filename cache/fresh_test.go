package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newClock() *fakeClock {
	clk := &fakeClock{}
	clk.ns.Store(time.Now().UnixNano())
	return clk
}

// seeded is a deterministic uniform source in (0, 1], safe for concurrent use.
func seeded(seed uint64) func() float64 {
	r := mrand.New(mrand.NewPCG(seed, 1))
	var mu sync.Mutex
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return 1 - r.Float64()
	}
}

// firstBlocks is a loader of v whose first call blocks until release is
// closed (inLoad is closed when it starts); every call is counted, and any
// after the first returns at once, so an extra load shows as a count, not
// as a hang.
func firstBlocks(v string) (load Loader[string], loads *atomic.Int64, inLoad, release chan struct{}) {
	loads = new(atomic.Int64)
	inLoad, release = make(chan struct{}), make(chan struct{})
	load = func(context.Context, string) (string, error) {
		if loads.Add(1) == 1 {
			close(inLoad)
			<-release
		}
		return v, nil
	}
	return load, loads, inLoad, release
}

// always makes XFetch decide to refresh whenever delta*beta*690 reaches the
// expiry (ln(1e-300) = -690.8).
func always() float64 { return 1e-300 }

// The chance that a Get refreshes a value early is e^(-gap/(delta*beta)),
// gap being the time left before its expiry: almost never far from it,
// always at it. Each trial puts a value with a known expiry and load time in
// L1, calls Get once and counts the loads it caused.
func TestXFetchProbabilityShape(t *testing.T) {
	const (
		delta  = 100 * time.Millisecond
		trials = 2000
	)
	for _, beta := range []float64{1, 2} {
		for _, tc := range []struct {
			name string
			gap  time.Duration // until expiry
		}{
			{"20 deltas before expiry: never", 20 * delta},
			{"10 deltas before: almost never", 10 * delta},
			{"2 deltas before", 2 * delta},
			{"1 delta before", delta},
			{"half a delta before", delta / 2},
			{"1 ms before: almost always", time.Millisecond},
			{"at expiry: always", 0},
		} {
			t.Run(fmt.Sprintf("beta=%v/%s", beta, tc.name), func(t *testing.T) {
				clk := newClock()
				c, err := New[int](Options{EarlyRefresh: beta, Jitter: -1, LocalTTL: time.Hour, clock: clk, rand: seeded(uint64(tc.gap))})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				load, n := counting(2, nil)
				for i := 0; i < trials; i++ {
					now := clk.NowNano()
					c.l1.Invalidate("k") // at expiry, fillL1 keeps nothing: a miss
					c.fillL1("k", entry[int]{v: 1, ttl: time.Hour, exp: now + int64(tc.gap), delta: delta}, c.snapshot("k"))
					if v, err := c.Get(context.Background(), "k", load); err != nil || (v != 1 && tc.gap > 0) {
						t.Fatalf("Get = %d, %v; want the current value 1 at once", v, err)
					}
					c.bg.Wait()
				}
				got := float64(n.Load()) / trials
				want := math.Exp(-float64(tc.gap) / (float64(delta) * beta))
				tol := 4*math.Sqrt(want*(1-want)/trials) + 0.002
				if math.Abs(got-want) > tol {
					t.Fatalf("refreshed in %d of %d Gets (%.4f); want %.4f ± %.4f", n.Load(), trials, got, want, tol)
				}
				t.Logf("refreshed %.4f, want %.4f", got, want)
			})
		}
	}
}

// Many callers that all decide to refresh get the current value at once,
// and the loader runs once, in the background.
func TestEarlyRefreshOneLoadInBackground(t *testing.T) {
	clk := newClock()
	c, _ := New[string](Options{EarlyRefresh: 1, Jitter: -1, clock: clk, rand: always})
	defer c.Close()
	ctx := context.Background()
	c.Get(ctx, "k", func(context.Context, string) (string, error) {
		clk.advance(50 * time.Millisecond) // the load's time: delta
		return "v1", nil
	})
	clk.advance(time.Minute - 2*time.Second) // LocalTTL is 1 min: 2 s before expiry
	slow, loads, inLoad, release := firstBlocks("v2")
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := c.Get(ctx, "k", slow); v != "v1" || err != nil {
				t.Errorf("Get during the refresh = %q, %v; want v1 at once", v, err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callers waited for the background refresh")
	}
	<-inLoad
	close(release)
	c.bg.Wait()
	if v, _ := c.Get(ctx, "k", slow); v != "v2" {
		t.Fatalf("after the refresh: got %q; want v2", v)
	}
	c.bg.Wait()
	if got := loads.Load(); got != 1 {
		t.Fatalf("loader calls across 50 callers: got %d; want 1", got)
	}
	if got := c.Stats().EarlyRefreshes; got < 1 {
		t.Fatalf("EarlyRefreshes: got %d; want >= 1", got)
	}
}

// Across processes, one refresh loads; the others find the lease taken, or
// the refreshed value, and load nothing.
func TestEarlyRefreshFleetLease(t *testing.T) {
	rdb, name := sharedRedis(t)
	clk := newClock()
	o := Options{Name: name, Redis: rdb, EarlyRefresh: 1, Jitter: -1, TTL: time.Minute, clock: clk, rand: always}
	a := newRedisCache[string](t, o)
	b := newRedisCache[string](t, o)
	ctx := context.Background()
	a.Get(ctx, "k", func(context.Context, string) (string, error) {
		clk.advance(50 * time.Millisecond)
		return "v1", nil
	})
	if v, _ := b.Get(ctx, "k", nil); v != "v1" {
		t.Fatalf("b.Get = %q; want v1 from Redis", v)
	}
	clk.advance(time.Minute - 2*time.Second)
	slow, loads, inLoad, release := firstBlocks("v2")
	if v, _ := a.Get(ctx, "k", slow); v != "v1" {
		t.Fatalf("a.Get = %q; want v1 at once", v)
	}
	<-inLoad
	var wg sync.WaitGroup
	for _, c := range []*Cache[string]{a, b} {
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, err := c.Get(ctx, "k", slow); v != "v1" || err != nil {
					t.Errorf("Get during the refresh = %q, %v; want v1", v, err)
				}
			}()
		}
	}
	wg.Wait()
	b.bg.Wait() // b's refresh found a's lease
	close(release)
	a.bg.Wait()
	if got, _ := rdb.Get(ctx, a.l2key("k")).Result(); len(got) < headerLen || got[headerLen:] != `"v2"` {
		t.Fatalf("Redis after the refresh: %q; want v2", got)
	}
	// b still holds v1; its next refresh takes a's value, loading nothing.
	b.Get(ctx, "k", slow)
	b.bg.Wait()
	if v, _ := b.Get(ctx, "k", slow); v != "v2" {
		t.Fatalf("b after a's refresh: got %q; want v2", v)
	}
	b.bg.Wait()
	if got := loads.Load(); got != 1 {
		t.Fatalf("loader calls across 2 caches x 21 callers: got %d; want 1", got)
	}
}

// Values written before timed caches existed ('v' + codec) still read, and
// a cache without the options reads timed values.
func TestTimedValueFormatCompatible(t *testing.T) {
	rdb, name := sharedRedis(t)
	ctx := context.Background()
	timed := newRedisCache[string](t, Options{Name: name, Redis: rdb, EarlyRefresh: 1, StaleFor: time.Second})
	plain := newRedisCache[string](t, Options{Name: name, Redis: rdb})
	rdb.Set(ctx, timed.l2key("old"), `v"from before"`, time.Minute)
	load, n := counting("loaded", nil)
	if v, err := timed.Get(ctx, "old", load); v != "from before" || err != nil || n.Load() != 0 {
		t.Fatalf("timed cache on an old value: %q, %v after %d loads; want it, no load", v, err, n.Load())
	}
	timed.Get(ctx, "new", load)
	if raw, _ := rdb.Get(ctx, timed.l2key("new")).Result(); raw[0] != 'x' {
		t.Fatalf("timed value in Redis: %q; want the x header", raw)
	}
	if v, err := plain.Get(ctx, "new", load); v != "loaded" || err != nil || n.Load() != 1 {
		t.Fatalf("plain cache on a timed value: %q, %v after %d loads; want loaded, 1 load", v, err, n.Load())
	}
	for _, tc := range []struct{ exp, delta time.Duration }{{0, 0}, {time.Hour, 1500 * time.Microsecond}, {time.Hour, 10 * time.Hour}} {
		exp := time.Now().Add(tc.exp).UnixMilli() * 1e6
		b := appendHeader(nil, exp, tc.delta)
		gotExp, gotDelta, err := parseHeader(b)
		want := min(tc.delta, maxDeltaUs*time.Microsecond)
		if err != nil || gotExp != exp || gotDelta != want || len(b) != headerLen {
			t.Errorf("header %q: %d, %v, %v; want %d, %v", b, gotExp, gotDelta, err, exp, want)
		}
	}
}

func TestEarlyRefreshOptions(t *testing.T) {
	for _, o := range []Options{{EarlyRefresh: -1}, {EarlyRefresh: math.NaN()}, {StaleFor: -time.Second}} {
		if _, err := New[int](o); err == nil {
			t.Errorf("New(%+v): got nil error; want one", o)
		}
	}
}

// A value past its expiry is served, marked, while its load fails and
// StaleFor has not run out; never after.
func TestStaleOnLoaderErrorL1(t *testing.T) {
	boom := errors.New("db down")
	failing := func(context.Context, string) (string, error) { return "", boom }
	ctx := context.Background()
	fresh := func(t *testing.T) (*Cache[string], *fakeClock, int64) {
		clk := newClock()
		c, _ := New[string](Options{StaleFor: 10 * time.Second, LocalTTL: time.Minute, Jitter: -1, clock: clk})
		t.Cleanup(func() { c.Close() })
		t0 := clk.NowNano()
		c.Get(ctx, "k", func(context.Context, string) (string, error) { return "v1", nil })
		return c, clk, t0
	}
	for _, tc := range []struct {
		name      string
		after     time.Duration
		load      Loader[string]
		wantV     string
		wantStale bool
		wantErr   error
	}{
		{"fresh: a hit, no load", 30 * time.Second, failing, "v1", false, nil},
		{"expired, load fails: stale", 65 * time.Second, failing, "v1", true, boom},
		{"at expiry+StaleFor: the error", 70 * time.Second, failing, "", false, boom},
		{"past StaleFor: the error", 75 * time.Second, failing, "", false, boom},
		{"expired, load works: new value", 65 * time.Second, func(context.Context, string) (string, error) { return "v2", nil }, "v2", false, nil},
		{"expired, not found: not papered over", 65 * time.Second, func(context.Context, string) (string, error) { return "", ErrNotFound }, "", false, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk, t0 := fresh(t)
			clk.advance(tc.after)
			v, err := c.Get(ctx, "k", tc.load)
			if v != tc.wantV || errors.Is(err, ErrStale) != tc.wantStale || (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Get = %q, %v; want %q, stale %v, error %v", v, err, tc.wantV, tc.wantStale, tc.wantErr)
			}
			var se *StaleError
			if tc.wantStale {
				if !errors.As(err, &se) || se.Expired.UnixNano() != t0+int64(time.Minute) {
					t.Fatalf("StaleError: %#v; want Expired = t0 + 1 min", se)
				}
			}
			if got, want := c.Stats().StaleServed, map[bool]uint64{true: 1}[tc.wantStale]; got != want {
				t.Fatalf("StaleServed: got %d; want %d", got, want)
			}
		})
	}
	t.Run("deleted: no stale value", func(t *testing.T) {
		c, clk, _ := fresh(t)
		c.Delete(ctx, "k")
		clk.advance(65 * time.Second)
		if v, err := c.Get(ctx, "k", failing); v != "" || !errors.Is(err, boom) || errors.Is(err, ErrStale) {
			t.Fatalf("Get after Delete = %q, %v; want the loader's error alone", v, err)
		}
	})
	t.Run("off by default", func(t *testing.T) {
		clk := newClock()
		c, _ := New[string](Options{LocalTTL: time.Minute, Jitter: -1, clock: clk})
		defer c.Close()
		c.Get(ctx, "k", func(context.Context, string) (string, error) { return "v1", nil })
		clk.advance(65 * time.Second)
		if v, err := c.Get(ctx, "k", failing); v != "" || !errors.Is(err, boom) || errors.Is(err, ErrStale) {
			t.Fatalf("Get = %q, %v; want the loader's error alone", v, err)
		}
	})
}

// The same against Redis with L1 off: the expired value is kept in Redis
// for StaleFor, so another process (an empty L1) serves it too; the clock
// is the test's, not Redis's: past StaleFor nothing stale is served even
// though the key is still in Redis.
func TestStaleOnLoaderErrorRedis(t *testing.T) {
	rdb, name := sharedRedis(t)
	clk := newClock()
	o := Options{Name: name, Redis: rdb, StaleFor: 10 * time.Second, TTL: time.Minute, LocalTTL: -1, Jitter: -1, clock: clk}
	a := newRedisCache[string](t, o)
	ctx := context.Background()
	boom := errors.New("db down")
	failing := func(context.Context, string) (string, error) { return "", boom }
	a.Get(ctx, "k", func(context.Context, string) (string, error) { return "v1", nil })
	if pttl, _ := rdb.PTTL(ctx, a.l2key("k")).Result(); pttl <= time.Minute || pttl > 70*time.Second {
		t.Fatalf("PTTL in Redis: %v; want TTL + StaleFor (70 s)", pttl)
	}
	clk.advance(65 * time.Second)
	b := newRedisCache[string](t, o)
	for _, c := range []*Cache[string]{a, b} {
		v, err := c.Get(ctx, "k", failing)
		if v != "v1" || !errors.Is(err, ErrStale) || !errors.Is(err, boom) {
			t.Fatalf("Get within StaleFor = %q, %v; want v1 with ErrStale and the loader's error", v, err)
		}
		if c.Stats().StaleServed != 1 {
			t.Fatalf("StaleServed: got %d; want 1", c.Stats().StaleServed)
		}
	}
	if n, _ := rdb.Exists(ctx, a.l2key("k")+leaseSuffix).Result(); n != 0 {
		t.Fatal("a failed load left its lease behind")
	}
	clk.advance(6 * time.Second)
	if v, err := a.Get(ctx, "k", failing); v != "" || !errors.Is(err, boom) || errors.Is(err, ErrStale) {
		t.Fatalf("Get past StaleFor = %q, %v; want the loader's error alone", v, err)
	}
	if v, err := b.Get(ctx, "k", func(context.Context, string) (string, error) { return "v2", nil }); v != "v2" || err != nil {
		t.Fatalf("Get with a working loader = %q, %v; want v2", v, err)
	}
	if v, err := a.Get(ctx, "k", failing); v != "v2" || err != nil {
		t.Fatalf("a.Get after b's load = %q, %v; want v2 from Redis", v, err)
	}
}

// With L1 and Redis both on, a drop of the invalidation channel (here: Redis
// stopped) flushes L1, stale values too: one that was invalidated meanwhile
// must not come back, so with Redis and the loader both down there is
// nothing stale to serve.
func TestStaleWhenRedisDownToo(t *testing.T) {
	srv, rdb := privateRedis(t)
	clk := newClock()
	c := newRedisCache[string](t, Options{Name: "stale", Redis: rdb, StaleFor: 10 * time.Second, LocalTTL: time.Minute, Jitter: -1,
		RedisTimeout: 50 * time.Millisecond, clock: clk})
	ctx := context.Background()
	c.Get(ctx, "k", func(context.Context, string) (string, error) { return "v1", nil })
	srv.Stop()
	waitFor(t, "the channel drop", 5*time.Second, func() bool { return c.Stats().ChannelDrops == 1 })
	clk.advance(65 * time.Second)
	// The drop flushed L1: a drop means invalidations may be lost, and a
	// stale value that may have been invalidated is not served.
	if v, err := c.Get(ctx, "k", func(context.Context, string) (string, error) { return "", errors.New("db down") }); v != "" || errors.Is(err, ErrStale) {
		t.Fatalf("Get after the channel dropped = %q, %v; want no stale value", v, err)
	}
}
