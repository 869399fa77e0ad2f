package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// This file holds the two optional behaviours of a timed cache (one with
// Options.EarlyRefresh or Options.StaleFor): probabilistic early refresh
// (XFetch) and stale values served when a load fails. Both need to know
// each value's expiry, and XFetch how long its load took; a timed cache
// keeps both with the value, in L1 (entry.exp, entry.delta) and in Redis
// (header).

// ErrStale matches (errors.Is) the error of a Get that could not load a
// value and returned an expired one instead, within Options.StaleFor of its
// expiry. The value returned beside it is that stale value; the error is a
// *StaleError, which also wraps the loader's error.
var ErrStale = errors.New("cache: stale value")

// StaleError is the error of a Get that served a stale value because its
// load failed. errors.Is(err, ErrStale) and errors.Is(err, loaderErr) both
// hold.
type StaleError struct {
	// Err is the loader's (or the lease's) error.
	Err error
	// Expired is when the value served stopped being fresh.
	Expired time.Time
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("cache: serving a value stale since %s: load failed: %v", e.Expired.UTC().Format(time.RFC3339Nano), e.Err)
}

// Unwrap gives ErrStale and the loader's error.
func (e *StaleError) Unwrap() []error { return []error{ErrStale, e.Err} }

// The header of a timed value in Redis: 'x', its expiry in unix
// milliseconds (13 digits) and its load time in microseconds (10 digits,
// at most 9999999999 µs), then the codec's bytes. Decimal so that Lua can
// read the expiry (tonumber(string.sub(v, 2, 14))) and redis-cli shows it.
const (
	headerLen  = 1 + 13 + 10
	maxDeltaUs = 9_999_999_999
)

func appendHeader(b []byte, exp int64, delta time.Duration) []byte {
	b = append(b, 'x')
	b = appendPadded(b, exp/1e6, 13)
	us := delta.Microseconds()
	if us > maxDeltaUs {
		us = maxDeltaUs
	}
	return appendPadded(b, max(us, 0), 10)
}

func appendPadded(b []byte, n int64, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], n, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// prefix is the part of a timed value's header that names its version (the
// expiry): a refresh compares it with what is in Redis.
func prefix(exp int64) string { return string(appendPadded([]byte{'x'}, exp/1e6, 13)) }

