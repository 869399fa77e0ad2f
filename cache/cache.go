package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
)

// ErrNotFound is what a Loader returns when the source has no value for the
// key. The cache remembers it for Options.NotFoundTTL (negative caching),
// and Get returns it (test with errors.Is) until then.
var ErrNotFound = errors.New("cache: not found")

// errNoLoader answers a Get with a nil Loader on a miss; it is ErrNotFound
// to callers but not remembered.
var errNoLoader = fmt.Errorf("cache: no loader: %w", ErrNotFound)

// A Loader loads the value of key from the source of truth (a database, a
// service). It returns ErrNotFound (possibly wrapped) when there is none.
type Loader[V any] func(ctx context.Context, key string) (V, error)

// Codec turns values into the bytes stored in Redis and back. JSON is the
// default; any msgpack, protobuf or gob adapter with these two methods fits.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default Codec, encoding/json.
type JSON struct{}

// Marshal is json.Marshal.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal is json.Unmarshal.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Options configure a Cache. The zero value is an in-process cache of 100,000
// entries kept for a minute. Zero fields take the default written beside them.
type Options struct {
	// Name prefixes every Redis key of the cache ("NAME:GEN:key") and names
	// its invalidation channel ("NAME:~inval"). Caches of different value
	// types must have different names. Default "cache".
	Name string
	// Redis is the L2 and the fleet's meeting point (invalidations, leases).
	// nil: L1 only. The cache does not close it.
	Redis redis.UniversalClient
	// Codec encodes values for Redis and for weighing. Default JSON{}.
	Codec Codec
	// TTL is the default lifetime of a value in Redis (per call: WithTTL).
	// Default 10 minutes.
	TTL time.Duration
	// LocalTTL bounds the lifetime of a value in L1 (it is also at most the
	// call's TTL). Default 1 minute; negative disables L1.
	LocalTTL time.Duration
	// Jitter shortens each L1 and L2 lifetime by a random fraction up to
	// Jitter, so that keys filled together do not expire together. Default
	// 0.1; negative: none.
	Jitter float64
	// MaxEntries bounds L1 by entries. Default 100,000 when MaxBytes is 0.
	MaxEntries int
	// MaxBytes bounds L1 by the encoded size of its values plus their keys
	// and a fixed overhead per entry (entryOverhead). It takes precedence
	// over MaxEntries.
	MaxBytes uint64
	// NotFoundTTL is how long ErrNotFound from the loader is remembered.
	// Default 30 s; negative disables negative caching.
	NotFoundTTL time.Duration
	// LeaseTTL is how long one process may hold the fleet-wide right to load
	// a key before another may take it. Default 3 s: set it above your
	// loader's usual time.
	LeaseTTL time.Duration
	// RedisTimeout is the deadline of each Redis command's context (the
	// caller's deadline, if sooner, stays). Default 200 ms. go-redis bounds
	// a command's wait for a pooled connection, its dial and its retry
	// backoff by it always, and its socket reads and writes only with
	// ContextTimeoutEnabled; otherwise ReadTimeout and WriteTimeout (3 s by
	// default) bound those. Negative: no deadline of the cache's own (the
	// client's timeouts and the caller's context bound each command); that
	// saves a runtime timer per command, about a fifth of an L2 hit's CPU
	// but not of its wall time (bench/cache/README.md).
	RedisTimeout time.Duration
	// RetryAfter is how long Redis is skipped after a failed command, so that
	// an outage costs one timeout, not one per read. Default 1 s.
	RetryAfter time.Duration
	// DegradedLocalTTL bounds L1 lifetimes while the invalidation channel is
	// down (other processes' writes cannot reach this L1 then). Default 1 s.
	DegradedLocalTTL time.Duration
	// HealthInterval: the invalidation channel is pinged after this much
	// silence and counted dead after twice. Default 1 s.
	HealthInterval time.Duration
	// NoL1Stats turns off counting of L1 hits and misses (Stats and the
	// collector then report 0 for them): it saves a striped counter's add
	// on every Get that has an L1 (bench/cache).
	NoL1Stats bool
	// Logger gets one line when Redis becomes unreachable and one when it is
	// back. Default slog.Default().
	Logger *slog.Logger
	// EarlyRefresh turns on probabilistic early refresh (XFetch: Vattani,
	// Chierichetti and Lowenstein, "Optimal Probabilistic Cache Stampede
	// Prevention", VLDB 2015) with this beta. Each value carries the time
	// its load took (delta); a Get that finds it fresh refreshes it early,
	// in the background of that one caller, when
	// now - delta*beta*ln(rand()) >= expiry, and returns the current value at
	// once. The chance is e^(-(expiry-now)/(delta*beta)): nil far from the
	// expiry, certain at it. 1 is the paper's choice; above 1 refreshes
	// earlier. The refresh calls the loader under the cache's own context
	// (cancelled by Close), not the caller's, with the caller's Options.
	// Default 0: off. See "Early refresh and stale values" in doc.go.
	EarlyRefresh float64
	// StaleFor keeps a value this long past its expiry, and a Get whose load
	// fails within that time returns it with an error matching ErrStale (a
	// *StaleError that also wraps the loader's error). Never longer: past
	// expiry+StaleFor the loader's error is returned alone. Default 0: off.
	StaleFor time.Duration

	clock otter.Clock    // tests: L1's and the expiry's time source
	rand  func() float64 // tests: XFetch's uniform draw in (0, 1]
}

