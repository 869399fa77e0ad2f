// Command l1hit measures an L1 hit interleaved in one process: herd's Get
// (hits counted, the default), herd's Get with NoL1Stats, otter's
// GetIfPresent, and otter's GetIfPresent with its stats.Counter, over 1024
// hot keys. The variants take turns in blocks of -block ops, in a rotating
// order, for -rounds rounds; it prints each variant's median ns per op and
// the median of its per-round ratio to bare otter's block.
//
// Usage: l1hit [-rounds 30 -block 200000]
package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/herdhq/herd/cache"
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

type product struct {
	ID    string
	Name  string
	Price int
}

func val(k string) product { return product{ID: k, Name: "a product with a name", Price: 1999} }

func main() {
	rounds := flag.Int("rounds", 30, "rounds (each runs every variant once)")
	block := flag.Int("block", 200000, "ops per variant per round")
	flag.Parse()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "product:" + strconv.Itoa(i)
	}
	ctx := context.Background()
	load := func(_ context.Context, k string) (product, error) { return val(k), nil }
	herdGet := func(o cache.Options) func(int) bool {
		c, err := cache.New[product](o)
		if err != nil {
			panic(err)
		}
		for _, k := range keys {
			c.Get(ctx, k, load)
		}
		return func(i int) bool { _, err := c.Get(ctx, keys[i&1023], load); return err == nil }
	}
	otterGet := func(rec stats.Recorder) func(int) bool {
		c := otter.Must(&otter.Options[string, product]{MaximumSize: 100_000, StatsRecorder: rec,
			ExpiryCalculator: otter.ExpiryWriting[string, product](time.Minute)})
		for _, k := range keys {
			c.Set(k, val(k))
		}
		return func(i int) bool { _, ok := c.GetIfPresent(keys[i&1023]); return ok }
	}
	type variant struct {
		name string
		op   func(int) bool
		ns   []float64
	}
	vs := []*variant{
		{name: "otter", op: otterGet(nil)},
		{name: "otter+stats", op: otterGet(stats.NewCounter())},
		{name: "herd", op: herdGet(cache.Options{})},
		{name: "herd NoL1Stats", op: herdGet(cache.Options{NoL1Stats: true})},
	}
	for r := -1; r < *rounds; r++ { // round -1 warms up
		for j := range vs {
			v := vs[(r+1+j)%len(vs)]
			t0 := time.Now()
			for i := 0; i < *block; i++ {
				if !v.op(i) {
					panic(v.name + ": miss")
				}
			}
			if r >= 0 {
				v.ns = append(v.ns, float64(time.Since(t0).Nanoseconds())/float64(*block))
			}
		}
	}
	fmt.Printf("%-16s %9s %9s %9s %16s\n", "variant", "p25 ns", "median", "p75 ns", "ratio to otter")
	for _, v := range vs {
		ratios := make([]float64, len(v.ns))
		for k := range v.ns {
			ratios[k] = v.ns[k] / vs[0].ns[k]
		}
		fmt.Printf("%-16s %9.1f %9.1f %9.1f %16.3f\n", v.name, q(v.ns, 0.25), q(v.ns, 0.5), q(v.ns, 0.75), q(ratios, 0.5))
	}
}

func q(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}
