package limits

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
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
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewRate(10, 5, tc.nodelay, tc.delay)
			now := time.Unix(1000, 0)
			ok, immediate := 0, 0
			var lastWait time.Duration
			for range 8 {
				wait, accepted, retry := l.Reserve("1.2.3.4", now)
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
			if ok != tc.wantOK || immediate != tc.wantNoWay {
				t.Errorf("accepted %d (%d at once); want %d (%d at once)", ok, immediate, tc.wantOK, tc.wantNoWay)
			}
			if other, accepted, _ := l.Reserve("5.6.7.8", now); !accepted || other != 0 {
				t.Error("another key was limited by the first one's requests")
			}
			// A second later the bucket has refilled.
			if _, accepted, _ := l.Reserve("1.2.3.4", now.Add(2*time.Second)); !accepted {
				t.Error("not accepted after the bucket refilled")
			}
		})
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