// entryOverhead is what an L1 entry costs beyond its key and encoded value:
// otter's node, the hash table slot, the entry header, string headers.
// Measured with bench/cache/cmd/rss (1M and 300k entries, 100-byte values:
// 225-238 bytes), so that MaxBytes bounds the heap, not just the payload;
// plus 24 for the fields of timed caches (exp, fresh, delta) added since,
// not re-measured.
const entryOverhead = 264

func (o *Options) setDefaults() {
	if o.Name == "" {
		o.Name = "cache"
	}
	if o.Codec == nil {
		o.Codec = JSON{}
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Minute
	}
	if o.LocalTTL == 0 {
		o.LocalTTL = time.Minute
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.MaxEntries <= 0 && o.MaxBytes == 0 {
		o.MaxEntries = 100_000
	}
	if o.NotFoundTTL == 0 {
		o.NotFoundTTL = 30 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 3 * time.Second
	}
	if o.RedisTimeout == 0 {
		o.RedisTimeout = 200 * time.Millisecond
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.DegradedLocalTTL <= 0 {
		o.DegradedLocalTTL = time.Second
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.rand == nil {
		o.rand = func() float64 { return 1 - mrand.Float64() }
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("cache: Jitter %v: want < 1", o.Jitter))
	}
	if o.EarlyRefresh < 0 || math.IsNaN(o.EarlyRefresh) || math.IsInf(o.EarlyRefresh, 0) {
		errs = append(errs, fmt.Errorf("cache: EarlyRefresh %v: want a beta >= 0 (0 off, 1 the usual)", o.EarlyRefresh))
	}
	if o.StaleFor < 0 {
		errs = append(errs, fmt.Errorf("cache: StaleFor %v: want >= 0 (0 off)", o.StaleFor))
	}
	return errors.Join(errs...)
}

// An Option changes one call.
type Option func(*callOpts)

type callOpts struct {
	ttl time.Duration
}

// WithTTL sets the lifetime of the value stored by this call (in Redis; L1
// keeps it at most Options.LocalTTL).
func WithTTL(d time.Duration) Option { return func(c *callOpts) { c.ttl = d } }

type entry[V any] struct {
	v    V
	neg  bool
	noL1 bool // loaded under a lease lost to a write: returned, never cached
	size uint32
	ttl  time.Duration // the value's lifetime; in L1, the entry's
	// With EarlyRefresh or StaleFor (Cache.timed), else 0:
	exp   int64         // unix ns (whole ms): the value's expiry; 0 unknown
	fresh int64         // unix ns: in L1, end of the entry's fresh life
	delta time.Duration // how long the load took (XFetch's delta)
}

const stripes = 4096

// Cache is a typed two-level cache. It is safe for concurrent use. Make one
// with New and Close it when done.
type Cache[V any] struct {
	o     Options
	l1    *otter.Cache[string, entry[V]]
	rdb   redis.UniversalClient
	sf    flight[entry[V]]
	seed  maphash.Seed
	id    string
	chann string
	m     counters
	// L1 hits and misses, nil with NoL1Stats.
	hitsL1, missesL1 *striped

	// Freshness: a fill of L1 started before an invalidation of its key (or
	// a flush) must not land. ver holds a counter per stripe of keys, epoch
	// one for all; a fill compares both under otter's bucket lock.
	ver   [stripes]atomic.Uint64
	epoch atomic.Uint64

	gen        atomic.Int64 // namespace generation, part of every Redis key
	subscribed atomic.Bool  // the invalidation channel is up
	downUntil  atomic.Int64 // unix nanos: skip Redis until then
	down       atomic.Bool  // Redis is failing (logged once per outage)
	warned     atomic.Int64 // unix nanos of the last outage warning
	token      atomic.Uint64

	timed bool // EarlyRefresh or StaleFor: entries carry exp and delta

	pmu          sync.Mutex
	pending      map[string]struct{} // keys whose invalidation did not reach Redis
	pendOverflow bool

	stop     context.CancelFunc
	ps       atomic.Pointer[redis.PubSub]
	wg       sync.WaitGroup
	closeMu  sync.Once
	firstSub chan struct{}

	// Background refreshes (EarlyRefresh): run under life, counted in bg,
	// not started once closed.
	life     context.Context
	endLife  context.CancelFunc
	bgmu     sync.Mutex
	bgClosed bool
	bg       sync.WaitGroup
}

const maxPending = 10_000

// New makes a cache. With Options.Redis it subscribes to the invalidation
// channel (waiting up to Options.RedisTimeout for it) and keeps the
// subscription until Close. Misconfiguration is an error.
func New[V any](o Options) (*Cache[V], error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	c := &Cache[V]{o: o, rdb: o.Redis, seed: maphash.MakeSeed(), id: hex.EncodeToString(idb[:]),
		chann: o.Name + ":~inval", pending: map[string]struct{}{}, firstSub: make(chan struct{}),
		timed: o.EarlyRefresh > 0 || o.StaleFor > 0}
	c.life, c.endLife = context.WithCancel(context.Background())
	if o.LocalTTL > 0 {
		oo := &otter.Options[string, entry[V]]{
			Clock:            o.clock,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, entry[V]]) time.Duration { return e.Value.ttl }),
		}
		if !o.NoL1Stats {
			c.hitsL1, c.missesL1 = newStriped(), newStriped()
		}
		if o.MaxBytes > 0 {
			oo.MaximumWeight = o.MaxBytes
			oo.Weigher = func(k string, e entry[V]) uint32 { return uint32(len(k)) + e.size + entryOverhead }
		} else {
			oo.MaximumSize = o.MaxEntries
		}
		l1, err := otter.New(oo)
		if err != nil {
			return nil, fmt.Errorf("cache: L1: %w", err)
		}
		c.l1 = l1
	}
	if c.rdb != nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.stop = cancel
		c.wg.Add(1)
		go c.listen(ctx)
		select {
		case <-c.firstSub:
		case <-time.After(max(o.RedisTimeout, 200*time.Millisecond)):
		}
	}
	return c, nil
}

