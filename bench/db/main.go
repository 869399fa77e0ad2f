// Command db is bench/db's load generator: dbrouter against raw pgxpool,
// pgbouncer and pgpool-II on the same PostgreSQL primary and replica, and
// stale reads after writes. bench/db/run.sh starts the servers and runs it;
// see bench/db/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herdhq/herd/dbrouter"
)

var (
	primaryURL = flag.String("primary", "", "primary URL")
	replicaURL = flag.String("replica", "", "replica URL")
	bouncerURL = flag.String("pgbouncer", "", "pgbouncer URL (in front of the primary), empty to skip")
	pgpoolURL  = flag.String("pgpool", "", "pgpool-II URL (primary + replica, load balancing), empty to skip")
	rounds     = flag.Int("rounds", 5, "interleaved rounds")
	duration   = flag.Duration("duration", 2*time.Second, "length of one measurement")
	conns      = flag.Int("conns", 8, "concurrent clients for throughput")
	pairs      = flag.Int("pairs", 10000, "write-then-read pairs for the stale-read count")
	rows       = flag.Int("rows", 10000, "rows in the table")
	only       = flag.String("only", "pk,mix,stale", "parts to run")
)

// target is one way to reach the data.
type target struct {
	name  string
	read  func(ctx context.Context, id int) (int, error)
	write func(ctx context.Context, id, v int) error
	close func()
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	ctx := context.Background()
	setup(ctx)

	pk := []target{poolTarget(ctx, "pgxpool-replica", *replicaURL, *primaryURL), routerTarget(ctx, "dbrouter-replica", true)}
	pk = append(pk, poolTarget(ctx, "pgxpool-primary", *primaryURL, *primaryURL), routerTarget(ctx, "dbrouter-primary", false))
	if *bouncerURL != "" {
		pk = append(pk, poolTarget(ctx, "pgbouncer", *bouncerURL, *bouncerURL))
	}
	if *pgpoolURL != "" {
		pk = append(pk, poolTarget(ctx, "pgpool", *pgpoolURL, *pgpoolURL))
	}
	defer func() {
		for _, t := range pk {
			t.close()
		}
	}()
	fmt.Printf("# bench/db %s, %d rounds of %v, %d clients for throughput, 1 for latency\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), *rounds, *duration, *conns)
	if strings.Contains(*only, "pk") {
		fmt.Println("\n## one-row primary-key SELECT")
		compare(ctx, pk, 0, "pgxpool-replica")
	}
	if strings.Contains(*only, "mix") {
		fmt.Println("\n## 90 % reads / 10 % writes (UPDATE by primary key)")
		var mix []target
		for _, t := range pk {
			if t.name != "pgxpool-replica" { // a replica takes no writes
				mix = append(mix, t)
			}
		}
		compare(ctx, mix, 10, "pgxpool-primary")
	}
	if strings.Contains(*only, "stale") {
		fmt.Printf("\n## stale reads in %d write-then-read pairs (one client)\n", *pairs)
		stale(ctx)
	}
}

func setup(ctx context.Context) {
	conn, err := pgx.Connect(ctx, *primaryURL)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		"drop table if exists kv",
		"create table kv (id int primary key, v int not null)",
		fmt.Sprintf("insert into kv select g, 0 from generate_series(1, %d) g", *rows),
		"analyze kv",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			log.Fatalf("%s: %v", sql, err)
		}
	}
	rc, err := pgx.Connect(ctx, *replicaURL)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close(ctx)
	for deadline := time.Now().Add(30 * time.Second); ; {
		var n int
		if err := rc.QueryRow(ctx, "select count(*) from kv").Scan(&n); err == nil && n == *rows {
			return
		}
		if time.Now().After(deadline) {
			log.Fatal("the replica never got the table")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const (
	readSQL  = "select v from kv where id = $1"
	writeSQL = "update kv set v = $2 where id = $1"
)

func poolConfig(url string) *pgxpool.Config {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		log.Fatal(err)
	}
	pc.MaxConns = int32(*conns)
	pc.MinConns = int32(*conns)
	return pc
}

// poolTarget reads through readURL and writes through writeURL with raw
// pgxpool, as a program with no router does.
func poolTarget(ctx context.Context, name, readURL, writeURL string) target {
	rp, err := pgxpool.NewWithConfig(ctx, poolConfig(readURL))
	if err != nil {
		log.Fatal(err)
	}
	wp := rp
	if writeURL != readURL {
		if wp, err = pgxpool.NewWithConfig(ctx, poolConfig(writeURL)); err != nil {
			log.Fatal(err)
		}
	}
	return target{
		name: name,
		read: func(ctx context.Context, id int) (v int, err error) {
			err = rp.QueryRow(ctx, readSQL, id).Scan(&v)
			return v, err
		},
		write: func(ctx context.Context, id, v int) error { _, err := wp.Exec(ctx, writeSQL, id, v); return err },
		close: func() {
			rp.Close()
			if wp != rp {
				wp.Close()
			}
		},
	}
}

func newRouter(ctx context.Context, withReplica bool, tokenWait time.Duration) *dbrouter.Router {
	cfg := dbrouter.Config{
		Primary:   *primaryURL,
		Pool:      dbrouter.PoolConfig{MaxConns: int32(*conns), MinConns: int32(*conns)},
		Logger:    slog.New(slog.DiscardHandler),
		TokenWait: tokenWait,
	}
	if withReplica {
		cfg.Replicas = []string{*replicaURL}
	}
	r, err := dbrouter.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	return r
}

func routerTarget(ctx context.Context, name string, withReplica bool) target {
	r := newRouter(ctx, withReplica, 0)
	return target{
		name: name,
		read: func(ctx context.Context, id int) (v int, err error) {
			err = r.Read().QueryRow(ctx, readSQL, id).Scan(&v)
			return v, err
		},
		write: func(ctx context.Context, id, v int) error { _, err := r.Exec(ctx, writeSQL, id, v); return err },
		close: r.Close,
	}
}

// result is one measurement.
type result struct {
	opsPerSec float64
	p50, p99  time.Duration
	errors    int
}

// run drives t with n clients for d, writePct % of operations writes.
func run(ctx context.Context, t target, n int, d time.Duration, writePct int) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, n)
	errs := make([]int, n)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for ctx.Err() == nil {
				id := 1 + rng.IntN(*rows)
				s := time.Now()
				var err error
				if writePct > 0 && rng.IntN(100) < writePct {
					err = t.write(ctx, id, rng.IntN(1000))
				} else {
					_, err = t.read(ctx, id)
				}
				if ctx.Err() != nil {
					return // the end of the run cut this one short
				}
				lat[c] = append(lat[c], time.Since(s))
				if err != nil {
					errs[c]++
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	var all []time.Duration
	var r result
	for c := range n {
		all = append(all, lat[c]...)
		r.errors += errs[c]
	}
	slices.Sort(all)
	if len(all) > 0 {
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	r.opsPerSec = float64(len(all)) / el.Seconds()
	return r
}

func median[T int | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// compare runs every target in turn, rounds times, and prints medians and
// ratios to base.
func compare(ctx context.Context, ts []target, writePct int, base string) {
	thr := map[string][]float64{}
	lat := map[string][]time.Duration{}
	p99 := map[string][]time.Duration{}
	errs := map[string]int{}
	for _, t := range ts { // warm up
		run(ctx, t, *conns, *duration/4, writePct)
	}
	for i := range *rounds {
		order := slices.Clone(ts)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			a := run(ctx, t, *conns, *duration, writePct)
			b := run(ctx, t, 1, *duration, writePct)
			thr[t.name] = append(thr[t.name], a.opsPerSec)
			lat[t.name] = append(lat[t.name], b.p50)
			p99[t.name] = append(p99[t.name], b.p99)
			errs[t.name] += a.errors + b.errors
		}
	}
	bt, bl := median(thr[base]), median(lat[base])
	fmt.Printf("| target | ops/s (%d clients) | × %s | p50 latency (1 client) | × %s | p99 (1 client) | errors |\n", *conns, base, base)
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, t := range ts {
		mt, ml := median(thr[t.name]), median(lat[t.name])
		fmt.Printf("| %s | %.0f | %.3f | %v | %.3f | %v | %d |\n", t.name, mt, mt/bt,
			ml.Round(time.Microsecond/10), float64(ml)/float64(bl), median(p99[t.name]).Round(time.Microsecond), errs[t.name])
	}
	fmt.Println("\nper round, ops/s:")
	for _, t := range ts {
		fmt.Printf("  %-18s", t.name)
		for _, v := range thr[t.name] {
			fmt.Printf(" %8.0f", v)
		}
		fmt.Println()
	}
}

// stale counts reads that miss the write just before them.
func stale(ctx context.Context) {
	type way struct {
		name  string
		pair  func(ctx context.Context, id, v int) (int, error)
		after func() string
		close func()
	}
	seed := poolTarget(ctx, "seed", *replicaURL, *primaryURL) // the seed's DatabaseRouter with one replica: write on the master, read on the replica
	ways := []way{{
		name: "seed round robin (write on primary, read on a replica)",
		pair: func(ctx context.Context, id, v int) (int, error) {
			if err := seed.write(ctx, id, v); err != nil {
				return 0, err
			}
			return seed.read(ctx, id)
		},
		close: seed.close,
	}}
	for _, wait := range []time.Duration{0, 50 * time.Millisecond} {
		r := newRouter(ctx, true, wait)
		ways = append(ways, way{
			name: fmt.Sprintf("dbrouter with tokens (TokenWait %v)", wait),
			pair: func(ctx context.Context, id, v int) (int, error) {
				ctx = dbrouter.WithToken(ctx, dbrouter.Token{})
				if _, err := r.Exec(ctx, writeSQL, id, v); err != nil {
					return 0, err
				}
				var got int
				err := r.Read().QueryRow(ctx, readSQL, id).Scan(&got)
				return got, err
			},
			after: func() string {
				return fmt.Sprintf("reads on the replica %d, on the primary for the token %d",
					r.Decisions("replica0", "selected"), r.Decisions("primary", "token"))
			},
			close: r.Close,
		})
	}
	if *pgpoolURL != "" {
		pp := poolTarget(ctx, "pgpool", *pgpoolURL, *pgpoolURL)
		ways = append(ways, way{
			name: "pgpool-II (load balancing, default settings)",
			pair: func(ctx context.Context, id, v int) (int, error) {
				if err := pp.write(ctx, id, v); err != nil {
					return 0, err
				}
				return pp.read(ctx, id)
			},
			close: pp.close,
		})
	}
	fmt.Println("| way | stale reads | errors | time |")
	fmt.Println("|---|---|---|---|")
	for _, w := range ways {
		staleN, errN := 0, 0
		start := time.Now()
		for i := range *pairs {
			id := 1 + i%*rows
			v := 1_000_000 + i
			got, err := w.pair(ctx, id, v)
			switch {
			case err != nil:
				errN++
			case got != v:
				staleN++
			}
		}
		fmt.Printf("| %s | %d | %d | %v |\n", w.name, staleN, errN, time.Since(start).Round(time.Millisecond))
		if w.after != nil {
			fmt.Printf("|  (%s) | | | |\n", w.after())
		}
		w.close()
	}
}
