// Command rss fills herd's L1 with N distinct keys under a byte bound and
// prints the bound, L1's weight and the process's RSS (VmRSS, after a GC).
// Usage: rss [-n 1000000 -bytes 67108864 -value 100].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/herdhq/herd/cache"
)

func rss() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

func main() {
	n := flag.Int("n", 1_000_000, "distinct keys")
	bound := flag.Uint64("bytes", 64<<20, "L1 byte bound")
	size := flag.Int("value", 100, "value bytes")
	flag.Parse()
	fmt.Printf("start: RSS %s\n", rss())
	c, err := cache.New[string](cache.Options{MaxBytes: *bound})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	pad := strings.Repeat("x", *size)
	for i := 0; i < *n; i++ {
		k := "product:" + strconv.Itoa(i)
		c.Set(ctx, k, pad[:len(pad)-len(k)]+k)
	}
	runtime.GC()
	debug.FreeOSMemory()
	s := c.Stats()
	fmt.Printf("after %d keys: bound %d MiB, L1 weight %.1f MiB in %d entries, RSS %s (Go heap in use %.1f MiB)\n",
		*n, *bound>>20, float64(s.L1Weight)/(1<<20), s.L1Entries, rss(), heap())
}

func heap() float64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}
