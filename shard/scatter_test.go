package shard

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

type order struct {
	id, user int64
	cents    int64
	status   string
}

// fill inserts orders for users picked so that the shards are uneven:
// s0 gets heavy users with small orders, the others few large ones.
func fill(ctx context.Context, t *testing.T, db *DB, perShard map[string]int) []order {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	var out []order
	id := int64(0)
	got := map[string]int{}
	for u := int64(1); len(out) < 100000; u++ {
		k := strconv.FormatInt(u, 10)
		s := db.Map().ShardOf(k)
		if got[s] >= perShard[s] {
			done := true
			for name, n := range perShard {
				if got[name] < n {
					done = false
				}
			}
			if done {
				break
			}
			continue
		}
		got[s]++
		id++
		cents := int64(r.IntN(1000))
		if s != "s0" {
			cents += 50000
		}
		o := order{id: id, user: u, cents: cents, status: []string{"new", "paid", "sent"}[r.IntN(3)]}
		if _, err := db.Exec(ctx, k, `INSERT INTO orders (id, user_id, shard_bucket, total, status) VALUES ($1, $2, $3, $4::numeric / 100, $5)`,
			o.id, o.user, db.Bucket(k), o.cents, o.status); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func numString(v any) string {
	n, ok := v.(pgtype.Numeric)
	if !ok {
		return fmt.Sprintf("%v (%T)", v, v)
	}
	return numRat(n).FloatString(2)
}

func TestQueryAllOrderedWithLimit(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 4)
	db, err := Create(ctx, c.config(4), 64)
	if err != nil {
		t.Fatal(err)
	}
	orders := fill(ctx, t, db, map[string]int{"s0": 120, "s1": 40, "s2": 30, "s3": 10})
	want := slices.Clone(orders)
	sort.Slice(want, func(i, j int) bool {
		if want[i].cents != want[j].cents {
			return want[i].cents > want[j].cents
		}
		return want[i].id < want[j].id
	})
	tests := []struct {
		name  string
		limit int
	}{{"limit 25", 25}, {"limit 1", 1}, {"no limit", 0}, {"limit over all", 1000}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := db.QueryAll(ctx, Query{
				SQL:     `SELECT id, total FROM orders WHERE shard_bucket = ANY($1) AND total >= $2`,
				Args:    []any{0},
				OrderBy: []Order{{Column: 1, Desc: true}, {Column: 0}},
				Limit:   tt.limit,
			})
			if err != nil {
				t.Fatal(err)
			}
			w := want
			if tt.limit > 0 && tt.limit < len(w) {
				w = w[:tt.limit]
			}
			if len(res.Rows) != len(w) {
				t.Fatalf("got %d rows; want %d", len(res.Rows), len(w))
			}
			for i, row := range res.Rows {
				if row[0].(int64) != w[i].id || numString(row[1]) != new(big.Rat).SetFrac64(w[i].cents, 100).FloatString(2) {
					t.Fatalf("row %d = %v %v; want %d %d", i, row[0], numString(row[1]), w[i].id, w[i].cents)
				}
			}
			for s, n := range res.ShardRows {
				if tt.limit > 0 && n > tt.limit {
					t.Errorf("shard %s returned %d rows; the limit %d was not pushed down", s, n, tt.limit)
				}
			}
			if got, wantCols := res.Columns, []string{"id", "total"}; !slices.Equal(got, wantCols) {
				t.Errorf("columns %v; want %v", got, wantCols)
			}
		})
	}
	if _, err := db.QueryAll(ctx, Query{SQL: `SELECT id FROM orders`}); err == nil {
		t.Error("QueryAll without the bucket filter $1 succeeded; want an error")
	}
}

