// Command l2hit measures an L2 hit (L1 off, one Redis GET and a JSON decode)
// as wall time, interleaved in one process against one Redis: the raw
// go-redis GET + json.Unmarshal of the same bytes, herd's cache with its
// default RedisTimeout, and with RedisTimeout: -1; each with a caller's
// context that has no Done channel (context.Background) and one that has
// (context.WithCancel, as an HTTP request's context does). The variants take
// turns in blocks of -block ops, in a rotating order, for -rounds rounds; it
// prints each variant's median and quartiles of ns per op across the blocks,
// its CPU per op (this process's user+system time, not redis-server's), and
// the median of its per-round ratio to the raw GET + json (the raw GET's
// blocks run beside the others', so a noisy neighbour hits both alike).
//
// Usage: l2hit -redis redis://127.0.0.1:6379/0 [-rounds 40 -block 2000 -label name]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/herdhq/herd/cache"
	"github.com/redis/go-redis/v9"
)

type product struct {
	ID    string
	Name  string
	Price int
}

func load(_ context.Context, k string) (product, error) {
	return product{ID: k, Name: "a product with a name", Price: 1999}, nil
}

type variant struct {
	name string
	op   func() error
	ns   []float64 // wall ns per op, one per block
	cpu  []float64 // CPU ns per op, one per block
}

func main() {
	url := flag.String("redis", os.Getenv("HERD_TEST_REDIS_URL"), "redis URL")
	rounds := flag.Int("rounds", 40, "rounds (each runs every variant once)")
	block := flag.Int("block", 2000, "ops per variant per round")
	label := flag.String("label", "", "a name for this build, printed with each line")
	flag.Parse()
	opt, err := redis.ParseURL(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "l2hit: parsing -redis:", err)
		os.Exit(2)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	bg := context.Background()
	cctx, cancel := context.WithCancel(bg)
	defer cancel()
	name := "l2hit" + strconv.FormatInt(time.Now().UnixNano(), 36)
	def, err := cache.New[product](cache.Options{Name: name, Redis: rdb, LocalTTL: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "l2hit: cache.New:", err)
		os.Exit(1)
	}
	defer def.Close()
	noTimer, err := cache.New[product](cache.Options{Name: name, Redis: rdb, LocalTTL: -1, RedisTimeout: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "l2hit: cache.New:", err)
		os.Exit(1)
	}
	defer noTimer.Close()
	const key = "product:0"
	if _, err := def.Get(bg, key, load); err != nil {
		fmt.Fprintln(os.Stderr, "l2hit: filling the key:", err)
		os.Exit(1)
	}
	raw := name + ":0:" + key
	if err := rdb.Get(bg, raw).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "l2hit: the cache's Redis key is not", raw, err)
		os.Exit(1)
	}
	var p product
	rawGet := func(ctx context.Context) func() error {
		return func() error {
			v, err := rdb.Get(ctx, raw).Bytes()
			if err != nil {
				return err
			}
			return json.Unmarshal(v[1:], &p) // the cache's encoding: a header byte, then JSON
		}
	}
	get := func(c *cache.Cache[product], ctx context.Context) func() error {
		return func() error {
			_, err := c.Get(ctx, key, load)
			return err
		}
	}
	vs := []*variant{
		{name: "raw GET+json", op: rawGet(bg)},
		{name: "herd default", op: get(def, bg)},
		{name: "herd RedisTimeout -1", op: get(noTimer, bg)},
		{name: "raw GET+json, cancel ctx", op: rawGet(cctx)},
		{name: "herd default, cancel ctx", op: get(def, cctx)},
		{name: "herd RedisTimeout -1, cancel ctx", op: get(noTimer, cctx)},
	}
	for _, v := range vs { // warm up
		for i := 0; i < *block; i++ {
			if err := v.op(); err != nil {
				fmt.Fprintln(os.Stderr, "l2hit:", v.name, err)
				os.Exit(1)
			}
		}
	}
	for r := 0; r < *rounds; r++ {
		for j := range vs {
			v := vs[(r+j)%len(vs)]
			c0 := cpuNs()
			t0 := time.Now()
			for i := 0; i < *block; i++ {
				if err := v.op(); err != nil {
					fmt.Fprintln(os.Stderr, "l2hit:", v.name, err)
					os.Exit(1)
				}
			}
			v.ns = append(v.ns, float64(time.Since(t0).Nanoseconds())/float64(*block))
			v.cpu = append(v.cpu, float64(cpuNs()-c0)/float64(*block))
		}
	}
	if s := def.Stats(); s.Loads > 1 {
		fmt.Fprintln(os.Stderr, "l2hit: the loader ran", s.Loads, "times; the hits were not all hits")
		os.Exit(1)
	}
	fmt.Printf("%-12s %-34s %9s %9s %9s %9s %14s %14s\n", "build", "variant", "p25 ns", "median", "p75 ns", "cpu ns", "ratio(median)", "cpu ratio")
	for i, v := range vs {
		base := vs[0]
		if i >= 3 {
			base = vs[3]
		}
		ratios := make([]float64, len(v.ns))
		cratios := make([]float64, len(v.ns))
		for k := range v.ns {
			ratios[k] = v.ns[k] / base.ns[k]
			cratios[k] = v.cpu[k] / base.cpu[k]
		}
		fmt.Printf("%-12s %-34s %9.0f %9.0f %9.0f %9.0f %14.3f %14.3f\n", *label, v.name,
			quantile(v.ns, 0.25), quantile(v.ns, 0.5), quantile(v.ns, 0.75), quantile(v.cpu, 0.5),
			quantile(ratios, 0.5), quantile(cratios, 0.5))
	}
}

func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func cpuNs() int64 {
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return r.Utime.Nano() + r.Stime.Nano()
}
