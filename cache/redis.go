package cache

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const leaseSuffix = ":~lease"

// The lease scripts follow Facebook's memcache paper (Nishtala et al., NSDI
// 2013, section 3.2.1): a miss takes a lease, only the lease's holder may
// fill the key, and a write or delete voids the lease.
var (
	// KEYS: value, lease. ARGV: token, lease ms, now (unix ms).
	// {1, value} | {2, stale} lease taken | {3, pttl, stale} someone else
	// loads. A timed value ('x', expiry in unix ms) past its expiry is kept
	// only for StaleFor: a miss, returned as stale (false when none).
	leaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  if string.byte(v, 1) ~= 120 or tonumber(string.sub(v, 2, 14)) > tonumber(ARGV[3]) then return {1, v} end
else
  v = false
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, v} end
return {3, redis.call('PTTL', KEYS[2]), v}`)
	// KEYS: value, lease. ARGV: token, lease ms, prefix of the version the
	// caller holds. {1, value} someone refreshed or wrote it | {2} lease
	// taken | {3} someone else loads.
	refreshScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[3])) ~= ARGV[3] then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {3}`)
	// KEYS: value, lease. ARGV: token, value, ttl ms. 1 stored, 0 lease lost.
	fillScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0`)
	// KEYS: lease. ARGV: token.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	// KEYS: value, lease. ARGV: value, ttl ms, channel, message. The write
	// and its invalidation message are one atomic step.
	setScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`)
	// KEYS: value, lease. ARGV: channel, message.
	delScript = redis.NewScript(`
redis.call('UNLINK', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1`)
	// KEYS: generation. ARGV: channel, instance id.
	genScript = redis.NewScript(`
local g = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\0g' .. g)
return g`)
)

func (c *Cache[V]) l2key(key string) string {
	return c.o.Name + ":" + strconv.FormatInt(c.gen.Load(), 10) + ":" + key
}

func (c *Cache[V]) genKey() string { return c.o.Name + ":~gen" }

func (c *Cache[V]) msg(kind byte, s string) string { return c.id + "\x00" + string(kind) + s }

// l2ok says whether Redis is to be tried now.
func (c *Cache[V]) l2ok() bool {
	return c.rdb != nil && time.Now().UnixNano() >= c.downUntil.Load()
}

func (c *Cache[V]) rctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.o.RedisTimeout < 0 {
		return ctx, func() {} // the client's own timeouts and ctx bound it
	}
	return context.WithTimeout(ctx, c.o.RedisTimeout)
}

// redisErr records a failed Redis command: counted, logged once per outage,
// and Redis skipped for RetryAfter. A caller's own cancellation is not
// Redis's failure.
func (c *Cache[V]) redisErr(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	c.m.redisErrors.Add(1)
	c.downUntil.Store(time.Now().Add(c.o.RetryAfter).UnixNano())
	// Once per outage: a flap (stale pooled connections failing one by one
	// after a restart) within a minute of the last warning is the same one.
	if !c.down.Swap(true) && time.Since(time.Unix(0, c.warned.Swap(time.Now().UnixNano()))) > time.Minute {
		c.o.Logger.Warn("cache: redis unreachable; reads go to the loader", "cache", c.o.Name, "err", err)
	}
}

func (c *Cache[V]) redisOK() {
	if c.down.Load() && c.down.Swap(false) {
		c.o.Logger.Info("cache: redis reachable again", "cache", c.o.Name)
	}
}

// fetch gets key from Redis or, failing that, from the loader, under the
// fleet's lease when Redis is there. An expired value kept for StaleFor is a
// miss, and put in *stale.
func (c *Cache[V]) fetch(ctx context.Context, key string, load Loader[V], co callOpts, stale *entry[V]) (entry[V], error) {
	if !c.l2ok() {
		return c.callLoader(ctx, key, load, co)
	}
	k := c.l2key(key)
	e, st := c.l2get(ctx, k, stale)
	switch st {
	case l2Hit:
		return e, nil
	case l2Failed:
		return c.callLoader(ctx, key, load, co)
	}
	return c.leased(ctx, key, k, load, co, stale)
}

type l2State int

const (
	l2Miss l2State = iota
	l2Hit
	l2Failed // Redis trouble, recorded: load without it
)