// COUNT, SUM, MIN, MAX and AVG over uneven shards: AVG is the total sum over
// the total count, which differs here from the average of the shards' averages.
func TestAggregateOverUnevenShards(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 4)
	db, err := Create(ctx, c.config(4), 64)
	if err != nil {
		t.Fatal(err)
	}
	orders := fill(ctx, t, db, map[string]int{"s0": 150, "s1": 10, "s2": 5, "s3": 1})
	type agg struct {
		n, sum, min, max int64
	}
	want := map[string]*agg{}
	all := &agg{min: 1 << 62}
	for _, o := range orders {
		a := want[o.status]
		if a == nil {
			a = &agg{min: 1 << 62}
			want[o.status] = a
		}
		for _, a := range []*agg{a, all} {
			a.n++
			a.sum += o.cents
			a.min = min(a.min, o.cents)
			a.max = max(a.max, o.cents)
		}
	}
	cents := func(v int64) string { return new(big.Rat).SetFrac64(v, 100).FloatString(2) }

	res, err := db.Aggregate(ctx, Query{SQL: `SELECT count(*), sum(total), sum(total), count(total), min(total), max(total) FROM orders WHERE shard_bucket = ANY($1)`},
		Count, Sum, Avg, Count, Min, Max)
	if err != nil {
		t.Fatal(err)
	}
	row := res.Rows[0]
	wantAvg := float64(all.sum) / float64(all.n) / 100
	if row[0].(int64) != all.n || numString(row[1]) != cents(all.sum) || numString(row[4]) != cents(all.min) || numString(row[5]) != cents(all.max) {
		t.Errorf("got count %v sum %v min %v max %v; want %d %s %s %s", row[0], numString(row[1]), numString(row[4]), numString(row[5]), all.n, cents(all.sum), cents(all.min), cents(all.max))
	}
	if got := row[2].(float64); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", wantAvg) {
		t.Errorf("avg %.6f; want %.6f", got, wantAvg)
	}
	// The seed's way: the average of the shards' averages, far off here.
	var avgs []float64
	for _, name := range c.names {
		var a float64
		if err := c.pools[name].QueryRow(ctx, `SELECT avg(total)::float8 FROM orders`).Scan(&a); err != nil {
			t.Fatal(err)
		}
		avgs = append(avgs, a)
	}
	naive := (avgs[0] + avgs[1] + avgs[2] + avgs[3]) / 4
	t.Logf("avg over all %.2f; average of shard averages %.2f", wantAvg, naive)
	if naive-wantAvg < 100 {
		t.Errorf("the shards are not uneven enough to tell: naive %.2f, true %.2f", naive, wantAvg)
	}

	// Grouped, ordered by count descending then status.
	res, err = db.Aggregate(ctx, Query{
		SQL:     `SELECT status, count(*), sum(total) FROM orders WHERE shard_bucket = ANY($1) GROUP BY status`,
		OrderBy: []Order{{Column: 1, Desc: true}, {Column: 0}},
		Limit:   2,
	}, Group, Count, Sum)
	if err != nil {
		t.Fatal(err)
	}
	statuses := []string{"new", "paid", "sent"}
	sort.SliceStable(statuses, func(i, j int) bool {
		if want[statuses[i]].n != want[statuses[j]].n {
			return want[statuses[i]].n > want[statuses[j]].n
		}
		return statuses[i] < statuses[j]
	})
	if len(res.Rows) != 2 {
		t.Fatalf("grouped: %d rows; want 2", len(res.Rows))
	}
	for i, row := range res.Rows {
		s := statuses[i]
		if row[0] != s || row[1].(int64) != want[s].n || numString(row[2]) != cents(want[s].sum) {
			t.Errorf("group %d = %v %v %v; want %s %d %s", i, row[0], row[1], numString(row[2]), s, want[s].n, cents(want[s].sum))
		}
	}
	if _, err := db.Aggregate(ctx, Query{SQL: `SELECT sum(total), min(total) FROM orders WHERE shard_bucket = ANY($1)`}, Avg, Min); err == nil {
		t.Error("Avg not followed by Count accepted; want an error")
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// A shard that fails during QueryAll — unreachable, its backend
// terminated mid-query, or over its deadline — is named in a
// *PartialError; by default the call fails, opted in it returns the other
// shards' rows beside the error, never silently fewer rows.
func TestQueryAllNamesTheFailedShard(t *testing.T) {
	ctx := testCtx(t)
	c := newCluster(t, 4)
	db, err := Create(ctx, c.config(4), 64)
	if err != nil {
		t.Fatal(err)
	}
	orders := fill(ctx, t, db, map[string]int{"s0": 20, "s1": 20, "s2": 20, "s3": 20})
	perShard := c.rawCount(ctx, "orders")
	q := Query{SQL: `SELECT id FROM orders WHERE shard_bucket = ANY($1) AND test_delay()`}

	slow := func(name string, secs float64) {
		_, err := c.pools[name].Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE FUNCTION test_delay() RETURNS boolean LANGUAGE plpgsql STABLE AS $$ BEGIN PERFORM pg_sleep(%g); RETURN true; END $$`, secs))
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		shard   string
		setup   func() (undo func())
		during  func(ctx context.Context) // runs while QueryAll runs
		timeout time.Duration
		is      error
	}{
		{name: "unreachable", shard: "s2", setup: func() func() {
			bad, err := pgxpool.New(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", closedPort(t)))
			if err != nil {
				t.Fatal(err)
			}
			db.cfg.Shards["s2"] = bad
			return func() { db.cfg.Shards["s2"] = c.pools["s2"]; bad.Close() }
		}},
		{name: "terminated mid-query", shard: "s1", setup: func() func() {
			slow("s1", 5)
			return func() { slow("s1", 0) }
		}, during: func(ctx context.Context) {
			// Wait until s1 runs the query, then end its backend.
			for ctx.Err() == nil {
				var n int
				err := c.admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%herd_q%' AND state = 'active'`,
					c.prefix+"_1").Scan(&n)
				if err != nil || n > 0 {
					return
				}
				time.Sleep(5 * time.Millisecond) // polling pg_stat_activity: no event to wait on
			}
		}},
		{name: "over its deadline", shard: "s3", timeout: 200 * time.Millisecond, is: context.DeadlineExceeded, setup: func() func() {
			slow("s3", 5)
			return func() { slow("s3", 0) }
		}},
	}
	for _, tt := range tests {
		for _, partial := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/partial=%v", tt.name, partial), func(t *testing.T) {
				undo := tt.setup()
				defer undo()
				q := q
				q.AllowPartial = partial
				q.ShardTimeout = tt.timeout
				dctx, cancel := context.WithCancel(ctx)
				defer cancel()
				if tt.during != nil {
					go tt.during(dctx)
				}
				start := time.Now()
				res, err := db.QueryAll(ctx, q)
				took := time.Since(start)
				var pe *PartialError
				if !errors.As(err, &pe) {
					t.Fatalf("got %v (%T); want a *PartialError", err, err)
				}
				if got := pe.Failed(); !slices.Equal(got, []string{tt.shard}) {
					t.Errorf("failed shards %v (%v); want [%s]", got, err, tt.shard)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %v; want it to wrap %v", err, tt.is)
				}
				if took > 3*time.Second {
					t.Errorf("took %v; a failed shard must not hold the call", took)
				}
				if !partial {
					if res != nil {
						t.Errorf("default mode returned %d rows beside the error; want none", len(res.Rows))
					}
					return
				}
				if want := int64(len(orders)) - perShard[tt.shard]; res == nil || int64(len(res.Rows)) != want {
					t.Fatalf("partial: got %v rows; want %d (all but %s's)", res, want, tt.shard)
				}
				if _, ok := res.ShardRows[tt.shard]; ok {
					t.Errorf("ShardRows names the failed shard %s", tt.shard)
				}
			})
		}
	}
}

