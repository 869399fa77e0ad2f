// Command stampede measures the fleet stampede: P processes x G goroutines
// miss one cold key at once; it prints how many times the loader ran, for
// herd's cache, go-redis/cache's Once, and the seed's cacheAside (GET, and
// on a miss load and SETEX). Usage: stampede -redis URL [-procs 4 -g 250 -runs 5].
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"

	gocache "github.com/go-redis/cache/v9"
	"github.com/herdhq/herd/cache"
	"github.com/redis/go-redis/v9"
)

func main() {
	url := flag.String("redis", os.Getenv("HERD_TEST_REDIS_URL"), "redis URL")
	procs := flag.Int("procs", 4, "processes")
	g := flag.Int("g", 250, "goroutines per process")
	runs := flag.Int("runs", 5, "runs per library")
	flag.Parse()
	if lib := os.Getenv("STAMPEDE_CHILD"); lib != "" {
		child(lib, *url, os.Getenv("STAMPEDE_NAME"), *g)
		return
	}
	opt, err := redis.ParseURL(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rdb := redis.NewClient(opt)
	for _, lib := range []string{"herd", "go-redis-cache", "seed-cacheAside"} {
		var calls []int
		for r := 0; r < *runs; r++ {
			name := fmt.Sprintf("stampede-%s-%d-%d", lib, time.Now().UnixNano(), r)
			var kids []*exec.Cmd
			var ins []io.WriteCloser
			var outs []*bufio.Scanner
			for i := 0; i < *procs; i++ {
				cmd := exec.Command(os.Args[0], "-redis", *url, "-g", strconv.Itoa(*g))
				cmd.Env = append(os.Environ(), "STAMPEDE_CHILD="+lib, "STAMPEDE_NAME="+name)
				cmd.Stderr = os.Stderr
				in, _ := cmd.StdinPipe()
				out, _ := cmd.StdoutPipe()
				if err := cmd.Start(); err != nil {
					panic(err)
				}
				kids, ins, outs = append(kids, cmd), append(ins, in), append(outs, bufio.NewScanner(out))
			}
			for _, o := range outs {
				o.Scan() // ready
			}
			for _, in := range ins {
				io.WriteString(in, "go\n")
			}
			for i, o := range outs {
				o.Scan()
				ins[i].Close()
				kids[i].Wait()
			}
			n, _ := rdb.Get(context.Background(), name+":calls").Int()
			calls = append(calls, n)
			iter := rdb.Scan(context.Background(), 0, name+"*", 1000).Iterator()
			for iter.Next(context.Background()) {
				rdb.Unlink(context.Background(), iter.Val())
			}
		}
		s := slices.Clone(calls)
		slices.Sort(s)
		fmt.Printf("%-16s loader calls per run %v  median %d  (%d processes x %d goroutines)\n", lib, calls, s[len(s)/2], *procs, *g)
	}
}

func child(lib, url, name string, g int) {
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	ctx := context.Background()
	load := func() string {
		rdb.Incr(ctx, name+":calls")
		time.Sleep(100 * time.Millisecond) // a slow query
		return "value"
	}
	var get func() string
	switch lib {
	case "herd":
		c, err := cache.New[string](cache.Options{Name: name, Redis: rdb})
		if err != nil {
			panic(err)
		}
		get = func() string {
			v, _ := c.Get(ctx, "cold", func(context.Context, string) (string, error) { return load(), nil })
			return v
		}
	case "go-redis-cache":
		c := gocache.New(&gocache.Options{Redis: rdb, LocalCache: gocache.NewTinyLFU(1000, time.Minute)})
		get = func() string {
			var v string
			c.Once(&gocache.Item{Ctx: ctx, Key: name + ":cold", Value: &v, TTL: time.Minute,
				Do: func(*gocache.Item) (any, error) { return load(), nil }})
			return v
		}
	default: // the seed's cacheAside
		get = func() string {
			if v, err := rdb.Get(ctx, name+":cold").Result(); err == nil {
				return v
			}
			v := load()
			rdb.Set(ctx, name+":cold", v, time.Hour) // SETEX
			return v
		}
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	var wg sync.WaitGroup
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); get() }()
	}
	wg.Wait()
	fmt.Println("done")
}
