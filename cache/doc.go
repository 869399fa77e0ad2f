// Package cache is a typed two-level cache for a fleet of processes: L1 in
// each process (otter v2), L2 in Redis, and the source of truth behind a
// Loader. It is the seed's CacheManager and CachingLayer done so that many
// instances of a service can share it without serving stale data or
// stampeding the database.
//
//	products, _ := cache.New[Product](cache.Options{Name: "products", Redis: rdb})
//	p, err := products.Get(ctx, "42", loadProduct) // L1 → Redis → loadProduct
//	err = products.WriteThrough(ctx, "42", p, saveProduct) // store, then cache
//	err = products.Delete(ctx, "42")                       // every process forgets it
//
// # Levels
//
// Get reads L1, then Redis, then calls the loader, and fills each level on
// the way back. Without Options.Redis the cache is L1 alone, already useful:
// bounded (entries, or bytes with a weigher), TTL with jitter, one load per
// key at a time (single flight), negative caching of ErrNotFound. Values are
// kept decoded in L1 and encoded by the Codec (JSON by default) in Redis, as
// one kind byte and the codec's bytes.
//
// # Freshness across the fleet
//
// Set, Delete, InvalidatePattern and InvalidateAll publish an invalidation
// on the channel NAME:~inval in the same Lua script as the write, so no
// write reaches Redis without its message. Every Cache subscribes to the
// channel and evicts the key from its L1 on a message; the two-process test
// measures the time from a write in one process to the other no longer
// serving the old value (bench/cache/README.md has the figure).
//
// Why invalidation messages and not CLIENT TRACKING: tracking (as rueidis
// does it) also sees writes made outside this package and Redis's own
// expiry, but in RESP2 it needs a redirect to a pub/sub connection whose
// client id must be re-learned and re-registered on every reconnect, and in
// RESP3 push messages on a dedicated go-redis connection; both fail in the
// same ways as one subscription (and are handled the same way: flush), and
// writes through this package are what the shop needs. So the project keeps
// one Redis client, go-redis, and one mechanism. A value written to Redis by
// someone else is seen by other processes once their L1 entry expires
// (Options.LocalTTL).
//
// The race of a late read against an invalidation is closed with versions:
// before reading Redis, a miss takes the counter of its key's stripe and the
// global epoch; an invalidation bumps the counter before it evicts; the fill
// of L1 compares both under otter's bucket lock and is dropped if either
// moved. So a reply that left Redis before a write can never land in L1
// after the write's invalidation.
//
// When the subscription drops (a killed connection, a Redis restart, two
// missed pings), L1 is flushed, and flushed again when it is back (messages
// sent meanwhile are lost). While it is down, L1 keeps values at most
// Options.DegradedLocalTTL.
//
// # Leases: no stampede, no stale fill
//
// Concurrent misses of one key in a process share one call (single flight).
// Across processes a miss runs a Lua script that returns the value, or takes
// a lease (SET NX PX with an owner token), or says another process holds it:
// then it waits, polling with a short backoff, for the value or the lease's
// expiry. The holder loads and fills Redis in a script that stores only
// while its token is still the lease. Set and Delete remove the lease, so a
// load that began before a write (and may have read the old row) stores
// nothing: it is returned to its caller and cached nowhere. This is the
// memcache paper's lease (Nishtala et al., "Scaling Memcache at Facebook",
// NSDI 2013).
//
// # Early refresh and stale values
//
// Both are off by default. Options.EarlyRefresh (a beta, 1 usual) is
// XFetch (Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic Cache
// Stampede Prevention", VLDB 2015): each value carries how long its load
// took (delta) and its expiry; a Get that finds it fresh starts a refresh
// when now - delta*beta*ln(rand()) >= expiry, with probability
// e^(-(expiry-now)/(delta*beta)), and returns the current value at once.
// The refresh runs in the background, once per key in a process (callers
// that miss meanwhile wait for it) and once in the fleet: it takes the
// key's lease only while Redis still holds the version the caller saw, so
// a process that decides after another refreshed takes the new value
// instead of loading. A refresh is a load like any other: a write or delete
// during it voids its lease and it stores nothing. Values written by Set
// have no delta: they are refreshed at expiry, as before.
//
// Options.StaleFor keeps values that long past their expiry (in Redis, as
// PX = TTL + StaleFor; in L1, past the entry's fresh life). An expired
// value is a miss, but when the load fails, Get returns it together with a
// *StaleError: errors.Is(err, ErrStale) says the value is usable, and
// errors.Is(err, loaderErr) still finds the cause. Callers that can serve
// stale data test ErrStale first:
//
//	p, err := products.Get(ctx, id, load)
//	if err != nil && !errors.Is(err, cache.ErrStale) {
//		return err
//	}
//
// ErrNotFound is an answer, not a failure: it is never replaced by a stale
// value. Invalidations (Set, Delete, patterns, a dropped channel's flush)
// remove stale values too, so stale means "expired", never "overwritten".
// Stats.StaleServed and EarlyRefreshes count both.
//
// A timed cache (either option on) stores values in Redis as 'x', the
// expiry in unix ms (13 digits) and delta in µs (10 digits), then the
// codec's bytes; every cache reads this and the older 'v' form, so values
// already in Redis keep working (as values of unknown expiry, refreshed at
// their Redis expiry). A process of an older version reads 'x' values as
// undecodable and loads: turn the options on after the whole fleet runs
// this version.
//
// # Redis trouble
//
// A failed Redis command never fails a Get: the value comes from the loader.
// It is counted, logged once per outage, and Redis is skipped for
// Options.RetryAfter, then tried again, so the cache recovers without a
// restart. Each command is bounded by Options.RedisTimeout and by the
// context (go-redis applies a context's deadline to socket reads and
// writes only with ContextTimeoutEnabled; see Options.RedisTimeout). A Set or Delete that could not reach Redis returns an error
// wrapping ErrRedis; its key is remembered and invalidated when Redis is
// back (or, past 10,000 keys, the whole namespace is).
//
// # Consistency, in one paragraph
//
// A process sees its own writes at once. Another process stops serving a
// value within the delivery time of one pub/sub message after the write's
// script ran, except while its subscription is down, when it serves values
// at most DegradedLocalTTL old. A load never stores a value older than a
// write that completed before the load's fill. Two concurrent writers of
// one key are last-writer-wins in Redis; prefer Delete after a database
// write when writers race.
//
// # Invalidating many keys
//
// InvalidatePattern walks Redis with SCAN and frees with UNLINK in batches
// (never KEYS, which blocks Redis for the whole keyspace); InvalidateAll
// bumps the namespace's generation number, which is part of every key
// (NAME:GEN:key), so it is O(1) whatever the number of keys.
//
// # Write-behind
//
// Queue is a write-behind queue on a Redis Stream with a consumer group:
// entries are acknowledged only after the apply function succeeded, a dead
// consumer's pending entries are claimed by another after an idle time, and
// an entry that failed too often goes to a dead-letter stream.
package cache
