package benchcache

import (
	"context"
	"encoding/json"
	"strconv"
	"syscall"
	"testing"
	"time"

	gocache "github.com/go-redis/cache/v9"
	"github.com/herdhq/herd/cache"
	"github.com/herdhq/herd/internal/testenv"
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	"github.com/redis/go-redis/v9"
)

const nkeys = 1024

var keys = func() []string {
	k := make([]string, nkeys)
	for i := range k {
		k[i] = "product:" + strconv.Itoa(i)
	}
	return k
}()

type product struct {
	ID    string
	Name  string
	Price int
}

func val(k string) product { return product{ID: k, Name: "a product with a name", Price: 1999} }

var ctx = context.Background()

func load(_ context.Context, k string) (product, error) { return val(k), nil }

// redisClient is a private redis-server, so that other users of the shared
// one do not add to the round trips measured.
func redisClient(b *testing.B) *redis.Client {
	srv := testenv.StartRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { rdb.Close() })
	return rdb
}

// cpuTime reports this process's CPU time per op ("cpu-ns/op", user +
// system, every goroutine, not redis-server's): on a shared machine the
// wall time of a round trip swings 2-3x with other processes' load, the
// client's own work much less.
func cpuTime(b *testing.B) func() {
	var r0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	return func() {
		var r1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		ns := func(r syscall.Rusage) int64 { return r.Utime.Nano() + r.Stime.Nano() }
		b.ReportMetric(float64(ns(r1)-ns(r0))/float64(b.N), "cpu-ns/op")
	}
}

// L1 hits: herd's Get vs otter's own GetIfPresent vs go-redis/cache's local
// cache (TinyLFU holding msgpack bytes, decoded on each hit).
func BenchmarkL1Hit(b *testing.B) {
	b.Run("herd", func(b *testing.B) {
		c, _ := cache.New[product](cache.Options{})
		defer c.Close()
		for _, k := range keys {
			c.Get(ctx, k, load)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Get(ctx, keys[i%nkeys], load); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("herd-NoL1Stats", func(b *testing.B) {
		c, _ := cache.New[product](cache.Options{NoL1Stats: true})
		defer c.Close()
		for _, k := range keys {
			c.Get(ctx, k, load)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Get(ctx, keys[i%nkeys], load); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("otter", func(b *testing.B) {
		c := otter.Must(&otter.Options[string, product]{MaximumSize: 100_000,
			ExpiryCalculator: otter.ExpiryWriting[string, product](time.Minute)})
		for _, k := range keys {
			c.Set(k, val(k))
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, ok := c.GetIfPresent(keys[i%nkeys]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("otter+stats", func(b *testing.B) {
		c := otter.Must(&otter.Options[string, product]{MaximumSize: 100_000, StatsRecorder: stats.NewCounter(),
			ExpiryCalculator: otter.ExpiryWriting[string, product](time.Minute)})
		for _, k := range keys {
			c.Set(k, val(k))
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, ok := c.GetIfPresent(keys[i%nkeys]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("go-redis-cache", func(b *testing.B) {
		c := gocache.New(&gocache.Options{LocalCache: gocache.NewTinyLFU(100_000, time.Minute)})
		for _, k := range keys {
			c.Set(&gocache.Item{Ctx: ctx, Key: k, Value: val(k), SkipLocalCache: false})
		}
		b.ResetTimer()
		var p product
		for i := 0; i < b.N; i++ {
			if err := c.Get(ctx, keys[i%nkeys], &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkL1HitParallel(b *testing.B) {
	for _, h := range []struct {
		name string
		o    cache.Options
	}{{"herd", cache.Options{}}, {"herd-NoL1Stats", cache.Options{NoL1Stats: true}}} {
		b.Run(h.name, func(b *testing.B) {
			c, _ := cache.New[product](h.o)
			defer c.Close()
			for _, k := range keys {
				c.Get(ctx, k, load)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					c.Get(ctx, keys[i%nkeys], load)
					i++
				}
			})
		})
	}
	for _, o := range []struct {
		name string
		rec  stats.Recorder
	}{{"otter", nil}, {"otter+stats", stats.NewCounter()}} {
		b.Run(o.name, func(b *testing.B) {
			c := otter.Must(&otter.Options[string, product]{MaximumSize: 100_000, StatsRecorder: o.rec,
				ExpiryCalculator: otter.ExpiryWriting[string, product](time.Minute)})
			for _, k := range keys {
				c.Set(k, val(k))
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					c.GetIfPresent(keys[i%nkeys])
					i++
				}
			})
		})
	}
}

// L2 hits: herd with L1 off (a Redis GET and a JSON decode) vs the raw
// client's GET of the same bytes vs go-redis/cache without a local cache.
func BenchmarkL2Hit(b *testing.B) {
	rdb := redisClient(b)
	name := "herdbench" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b.Run("herd", func(b *testing.B) {
		c, _ := cache.New[product](cache.Options{Name: name, Redis: rdb, LocalTTL: -1})
		defer c.Close()
		c.Get(ctx, keys[0], load)
		b.ResetTimer()
		defer cpuTime(b)()
		for i := 0; i < b.N; i++ {
			if _, err := c.Get(ctx, keys[0], load); err != nil {
				b.Fatal(err)
			}
		}
		if s := c.Stats(); s.Loads > 1 {
			b.Fatalf("loads %d", s.Loads)
		}
	})
	b.Run("raw-GET", func(b *testing.B) {
		k := name + ":0:" + keys[0]
		b.ResetTimer()
		defer cpuTime(b)()
		for i := 0; i < b.N; i++ {
			if _, err := rdb.Get(ctx, k).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-GET+json", func(b *testing.B) {
		k := name + ":0:" + keys[0]
		b.ResetTimer()
		defer cpuTime(b)()
		var p product
		for i := 0; i < b.N; i++ {
			v, err := rdb.Get(ctx, k).Bytes()
			if err != nil {
				b.Fatal(err)
			}
			if err := json.Unmarshal(v[1:], &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-redis-cache", func(b *testing.B) {
		c := gocache.New(&gocache.Options{Redis: rdb})
		k := name + ":grc:" + keys[0]
		c.Set(&gocache.Item{Ctx: ctx, Key: k, Value: val(keys[0]), TTL: time.Minute})
		b.ResetTimer()
		defer cpuTime(b)()
		var p product
		for i := 0; i < b.N; i++ {
			if err := c.Get(ctx, k, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Cleanup(func() {
		iter := rdb.Scan(ctx, 0, name+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Unlink(ctx, iter.Val())
		}
	})
}