// By default the first failed shard cancels the others: the call does not
// wait for a slow shard whose answer it would throw away, and the error
// names the failed shard, not the cancelled ones.
func TestQueryAllFailsFast(t *testing.T) {
	ctx := testCtx(t)
	c := newCluster(t, 3)
	db, err := Create(ctx, c.config(3), 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.pools["s0"].Exec(ctx, `CREATE OR REPLACE FUNCTION test_delay() RETURNS boolean LANGUAGE plpgsql STABLE AS $$ BEGIN PERFORM pg_sleep(5); RETURN true; END $$`); err != nil {
		t.Fatal(err)
	}
	bad, err := pgxpool.New(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	db.cfg.Shards["s2"] = bad
	start := time.Now()
	_, err = db.QueryAll(ctx, Query{SQL: `SELECT id FROM orders WHERE shard_bucket = ANY($1) AND test_delay()`})
	took := time.Since(start)
	var pe *PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Failed(), []string{"s2"}) {
		t.Fatalf("got %v; want a *PartialError naming s2 only", err)
	}
	if took > time.Second {
		t.Errorf("took %v; want the failure at once, not s0's 5 s", took)
	}
}

// A scatter-gather waits for its slowest shard, not the sum of them.
func TestQueryAllRunsShardsInParallel(t *testing.T) {
	ctx := testCtx(t)
	c := newCluster(t, 4)
	db, err := Create(ctx, c.config(4), 64)
	if err != nil {
		t.Fatal(err)
	}
	fill(ctx, t, db, map[string]int{"s0": 10, "s1": 10, "s2": 10, "s3": 10})
	setDelay := func(name string, secs float64) {
		if _, err := c.pools[name].Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE FUNCTION test_delay() RETURNS boolean LANGUAGE plpgsql STABLE AS $$ BEGIN PERFORM pg_sleep(%g); RETURN true; END $$`, secs)); err != nil {
			t.Fatal(err)
		}
	}
	q := Query{SQL: `SELECT id FROM orders WHERE shard_bucket = ANY($1) AND test_delay()`}
	median := func() time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			res, err := db.QueryAll(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rows) != 40 {
				t.Fatalf("%d rows; want 40", len(res.Rows))
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	none := median()
	setDelay("s2", 0.1)
	one := median()
	for _, s := range c.names {
		setDelay(s, 0.1)
	}
	all := median()
	t.Logf("QueryAll over 4 shards, median of 5: no delay %v, one shard +100 ms %v, every shard +100 ms %v (a sequential run would take ≥ 400 ms)",
		none.Round(100*time.Microsecond), one.Round(100*time.Microsecond), all.Round(100*time.Microsecond))
	if one < 100*time.Millisecond || one > 200*time.Millisecond {
		t.Errorf("one shard slowed by 100 ms: %v; want about 100 ms", one)
	}
	if all > 250*time.Millisecond {
		t.Errorf("every shard slowed by 100 ms: %v; want about 100 ms, not the 400 ms sum", all)
	}
}

// A DB whose cached map is stale (another process moved a bucket) still
// writes to the bucket's new shard and counts each row once.
func TestStaleMapFollowsTheMove(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 2)
	db, err := Create(ctx, c.config(2), 16)
	if err != nil {
		t.Fatal(err)
	}
	orders := fill(ctx, t, db, map[string]int{"s0": 30, "s1": 30})
	stale, err := Open(ctx, c.config(2))
	if err != nil {
		t.Fatal(err)
	}
	k := strconv.FormatInt(orders[0].user, 10)
	b := db.Bucket(k)
	from := db.Map().Shard(b)
	to := map[string]string{"s0": "s1", "s1": "s0"}[from]
	if err := db.Move(ctx, b, to); err != nil {
		t.Fatal(err)
	}
	v := stale.Map().Version()
	res, err := stale.Aggregate(ctx, Query{SQL: `SELECT count(*) FROM orders WHERE shard_bucket = ANY($1)`}, Count)
	if err != nil || res.Rows[0][0].(int64) != int64(len(orders)) {
		t.Fatalf("count with a stale map = %v, %v; want %d", res, err, len(orders))
	}
	if res.Version == v {
		t.Errorf("the count ran under the stale version %d", v)
	}
	// Stale again for the write: a second move, back.
	stale2, _ := Open(ctx, c.config(2))
	if err := db.Move(ctx, b, from); err != nil {
		t.Fatal(err)
	}
	if _, err := stale2.Exec(ctx, k, `UPDATE orders SET status = 'moved' WHERE id = $1`, orders[0].id); err != nil {
		t.Fatal(err)
	}
	var status string
	if err := c.pools[from].QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, orders[0].id).Scan(&status); err != nil || status != "moved" {
		t.Errorf("on %s: status %q, %v; want moved", from, status, err)
	}
}