// l2get is one GET of the Redis key k. An expired value kept for StaleFor
// is a miss, and put in *stale.
func (c *Cache[V]) l2get(ctx context.Context, k string, stale *entry[V]) (entry[V], l2State) {
	rctx, cancel := c.rctx(ctx)
	b, err := c.rdb.Get(rctx, k).Bytes()
	cancel()
	switch {
	case err == nil:
		c.redisOK()
		if e, derr := c.decode(b); derr != nil {
			c.m.decodeErrors.Add(1)
		} else if e.exp == 0 || c.now() < e.exp {
			c.m.hitL2.Add(1)
			return e, l2Hit
		} else {
			*stale = e
		}
	case errors.Is(err, redis.Nil):
		c.redisOK()
	default:
		c.redisErr(ctx, err)
		return entry[V]{}, l2Failed
	}
	c.m.missL2.Add(1)
	return entry[V]{}, l2Miss
}

func (c *Cache[V]) leaseToken() string {
	return c.id + "." + strconv.FormatUint(c.token.Add(1), 10)
}

// keepStale puts a stale value the lease script returned in *stale, if it
// is newer than the one there.
func (c *Cache[V]) keepStale(res []any, i int, stale *entry[V]) {
	if len(res) <= i {
		return
	}
	if s, ok := res[i].(string); ok {
		if e, err := c.decode([]byte(s)); err == nil && e.exp > stale.exp {
			*stale = e
		}
	}
}

// leased loads key under the fleet-wide lease: one process loads, the others
// wait for its value or for the lease to expire.
func (c *Cache[V]) leased(ctx context.Context, key, k string, load Loader[V], co callOpts, stale *entry[V]) (entry[V], error) {
	token := c.leaseToken()
	keys := []string{k, k + leaseSuffix}
	wait := time.Millisecond
	waited := false
	for {
		rctx, cancel := c.rctx(ctx)
		res, err := leaseScript.Run(rctx, c.rdb, keys, token, c.o.LeaseTTL.Milliseconds(), c.now()/1e6).Slice()
		cancel()
		if err != nil || len(res) == 0 {
			c.redisErr(ctx, err)
			return c.callLoader(ctx, key, load, co)
		}
		switch res[0].(int64) {
		case 1:
			if s, ok := res[1].(string); ok {
				if e, derr := c.decode([]byte(s)); derr == nil {
					c.m.hitL2.Add(1)
					return e, nil
				}
			}
			// Undecodable: take it over by loading without the lease.
			return c.callLoader(ctx, key, load, co)
		case 2:
			c.keepStale(res, 1, stale)
			return c.loadAndFill(ctx, key, keys, token, load, co)
		}
		c.keepStale(res, 2, stale)
		if !waited {
			waited = true
			c.m.leaseWaits.Add(1)
		}
		pttl := time.Duration(0)
		if len(res) > 1 {
			if n, ok := res[1].(int64); ok {
				pttl = time.Duration(n) * time.Millisecond
			}
		}
		d := wait
		if pttl > 0 && pttl < d {
			d = pttl
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return entry[V]{}, ctx.Err()
		case <-t.C:
		}
		if wait < 20*time.Millisecond {
			wait *= 2
		}
	}
}

func (c *Cache[V]) loadAndFill(ctx context.Context, key string, keys []string, token string, load Loader[V], co callOpts) (entry[V], error) {
	e, err := c.callLoader(ctx, key, load, co)
	if err != nil {
		// Let the waiters try at once rather than at the lease's expiry.
		rctx, cancel := c.rctx(context.WithoutCancel(ctx))
		releaseScript.Run(rctx, c.rdb, keys[1:], token)
		cancel()
		return e, err
	}
	b, err := c.encode(e)
	if err != nil {
		return e, nil // served, not cached
	}
	e.size = uint32(len(b))
	rctx, cancel := c.rctx(ctx)
	n, err := fillScript.Run(rctx, c.rdb, keys, token, b, c.l2TTL(e).Milliseconds()).Int()
	cancel()
	switch {
	case err != nil:
		c.redisErr(ctx, err)
	case n == 0:
		// A write or delete voided the lease while we loaded: what we read
		// may be older than it, so it is returned but stored nowhere.
		c.m.leaseLost.Add(1)
		e.noL1 = true
	}
	return e, nil
}

func (c *Cache[V]) l2Set(ctx context.Context, key string, b []byte, ttl time.Duration) error {
	k := c.l2key(key)
	rctx, cancel := c.rctx(ctx)
	defer cancel()
	err := setScript.Run(rctx, c.rdb, []string{k, k + leaseSuffix}, b, ttl.Milliseconds(), c.chann, c.msg('k', key)).Err()
	if err != nil {
		c.redisErr(ctx, err)
		c.addPending(key)
		return errors.Join(ErrRedis, err)
	}
	return nil
}