// Close stops the invalidation listener and L1's goroutines. It is safe to
// call twice. It does not close Options.Redis.
func (c *Cache[V]) Close() error {
	c.closeMu.Do(func() {
		c.bgmu.Lock()
		c.bgClosed = true
		c.bgmu.Unlock()
		c.endLife()
		c.bg.Wait()
		if c.stop != nil {
			c.stop()
			if ps := c.ps.Load(); ps != nil {
				_ = ps.Close() // a blocked receive ignores the context
			}
		}
		c.wg.Wait()
		if c.l1 != nil {
			c.l1.StopAllGoroutines()
		}
	})
	return nil
}

// Get returns the value of key: from L1, else from Redis, else from load,
// filling each level on the way back. Concurrent misses of one key in this
// process share one call (run by the first caller, under its context); with
// Redis, misses across the fleet share one call through a lease. Redis
// trouble never fails a Get: it loads instead. ctx's cancellation ends this
// caller's wait; a caller waiting on another's load that was cancelled loads
// again under its own context.
// ErrNotFound from load is remembered for NotFoundTTL and returned. A nil
// load makes Get a lookup: a miss returns ErrNotFound, not remembered.
func (c *Cache[V]) Get(ctx context.Context, key string, load Loader[V], opts ...Option) (V, error) {
	if c.l1 != nil {
		e, ok := c.l1.GetIfPresent(key)
		if c.hitsL1 != nil {
			if ok {
				c.hitsL1.add()
			} else {
				c.missesL1.add()
			}
		}
		if ok {
			if e.neg {
				var zero V
				return zero, ErrNotFound
			}
			if !c.timed {
				return e.v, nil
			}
			// Past its fresh life the entry is only kept for StaleFor, as
			// the fallback of a failed load: a miss.
			if now := c.now(); now < e.fresh {
				if c.o.EarlyRefresh > 0 && c.xfetch(e, now) {
					c.refresh(key, load, opts, e)
				}
				return e.v, nil
			}
		}
	}
	return c.getSlow(ctx, key, load, opts)
}

