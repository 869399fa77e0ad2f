package cache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeClock struct{ ns atomic.Int64 }

func (f *fakeClock) NowNano() int64                        { return f.ns.Load() }
func (f *fakeClock) Tick(d time.Duration) <-chan time.Time { return make(chan time.Time) }
func (f *fakeClock) advance(d time.Duration)               { f.ns.Add(int64(d)) }

func counting[V any](v V, err error) (Loader[V], *atomic.Int64) {
	var n atomic.Int64
	return func(ctx context.Context, key string) (V, error) {
		n.Add(1)
		return v, err
	}, &n
}

func TestLocalGetLoadsOnce(t *testing.T) {
	c, err := New[string](Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	load, n := counting("v", nil)
	for i := 0; i < 3; i++ {
		v, err := c.Get(context.Background(), "k", load)
		if v != "v" || err != nil {
			t.Fatalf("Get = %q, %v; want v, nil", v, err)
		}
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("loader calls: got %d; want 1", got)
	}
}

func TestLocalTTLAndJitter(t *testing.T) {
	clk := &fakeClock{}
	clk.ns.Store(time.Now().UnixNano())
	c, _ := New[int](Options{LocalTTL: time.Minute, Jitter: 0.5, clock: clk})
	defer c.Close()
	load, n := counting(1, nil)
	ctx := context.Background()
	c.Get(ctx, "k", load)
	clk.advance(29 * time.Second) // jitter shortens to at least 30 s
	c.Get(ctx, "k", load)
	if got := n.Load(); got != 1 {
		t.Fatalf("loads before the shortest TTL: got %d; want 1", got)
	}
	clk.advance(32 * time.Second)
	c.Get(ctx, "k", load)
	if got := n.Load(); got != 2 {
		t.Fatalf("loads after the TTL: got %d; want 2", got)
	}
	// Per call TTL below LocalTTL bounds L1 too.
	c.Set(ctx, "short", 5, WithTTL(time.Second))
	clk.advance(2 * time.Second)
	if _, ok := c.l1.GetIfPresent("short"); ok {
		t.Fatal("value set WithTTL(1s) still in L1 after 2 s")
	}
}

func TestNegativeCaching(t *testing.T) {
	clk := &fakeClock{}
	clk.ns.Store(time.Now().UnixNano())
	c, _ := New[int](Options{NotFoundTTL: 10 * time.Second, Jitter: -1, clock: clk})
	defer c.Close()
	load, n := counting(0, ErrNotFound)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := c.Get(ctx, "k", load); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get: got %v; want ErrNotFound", err)
		}
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("loads: got %d; want 1 (not-found remembered)", got)
	}
	clk.advance(11 * time.Second)
	c.Get(ctx, "k", load)
	if got := n.Load(); got != 2 {
		t.Fatalf("loads after NotFoundTTL: got %d; want 2", got)
	}
}

func TestLoadErrorNotCached(t *testing.T) {
	c, _ := New[int](Options{})
	defer c.Close()
	boom := errors.New("boom")
	load, n := counting(0, boom)
	for i := 0; i < 2; i++ {
		if _, err := c.Get(context.Background(), "k", load); !errors.Is(err, boom) {
			t.Fatalf("Get: got %v; want boom", err)
		}
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("loads: got %d; want 2 (errors are not cached)", got)
	}
}

func TestSingleFlight(t *testing.T) {
	c, _ := New[int](Options{})
	defer c.Close()
	var n atomic.Int64
	release := make(chan struct{})
	load := func(ctx context.Context, key string) (int, error) {
		n.Add(1)
		<-release
		return 7, nil
	}
	var wg sync.WaitGroup
	var started sync.WaitGroup
	for i := 0; i < 100; i++ { // one leads, 99 wait
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			if v, err := c.Get(context.Background(), "k", load); v != 7 || err != nil {
				t.Errorf("Get = %d, %v", v, err)
			}
		}()
	}
	started.Wait()
	waitFor(t, "99 callers waiting on the first one's load", 5*time.Second, func() bool { return c.sf.waiting("k") == 99 })
	close(release)
	wg.Wait()
	if got := n.Load(); got != 1 {
		t.Fatalf("loads: got %d; want 1", got)
	}
}