func parseHeader(b []byte) (exp int64, delta time.Duration, err error) {
	if len(b) < headerLen {
		return 0, 0, fmt.Errorf("cache: timed value of %d bytes in redis: want >= %d", len(b), headerLen)
	}
	ms, err1 := strconv.ParseInt(string(b[1:14]), 10, 64)
	us, err2 := strconv.ParseInt(string(b[14:headerLen]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("cache: timed value header %q in redis: %w", b[:headerLen], err)
	}
	return ms * 1e6, time.Duration(us) * time.Microsecond, nil
}

// now is the cache's clock in unix nanoseconds (the test clock when set).
func (c *Cache[V]) now() int64 {
	if c.o.clock != nil {
		return c.o.clock.NowNano()
	}
	return time.Now().UnixNano()
}

// expiry is when a value made at now with lifetime ttl expires: jittered,
// in whole milliseconds (as the Redis header keeps it).
func (c *Cache[V]) expiry(now int64, ttl time.Duration) int64 {
	return (now + int64(c.jitter(ttl))) / 1e6 * 1e6
}

// l2TTL is the lifetime of e in Redis: until its expiry and StaleFor more,
// for a timed cache; its TTL with jitter otherwise.
func (c *Cache[V]) l2TTL(e entry[V]) time.Duration {
	if !c.timed || e.exp == 0 {
		return c.jitter(e.ttl)
	}
	return max(time.Duration(e.exp-c.now())+c.o.StaleFor, time.Millisecond)
}

// xfetch is the paper's test: refresh now when
// now - delta*beta*ln(rand) >= expiry. With rand uniform in (0, 1] that is
// true with probability e^(-(expiry-now)/(delta*beta)).
func (c *Cache[V]) xfetch(e entry[V], now int64) bool {
	if e.neg || e.exp == 0 {
		return false
	}
	if now >= e.exp {
		return true
	}
	if e.delta <= 0 {
		return false // free to recompute: at expiry, not before
	}
	return float64(now)-float64(e.delta)*c.o.EarlyRefresh*math.Log(c.o.rand()) >= float64(e.exp)
}

// refresh reloads key in the background of the caller that decided so,
// which returns the current value at once. One refresh or load of a key runs
// at a time in a process (the single flight; callers that miss meanwhile
// wait for it), and one in the fleet (the lease).
func (c *Cache[V]) refresh(key string, load Loader[V], opts []Option, cur entry[V]) {
	if load == nil {
		return
	}
	call := c.sf.start(key, true)
	if call == nil {
		return // a load or refresh of key is under way
	}
	c.bgmu.Lock()
	if c.bgClosed {
		c.bgmu.Unlock()
		c.sf.finish(key, call, entry[V]{}, errClosed)
		return
	}
	c.bg.Add(1)
	c.bgmu.Unlock()
	c.m.earlyRefreshes.Add(1)
	var co callOpts
	for _, f := range opts {
		f(&co)
	}
	go func() {
		defer c.bg.Done()
		snap := c.snapshot(key)
		e, err := c.reload(c.life, key, load, co, cur)
		if err == nil {
			c.fillL1(key, e, snap)
		}
		c.sf.finish(key, call, e, err)
	}()
}

var (
	errClosed = errors.New("cache: closed")
	// errBusy ends a refresh that found another process loading the key.
	errBusy = errors.New("cache: another process refreshes the key")
)

// staleFallback answers a failed fetch with the freshest expired value kept
// for StaleFor, from Redis (l2, when the fetch found one) or L1, or with err
// when there is none or it is past StaleFor. Not found is an answer, not a
// failure: it is never papered over.
func (c *Cache[V]) staleFallback(key string, l2 entry[V], err error) (entry[V], error) {
	if c.o.StaleFor <= 0 || errors.Is(err, ErrNotFound) {
		return entry[V]{}, err
	}
	var best entry[V]
	var expired int64
	if !l2.neg && l2.exp > 0 {
		best, expired = l2, l2.exp
	}
	if c.l1 != nil {
		if le, ok := c.l1.GetEntryQuietly(key); ok {
			if e := le.Value; !e.neg && e.fresh > expired {
				best, expired = e, e.fresh
			}
		}
	}
	if expired == 0 || c.now() >= expired+int64(c.o.StaleFor) {
		return entry[V]{}, err
	}
	c.m.staleServed.Add(1)
	return best, &StaleError{Err: err, Expired: time.Unix(0, expired)}
}

// reload is a refresh's load: under the fleet's lease when Redis is there,
// and only if the value in Redis is still the one the caller saw (cur), so
// that a process deciding late does not load what another just refreshed.
func (c *Cache[V]) reload(ctx context.Context, key string, load Loader[V], co callOpts, cur entry[V]) (entry[V], error) {
	if !c.l2ok() {
		return c.callLoader(ctx, key, load, co)
	}
	k := c.l2key(key)
	keys := []string{k, k + leaseSuffix}
	token := c.leaseToken()
	rctx, cancel := c.rctx(ctx)
	res, err := refreshScript.Run(rctx, c.rdb, keys, token, c.o.LeaseTTL.Milliseconds(), prefix(cur.exp)).Slice()
	cancel()
	if err != nil || len(res) == 0 {
		c.redisErr(ctx, err)
		return entry[V]{}, fmt.Errorf("cache: refresh %q: %w", key, err)
	}
	switch res[0].(int64) {
	case 1: // refreshed or rewritten by someone else: take theirs
		if s, ok := res[1].(string); ok {
			if e, derr := c.decode([]byte(s)); derr == nil {
				return e, nil
			}
		}
		return entry[V]{}, errBusy
	case 2:
		return c.loadAndFill(ctx, key, keys, token, load, co)
	}
	return entry[V]{}, errBusy
}
