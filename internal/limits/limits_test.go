package limits

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/herdhq/herd/internal/testenv"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]rate.Limit{"10r/s": 10, "600r/m": 10, "0.5r/s": 0.5} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"10", "10r/h", "-1r/s", "r/s", ""} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) succeeded", bad)
		}
	}
}

// TestRateLikeNGINX checks limit_req's three shapes at 10 r/s with burst 5,
// for 8 requests arriving at once.
func TestRateLikeNGINX(t *testing.T) {
	tests := []struct {
		name      string
		nodelay   bool
		delay     int
		wantOK    int // accepted of 8
		wantNoWay int // accepted without waiting
	}{
		{"burst delayed", false, 0, 6, 1},
		{"nodelay", true, 0, 6, 6},
		{"delay=2", false, 2, 6, 3},
	}
	stores := map[string]func(t *testing.T, nodelay bool, delay int) Limiter{
		"local": func(_ *testing.T, nodelay bool, delay int) Limiter { return NewRate(10, 5, nodelay, delay) },
		"redis": func(t *testing.T, nodelay bool, delay int) Limiter {
			opts, err := redis.ParseURL(testenv.Redis(t))
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { rdb.Close() })
			prefix := fmt.Sprintf("herdtest:rl:%d:", time.Now().UnixNano())
			return NewRedisRate(rdb, prefix, 10, 5, nodelay, delay, func(err error) { t.Errorf("redis failed: %v", err) })
		},
	}
	for _, store := range []string{"local", "redis"} {
		for _, tc := range tests {
			t.Run(store+"/"+tc.name, func(t *testing.T) {
				testRateShape(t, stores[store](t, tc.nodelay, tc.delay), tc.wantOK, tc.wantNoWay)
			})
		}
	}
}

// testRateShape sends 8 requests at once to l, a limit of 10 r/s with a
// burst of 5, and checks how many pass, and how many without waiting.
func testRateShape(t *testing.T, l Limiter, wantOK, wantNoWay int) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	ok, immediate := 0, 0
	var lastWait time.Duration
	for range 8 {
		wait, accepted, retry := l.Reserve(ctx, "1.2.3.4", now)
		if !accepted {
			if retry <= 0 {
				t.Errorf("refused without a Retry-After")
			}
			continue
		}
		ok++
		if wait == 0 {
			immediate++
		}
		if wait < lastWait {
			t.Errorf("waits not increasing: %s after %s", wait, lastWait)
		}
		lastWait = wait
	}
	if ok != wantOK || immediate != wantNoWay {
		t.Errorf("accepted %d (%d at once); want %d (%d at once)", ok, immediate, wantOK, wantNoWay)
	}
	if other, accepted, _ := l.Reserve(ctx, "5.6.7.8", now); !accepted || other != 0 {
		t.Error("another key was limited by the first one's requests")
	}
	// A second later the bucket has refilled.
	if _, accepted, _ := l.Reserve(ctx, "1.2.3.4", now.Add(2*time.Second)); !accepted {
		t.Error("not accepted after the bucket refilled")
	}
}

// TestRedisRateFailsOpen: with Redis gone, requests pass and the failure
// is reported.
func TestRedisRateFailsOpen(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	var failures int
	l := NewRedisRate(rdb, "x:", 1, 0, false, 0, func(error) { failures++ })
	for range 3 {
		if _, ok, _ := l.Reserve(context.Background(), "k", time.Now()); !ok {
			t.Fatal("refused while Redis is down; want the request to pass")
		}
	}
	if failures != 3 {
		t.Errorf("%d failures reported; want 3", failures)
	}
}

func TestConns(t *testing.T) {
	c := NewConns(2)
	for i := range 2 {
		if !c.Acquire("a") {
			t.Fatalf("request %d refused; want two in flight allowed", i+1)
		}
	}
	if c.Acquire("a") {
		t.Error("third in flight accepted; want the limit of 2")
	}
	if !c.Acquire("b") {
		t.Error("another key refused")
	}
	c.Release("a")
	if !c.Acquire("a") {
		t.Error("refused after a release")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 100 * time.Millisecond: "1", 1500 * time.Millisecond: "2"} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%s) = %s; want %s", d, got, want)
		}
	}
}