func TestWriteThroughFailedStoreLeavesCache(t *testing.T) {
	c, _ := New[string](Options{})
	defer c.Close()
	ctx := context.Background()
	c.Set(ctx, "k", "old")
	boom := errors.New("db down")
	if err := c.WriteThrough(ctx, "k", "new", func(context.Context, string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("WriteThrough: got %v; want the store's error", err)
	}
	v, _ := c.Get(ctx, "k", nil)
	if v != "old" {
		t.Fatalf("after a failed store: got %q; want old", v)
	}
	var stored string
	if err := c.WriteThrough(ctx, "k", "new", func(_ context.Context, v string) error { stored = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get(ctx, "k", nil); v != "new" || stored != "new" {
		t.Fatalf("after WriteThrough: cache %q, store %q; want new, new", v, stored)
	}
}

func TestDelete(t *testing.T) {
	c, _ := New[int](Options{})
	defer c.Close()
	ctx := context.Background()
	c.Set(ctx, "k", 1)
	c.Delete(ctx, "k")
	load, n := counting(2, nil)
	if v, _ := c.Get(ctx, "k", load); v != 2 || n.Load() != 1 {
		t.Fatalf("after Delete: got %d with %d loads; want 2 with 1", v, n.Load())
	}
}

// A fill whose read began before an invalidation must not land in L1.
func TestLateFillAfterInvalidation(t *testing.T) {
	c, _ := New[int](Options{})
	defer c.Close()
	for _, tc := range []struct {
		name  string
		inval func()
	}{
		{"key", func() { c.handle("other\x00kk") }},
		{"flush", func() { c.flushL1() }},
		{"pattern", func() { c.handle("other\x00pk*") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := c.snapshot("k")
			tc.inval()
			c.fillL1("k", entry[int]{v: 1, ttl: time.Minute}, s)
			if _, ok := c.l1.GetIfPresent("k"); ok {
				t.Fatal("late fill landed in L1 after an invalidation")
			}
			s = c.snapshot("k")
			c.fillL1("k", entry[int]{v: 1, ttl: time.Minute}, s)
			if _, ok := c.l1.GetIfPresent("k"); !ok {
				t.Fatal("fill without an invalidation did not land")
			}
			c.l1.Invalidate("k")
		})
	}
}

func TestMaxBytesBound(t *testing.T) {
	c, _ := New[string](Options{MaxBytes: 64 << 10})
	defer c.Close()
	ctx := context.Background()
	val := string(make([]byte, 1000))
	for i := 0; i < 1000; i++ {
		c.Set(ctx, "key"+string(rune('a'+i%26))+itoa(i), val)
	}
	c.l1.CleanUp()
	if w := c.Stats().L1Weight; w > 64<<10 {
		t.Fatalf("L1 weight: got %d; want <= %d", w, 64<<10)
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "anything", true},
		{"user:*", "user:1", true},
		{"user:*", "users:1", false},
		{"u?er", "user", true},
		{"u?er", "uer", false},
		{"[abc]x", "bx", true},
		{"[abc]x", "dx", false},
		{"[^abc]x", "dx", true},
		{"[a-c]x", "cx", true},
		{"a\\*b", "a*b", true},
		{"a\\*b", "axb", false},
		{"*/1", "user/1", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
	} {
		if got := globMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q): got %v; want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := New[int](Options{Jitter: 1.5}); err == nil {
		t.Fatal("Jitter 1.5: got nil error; want one")
	}
}

func TestNilLoaderIsLookup(t *testing.T) {
	c, _ := New[int](Options{})
	defer c.Close()
	if _, err := c.Get(context.Background(), "k", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(nil loader) on a miss: got %v; want ErrNotFound", err)
	}
	if _, ok := c.l1.GetIfPresent("k"); ok {
		t.Fatal("a lookup's miss was remembered")
	}
}

func TestFlightContexts(t *testing.T) {
	var f flight[int]
	inLeader, release := make(chan struct{}), make(chan struct{})
	lctx, lcancel := context.WithCancel(context.Background())
	leaderDone := make(chan error)
	go func() {
		_, err := f.do(lctx, "k", func(ctx context.Context) (int, error) {
			close(inLeader)
			<-release
			return 0, ctx.Err()
		})
		leaderDone <- err
	}()
	<-inLeader
	// A waiter stops waiting when its own context ends.
	wctx, wcancel := context.WithCancel(context.Background())
	wcancel()
	if _, err := f.do(wctx, "k", func(context.Context) (int, error) { return 1, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: got %v; want context.Canceled", err)
	}
	// A waiter whose leader was cancelled loads again under its own context.
	got := make(chan int)
	go func() {
		v, _ := f.do(context.Background(), "k", func(context.Context) (int, error) { return 2, nil })
		got <- v
	}()
	// The cancelled waiter counted too: wait for the second.
	waitFor(t, "the waiter to join the leader's call", 5*time.Second, func() bool { return f.waiting("k") == 2 })
	lcancel()
	close(release)
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: got %v; want context.Canceled", err)
	}
	if v := <-got; v != 2 {
		t.Fatalf("waiter after a cancelled leader: got %d; want 2 (its own load)", v)
	}
}

func TestMaxBytesWeighsLoadedValues(t *testing.T) {
	c, _ := New[string](Options{MaxBytes: 64 << 10})
	defer c.Close()
	big := string(make([]byte, 1000))
	for i := 0; i < 1000; i++ {
		c.Get(context.Background(), itoa(i), func(context.Context, string) (string, error) { return big, nil })
	}
	c.l1.CleanUp()
	if n := c.Stats().L1Entries; n > 64<<10/1000 {
		t.Fatalf("L1 entries of 1000-byte loaded values under 64 KiB: got %d; want <= %d", n, 64<<10/1000)
	}
}

func TestCollector(t *testing.T) {
	c, _ := New[int](Options{Name: "metrics"})
	defer c.Close()
	load, _ := counting(1, nil)
	c.Get(context.Background(), "k", load)
	c.Get(context.Background(), "k", load)
	want := `
# HELP herd_cache_loads_total Loader calls.
# TYPE herd_cache_loads_total counter
herd_cache_loads_total{cache="metrics"} 1
# HELP herd_cache_hits_total Cache hits by level.
# TYPE herd_cache_hits_total counter
herd_cache_hits_total{cache="metrics",level="l1"} 1
herd_cache_hits_total{cache="metrics",level="l2"} 0
`
	if err := testutil.CollectAndCompare(c.Collector(), strings.NewReader(want), "herd_cache_loads_total", "herd_cache_hits_total"); err != nil {
		t.Fatal(err)
	}
}

// Stats counts L1 hits and misses (from many goroutines at once, so the
// striped counter's sum is checked), and NoL1Stats turns the counting off.
func TestL1HitAndMissCounts(t *testing.T) {
	for _, tc := range []struct {
		name         string
		noStats      bool
		hits, misses uint64
	}{{"counted", false, 8 * 1000, 2}, {"NoL1Stats", true, 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New[string](Options{NoL1Stats: tc.noStats})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			load, _ := counting("v", nil)
			ctx := context.Background()
			for _, k := range []string{"a", "b"} {
				if _, err := c.Get(ctx, k, load); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Go(func() {
					for i := 0; i < 1000; i++ {
						c.Get(ctx, "a", load)
					}
				})
			}
			wg.Wait()
			if s := c.Stats(); s.HitsL1 != tc.hits || s.MissesL1 != tc.misses {
				t.Errorf("HitsL1, MissesL1 = %d, %d; want %d, %d", s.HitsL1, s.MissesL1, tc.hits, tc.misses)
			}
		})
	}
}