func (c *Cache[V]) l2Delete(ctx context.Context, key string) error {
	k := c.l2key(key)
	rctx, cancel := c.rctx(ctx)
	defer cancel()
	err := delScript.Run(rctx, c.rdb, []string{k, k + leaseSuffix}, c.chann, c.msg('k', key)).Err()
	if err != nil {
		c.redisErr(ctx, err)
		c.addPending(key)
		return errors.Join(ErrRedis, err)
	}
	return nil
}

// ErrRedis marks a write that reached this process's L1 but not Redis (and
// so not the other processes). The key's invalidation is retried when the
// invalidation channel is up again.
var ErrRedis = errors.New("cache: redis write failed; the invalidation is retried when redis is back")

func (c *Cache[V]) addPending(key string) {
	c.pmu.Lock()
	if len(c.pending) < maxPending {
		c.pending[key] = struct{}{}
	} else {
		c.pendOverflow = true
	}
	c.pmu.Unlock()
}

// replayPending sends the invalidations that failed during an outage: one
// delete per key, or a new generation when there were too many to remember.
func (c *Cache[V]) replayPending(ctx context.Context) {
	c.pmu.Lock()
	keys, overflow := c.pending, c.pendOverflow
	c.pending, c.pendOverflow = map[string]struct{}{}, false
	c.pmu.Unlock()
	if overflow {
		if err := c.InvalidateAll(ctx); err == nil {
			return
		}
		c.pmu.Lock()
		c.pendOverflow = true
		c.pmu.Unlock()
		return
	}
	for k := range keys {
		if err := c.l2Delete(ctx, k); err != nil {
			return // l2Delete put it back
		}
	}
}

// listen owns the subscription to the invalidation channel, for the Cache's
// life. Every (re)subscription flushes L1 (invalidations may have been missed
// while it was down) and every drop flushes it too.
func (c *Cache[V]) listen(ctx context.Context) {
	defer c.wg.Done()
	backoff := 10 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		ps := c.rdb.Subscribe(ctx, c.chann)
		c.ps.Store(ps)
		if ctx.Err() != nil { // Close ran before Store: it could not close ps
			_ = ps.Close()
			return
		}
		if c.receive(ctx, ps, &first) {
			backoff = 10 * time.Millisecond
		}
		_ = ps.Close()
		c.channelDown()
		if first {
			first = false
			close(c.firstSub)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

// receive reads the subscription until it fails; it reports whether it was
// ever up.
func (c *Cache[V]) receive(ctx context.Context, ps *redis.PubSub, first *bool) (wasUp bool) {
	silent := 0
	for {
		msg, err := ps.ReceiveTimeout(ctx, c.o.HealthInterval)
		if err != nil {
			var ne net.Error
			if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() && silent == 0 && wasUp {
				silent++
				if ps.Ping(ctx) == nil {
					continue
				}
			}
			return wasUp
		}
		silent = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				wasUp = true
				c.channelUp(ctx)
				if *first {
					*first = false
					close(c.firstSub)
				}
			}
		case *redis.Message:
			c.handle(m.Payload)
		}
	}
}

func (c *Cache[V]) channelUp(ctx context.Context) {
	rctx, cancel := c.rctx(ctx)
	g, err := c.rdb.Get(rctx, c.genKey()).Int64()
	cancel()
	if err == nil {
		c.gen.Store(g)
	} else if !errors.Is(err, redis.Nil) {
		c.redisErr(ctx, err)
	}
	c.flushL1()
	c.subscribed.Store(true)
	c.redisOK()
	c.replayPending(ctx)
}

func (c *Cache[V]) channelDown() {
	if c.subscribed.Swap(false) {
		c.m.channelDrops.Add(1)
		c.flushL1()
	}
}

func (c *Cache[V]) flushL1() {
	c.epoch.Add(1)
	if c.l1 != nil {
		c.l1.InvalidateAll()
	}
}

// handle applies one invalidation message: "ID\0kKEY" a key, "ID\0pPATTERN"
// a pattern, "ID\0gN" a new generation. This process's own messages are
// skipped: it applied them when it sent them.
func (c *Cache[V]) handle(p string) {
	id, rest, ok := strings.Cut(p, "\x00")
	if !ok || rest == "" {
		return
	}
	kind, arg := rest[0], rest[1:]
	if kind == 'g' {
		if g, err := strconv.ParseInt(arg, 10, 64); err == nil {
			c.gen.Store(g)
		}
	}
	if id == c.id {
		return
	}
	c.m.invalidations.Add(1)
	switch kind {
	case 'k':
		c.stripe(arg).Add(1)
		if c.l1 != nil {
			c.l1.Invalidate(arg)
		}
	case 'p':
		c.evictPattern(arg)
	case 'g':
		c.flushL1()
	}
}