func (c *Cache[V]) getSlow(ctx context.Context, key string, load Loader[V], opts []Option) (V, error) {
	var co callOpts
	for _, f := range opts {
		f(&co)
	}
	var stale entry[V] // an expired value from Redis kept for StaleFor
	fetch := func(ctx context.Context) (entry[V], error) { return c.fetch(ctx, key, load, co, &stale) }
	if c.l1 == nil && c.l2ok() {
		// No L1 to fill and nothing to share but the load: the GET runs
		// outside the single flight, whose call and map entry were a tenth
		// of an L2 hit's own time (bench/cache); a miss goes to the lease.
		k := c.l2key(key)
		switch e, st := c.l2get(ctx, k, &stale); st {
		case l2Hit:
			return c.hit(key, load, opts, e)
		case l2Miss:
			fetch = func(ctx context.Context) (entry[V], error) { return c.leased(ctx, key, k, load, co, &stale) }
		}
	}
	e, err := c.sf.do(ctx, key, func(ctx context.Context) (entry[V], error) {
		snap := c.snapshot(key)
		e, err := fetch(ctx)
		if err != nil {
			return c.staleFallback(key, stale, err)
		}
		c.fillL1(key, e, snap)
		return e, nil
	})
	if err != nil {
		var se *StaleError
		if errors.As(err, &se) {
			return e.v, err
		}
		var zero V
		return zero, err
	}
	return c.hit(key, load, opts, e)
}

// hit answers a Get with e, refreshing it early when XFetch says so.
func (c *Cache[V]) hit(key string, load Loader[V], opts []Option, e entry[V]) (V, error) {
	if e.neg {
		var zero V
		return zero, ErrNotFound
	}
	if c.o.EarlyRefresh > 0 && c.xfetch(e, c.now()) {
		c.refresh(key, load, opts, e)
	}
	return e.v, nil
}

type snap struct{ ver, epoch uint64 }

