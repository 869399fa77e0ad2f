// Package limits holds herd's per-key request limits, as NGINX's limit_req
// (a rate with a burst, requests over the rate delayed or refused) and
// limit_conn (requests in flight per key). Keys are client addresses or
// header values; idle keys are forgotten.
package limits

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ParseRate reads NGINX's notation: "10r/s" or "600r/m".
func ParseRate(s string) (rate.Limit, error) {
	num, unit, ok := strings.Cut(s, "r/")
	n, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || n <= 0 || (unit != "s" && unit != "m") {
		return 0, fmt.Errorf("rate %q: write requests per second or minute, like 10r/s or 600r/m", s)
	}
	if unit == "m" {
		n /= 60
	}
	return rate.Limit(n), nil
}

// Rate is limit_req: every key may make Rate requests per second, and up
// to Burst more are accepted: the first Delay of those at once, the rest
// delayed so that they leave at Rate (NodDelay: all at once). Beyond the
// burst, requests are refused. Safe for concurrent use.
type Rate struct {
	limit   rate.Limit
	bucket  int           // requests passed at once: 1 + Delay
	maxWait time.Duration // the longest delay, for the rest of the burst

	mu        sync.Mutex
	keys      map[string]*keyLimiter
	lastSweep time.Time
}

type keyLimiter struct {
	lim  *rate.Limiter
	last time.Time
}

// NewRate returns a limit_req of r per second with burst; nodelay passes
// the whole burst at once, else the first delay requests of it.
func NewRate(r rate.Limit, burst int, nodelay bool, delay int) *Rate {
	bucket, maxWait := burstShape(r, burst, nodelay, delay)
	return &Rate{limit: r, bucket: bucket, maxWait: maxWait, keys: map[string]*keyLimiter{}}
}

// burstShape turns limit_req's burst, nodelay and delay into a bucket of
// requests passed at once (1 + delay) and the longest delay of the rest of
// the burst, which leave at rate r.
func burstShape(r rate.Limit, burst int, nodelay bool, delay int) (bucket int, maxWait time.Duration) {
	if nodelay {
		delay = burst
	}
	delay = min(delay, burst)
	return 1 + delay, time.Duration(float64(burst-delay) / float64(r) * float64(time.Second))
}

// Reserve implements Limiter.
func (l *Rate) Reserve(_ context.Context, key string, now time.Time) (wait time.Duration, ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweep(now)
	}
	k := l.keys[key]
	if k == nil {
		k = &keyLimiter{lim: rate.NewLimiter(l.limit, l.bucket)}
		l.keys[key] = k
	}
	k.last = now
	res := k.lim.ReserveN(now, 1)
	d := res.DelayFrom(now)
	if d > l.maxWait {
		res.CancelAt(now)
		return 0, false, d - l.maxWait
	}
	return d, true, 0
}

// sweep forgets keys idle long enough for their bucket to be full again.
func (l *Rate) sweep(now time.Time) {
	l.lastSweep = now
	full := time.Duration(float64(l.bucket)/float64(l.limit)*float64(time.Second)) + l.maxWait
	for key, k := range l.keys {
		if now.Sub(k.last) > full {
			delete(l.keys, key)
		}
	}
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1, for Retry-After.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// Conns is limit_conn: at most Max requests in flight per key. Safe for
// concurrent use.
type Conns struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

// NewConns returns a limit of max requests in flight per key.
func NewConns(max int) *Conns { return &Conns{max: max, open: map[string]int{}} }

// Acquire counts a request of key in; false when key is at the limit. A
// successful Acquire must be followed by Release.
func (c *Conns) Acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] >= c.max {
		return false
	}
	c.open[key]++
	return true
}

// Release counts a request of key out.
func (c *Conns) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key]--; c.open[key] <= 0 {
		delete(c.open, key)
	}
}
