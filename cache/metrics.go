package cache

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type counters struct {
	hitL2, missL2                        atomic.Uint64
	loads, loadErrors, leaseWaits        atomic.Uint64
	leaseLost, redisErrors, decodeErrors atomic.Uint64
	invalidations, channelDrops          atomic.Uint64
	earlyRefreshes, staleServed          atomic.Uint64
}

// Stats is a snapshot of a Cache's counters.
type Stats struct {
	HitsL1, MissesL1, HitsL2, MissesL2 uint64
	Loads, LoadErrors                  uint64
	LeaseWaits                         uint64 // misses that waited for another process's load
	LeaseLost                          uint64 // loads whose lease a write voided (value not cached)
	RedisErrors, DecodeErrors          uint64
	Invalidations                      uint64 // invalidation messages received from other processes
	ChannelDrops                       uint64 // times the invalidation channel dropped (L1 flushed)
	EarlyRefreshes                     uint64 // background refreshes started before expiry (Options.EarlyRefresh)
	StaleServed                        uint64 // Gets that returned a stale value after a failed load (Options.StaleFor)
	L1Entries                          int
	L1Weight                           uint64 // bytes by the weigher, with Options.MaxBytes
}

// Stats returns the counters so far.
func (c *Cache[V]) Stats() Stats {
	s := Stats{
		HitsL2: c.m.hitL2.Load(), MissesL2: c.m.missL2.Load(),
		Loads: c.m.loads.Load(), LoadErrors: c.m.loadErrors.Load(), LeaseWaits: c.m.leaseWaits.Load(),
		LeaseLost: c.m.leaseLost.Load(), RedisErrors: c.m.redisErrors.Load(), DecodeErrors: c.m.decodeErrors.Load(),
		Invalidations: c.m.invalidations.Load(), ChannelDrops: c.m.channelDrops.Load(),
		EarlyRefreshes: c.m.earlyRefreshes.Load(), StaleServed: c.m.staleServed.Load(),
	}
	if c.l1 != nil {
		// Striped, not one shared atomic (that cost 1.7x in parallel).
		if c.hitsL1 != nil {
			s.HitsL1, s.MissesL1 = c.hitsL1.load(), c.missesL1.load()
		}
		s.L1Entries = c.l1.EstimatedSize()
		if c.l1.IsWeighted() {
			s.L1Weight = c.l1.WeightedSize()
		}
	}
	return s
}

// Collector returns a Prometheus collector of the cache's counters, labelled
// cache=Options.Name. Register it once per Cache.
func (c *Cache[V]) Collector() prometheus.Collector { return &collector[V]{c: c} }

type collector[V any] struct{ c *Cache[V] }

var (
	descHits          = prometheus.NewDesc("herd_cache_hits_total", "Cache hits by level.", []string{"cache", "level"}, nil)
	descMisses        = prometheus.NewDesc("herd_cache_misses_total", "Cache misses by level.", []string{"cache", "level"}, nil)
	descLoads         = prometheus.NewDesc("herd_cache_loads_total", "Loader calls.", []string{"cache"}, nil)
	descLoadErrors    = prometheus.NewDesc("herd_cache_load_errors_total", "Loader calls that failed (not counting not-found).", []string{"cache"}, nil)
	descLeaseWaits    = prometheus.NewDesc("herd_cache_lease_waits_total", "Misses that waited for another process's load.", []string{"cache"}, nil)
	descLeaseLost     = prometheus.NewDesc("herd_cache_lease_lost_total", "Loads whose lease a write voided.", []string{"cache"}, nil)
	descRedisErrors   = prometheus.NewDesc("herd_cache_redis_errors_total", "Failed Redis commands (each degraded to the loader).", []string{"cache"}, nil)
	descInvalidations = prometheus.NewDesc("herd_cache_invalidations_received_total", "Invalidation messages received from other processes.", []string{"cache"}, nil)
	descDrops         = prometheus.NewDesc("herd_cache_channel_drops_total", "Drops of the invalidation channel (each flushed L1).", []string{"cache"}, nil)
	descEarly         = prometheus.NewDesc("herd_cache_early_refreshes_total", "Background refreshes started before expiry (XFetch).", []string{"cache"}, nil)
	descStale         = prometheus.NewDesc("herd_cache_stale_served_total", "Gets answered with a stale value because the load failed.", []string{"cache"}, nil)
	descL1Bytes       = prometheus.NewDesc("herd_cache_l1_bytes", "L1 weight in bytes (with MaxBytes).", []string{"cache"}, nil)
	descL1Entries     = prometheus.NewDesc("herd_cache_l1_entries", "L1 entries (estimate).", []string{"cache"}, nil)
)

func (k *collector[V]) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHits, descMisses, descLoads, descLoadErrors, descLeaseWaits, descLeaseLost,
		descRedisErrors, descInvalidations, descDrops, descEarly, descStale, descL1Bytes, descL1Entries} {
		ch <- d
	}
}

func (k *collector[V]) Collect(ch chan<- prometheus.Metric) {
	s, n := k.c.Stats(), k.c.o.Name
	cnt := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{n}, l...)...)
	}
	cnt(descHits, s.HitsL1, "l1")
	cnt(descHits, s.HitsL2, "l2")
	cnt(descMisses, s.MissesL1, "l1")
	cnt(descMisses, s.MissesL2, "l2")
	cnt(descLoads, s.Loads)
	cnt(descLoadErrors, s.LoadErrors)
	cnt(descLeaseWaits, s.LeaseWaits)
	cnt(descLeaseLost, s.LeaseLost)
	cnt(descRedisErrors, s.RedisErrors)
	cnt(descInvalidations, s.Invalidations)
	cnt(descDrops, s.ChannelDrops)
	cnt(descEarly, s.EarlyRefreshes)
	cnt(descStale, s.StaleServed)
	ch <- prometheus.MustNewConstMetric(descL1Bytes, prometheus.GaugeValue, float64(s.L1Weight), n)
	ch <- prometheus.MustNewConstMetric(descL1Entries, prometheus.GaugeValue, float64(s.L1Entries), n)
}