func (c *Cache[V]) stripe(key string) *atomic.Uint64 {
	return &c.ver[maphash.String(c.seed, key)%stripes]
}

func (c *Cache[V]) snapshot(key string) snap {
	return snap{c.stripe(key).Load(), c.epoch.Load()}
}

// fillL1 stores e unless key was invalidated (or L1 flushed) since s was
// taken: the check runs under otter's bucket lock, and every invalidation
// bumps the counter before it removes the entry, so a late reply cannot
// overwrite a newer state.
func (c *Cache[V]) fillL1(key string, e entry[V], s snap) {
	if c.l1 == nil || e.noL1 {
		return
	}
	if c.o.MaxBytes > 0 && e.size == 0 {
		// Loaded without Redis: weigh it by its encoded size all the same.
		if b, err := c.encode(e); err == nil {
			e.size = uint32(len(b))
		}
	}
	var ok bool
	if e, ok = c.l1Entry(e); !ok {
		return
	}
	c.l1.Compute(key, func(old entry[V], found bool) (entry[V], otter.ComputeOp) {
		if c.stripe(key).Load() != s.ver || c.epoch.Load() != s.epoch {
			return old, otter.CancelOp
		}
		return e, otter.WriteOp
	})
}

// l1Entry sets e's lifetime in L1: at most LocalTTL (jittered), the call's
// TTL, DegradedLocalTTL while the channel is down and, for a timed cache,
// the value's expiry, after which the entry is kept StaleFor more (values,
// not not-found). ok is false when nothing of its life is left.
func (c *Cache[V]) l1Entry(e entry[V]) (_ entry[V], ok bool) {
	e.ttl = c.localTTL(e)
	if !c.timed {
		return e, true
	}
	now := c.now()
	e.fresh = now + int64(e.ttl)
	if e.exp > 0 && e.exp < e.fresh {
		e.fresh = e.exp
	}
	if c.rdb == nil {
		e.exp = e.fresh // L1 alone: the value lives as long as its entry
	}
	e.ttl = time.Duration(e.fresh - now)
	if !e.neg {
		e.ttl += c.o.StaleFor
	}
	return e, e.ttl > 0
}

func (c *Cache[V]) localTTL(e entry[V]) time.Duration {
	ttl := c.o.LocalTTL
	if e.ttl > 0 && e.ttl < ttl {
		ttl = e.ttl
	}
	if c.rdb != nil && !c.subscribed.Load() && c.o.DegradedLocalTTL < ttl {
		ttl = c.o.DegradedLocalTTL
	}
	return c.jitter(ttl)
}

func (c *Cache[V]) jitter(d time.Duration) time.Duration {
	if c.o.Jitter <= 0 {
		return d
	}
	return d - time.Duration(mrand.Float64()*c.o.Jitter*float64(d))
}

func (c *Cache[V]) callLoader(ctx context.Context, key string, load Loader[V], co callOpts) (entry[V], error) {
	if load == nil {
		return entry[V]{}, errNoLoader
	}
	c.m.loads.Add(1)
	start := c.now()
	v, err := load(ctx, key)
	if err != nil {
		if errors.Is(err, ErrNotFound) && c.o.NotFoundTTL > 0 {
			return entry[V]{neg: true, ttl: c.o.NotFoundTTL}, nil
		}
		c.m.loadErrors.Add(1)
		return entry[V]{}, err
	}
	ttl := co.ttl
	if ttl <= 0 {
		ttl = c.o.TTL
	}
	e := entry[V]{v: v, ttl: ttl}
	if c.timed {
		end := c.now()
		e.delta = time.Duration(end - start)
		e.exp = c.expiry(end, ttl)
	}
	return e, nil
}

// Set stores v under key in Redis and in this process's L1, and evicts key
// from every other process's L1. When Redis cannot be written, v is in this
// L1 only, the error says so, and key's invalidation is sent once Redis is
// back.
func (c *Cache[V]) Set(ctx context.Context, key string, v V, opts ...Option) error {
	var co callOpts
	for _, f := range opts {
		f(&co)
	}
	ttl := co.ttl
	if ttl <= 0 {
		ttl = c.o.TTL
	}
	e := entry[V]{v: v, ttl: ttl}
	px := c.jitter(ttl)
	if c.timed {
		// A Set has no load time: the value is refreshed at its expiry,
		// not early, unless a load replaces it first.
		now := c.now()
		e.exp = c.expiry(now, ttl)
		px = time.Duration(e.exp-now) + c.o.StaleFor
	}
	var err error
	if c.rdb != nil || c.o.MaxBytes > 0 {
		b, merr := c.encode(e)
		if merr != nil {
			return fmt.Errorf("cache: set %q: encode: %w", key, merr)
		}
		e.size = uint32(len(b))
		if c.rdb != nil {
			err = c.l2Set(ctx, key, b, px)
		}
	}
	c.stripe(key).Add(1)
	if c.l1 != nil {
		if e, ok := c.l1Entry(e); ok {
			c.l1.Set(key, e)
		} else {
			c.l1.Invalidate(key)
		}
	}
	return err
}

// Delete removes key from Redis, from this L1 and from every other
// process's L1, and voids any lease on it, so that a load which began before
// the delete cannot store what it read.
func (c *Cache[V]) Delete(ctx context.Context, key string) error {
	var err error
	if c.rdb != nil {
		err = c.l2Delete(ctx, key)
	}
	c.stripe(key).Add(1)
	if c.l1 != nil {
		c.l1.Invalidate(key)
	}
	return err
}

// WriteThrough stores v in the source with store, then in the cache (Set).
// When store fails, the cache is left as it was and store's error returned.
func (c *Cache[V]) WriteThrough(ctx context.Context, key string, v V, store func(ctx context.Context, v V) error, opts ...Option) error {
	if err := store(ctx, v); err != nil {
		return err
	}
	return c.Set(ctx, key, v, opts...)
}

// encode is the Redis form of an entry: one byte ('v' a value, 'n' not
// found) and the codec's bytes; a timed cache writes 'x', the expiry and the
// load time, then the codec's bytes (see header). Every cache reads all
// three, so values written before EarlyRefresh or StaleFor existed still
// decode (as values of unknown expiry and load time).
func (c *Cache[V]) encode(e entry[V]) ([]byte, error) {
	if e.neg {
		return []byte{'n'}, nil
	}
	b, err := c.o.Codec.Marshal(e.v)
	if err != nil {
		return nil, err
	}
	if c.timed {
		out := make([]byte, 0, headerLen+len(b))
		out = appendHeader(out, e.exp, e.delta)
		return append(out, b...), nil
	}
	out := make([]byte, 1+len(b))
	out[0] = 'v'
	copy(out[1:], b)
	return out, nil
}

func (c *Cache[V]) decode(b []byte) (entry[V], error) {
	if len(b) == 0 {
		return entry[V]{}, errors.New("cache: empty value in redis")
	}
	var e entry[V]
	switch b[0] {
	case 'n':
		return entry[V]{neg: true, ttl: c.o.NotFoundTTL, size: 1}, nil
	case 'v':
		if err := c.o.Codec.Unmarshal(b[1:], &e.v); err != nil {
			return entry[V]{}, err
		}
	case 'x':
		var err error
		if e.exp, e.delta, err = parseHeader(b); err != nil {
			return entry[V]{}, err
		}
		if err := c.o.Codec.Unmarshal(b[headerLen:], &e.v); err != nil {
			return entry[V]{}, err
		}
	default:
		return entry[V]{}, fmt.Errorf("cache: unknown value kind %q in redis", b[0])
	}
	e.size = uint32(len(b))
	return e, nil
}
