package shard_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"

	"github.com/herdhq/herd/shard"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Keys hash to a fixed number of buckets; the map says which shard holds
// each bucket. Adding a fifth shard to four moves only the buckets the
// plan picks: a fifth of them, and a fifth of the keys.
func ExamplePlan() {
	m, _ := shard.NewMap(1024, "orders-0", "orders-1", "orders-2", "orders-3")
	moves, _ := shard.Plan(m, "orders-0", "orders-1", "orders-2", "orders-3", "orders-4")
	next, _ := m.Apply(moves...)

	moved := 0
	for id := 1; id <= 10000; id++ {
		k := strconv.Itoa(id)
		if m.ShardOf(k) != next.ShardOf(k) {
			moved++
		}
	}
	fmt.Println("bucket moves:", len(moves), "first:", moves[0])
	fmt.Println("buckets per shard:", next.Counts())
	fmt.Printf("keys moved: %.1f%%\n", float64(moved)/100)
	fmt.Println("map version:", m.Version(), "→", next.Version())
	// Output:
	// bucket moves: 204 first: bucket 820: orders-0 → orders-4
	// buckets per shard: map[orders-0:205 orders-1:205 orders-2:205 orders-3:205 orders-4:204]
	// keys moved: 19.8%
	// map version: 1 → 205
}

// A key's bucket is XXH64(key) % buckets, stored in the row's bucket
// column; the map turns it into a shard.
func ExampleBucketOf() {
	m, _ := shard.NewMap(1024, "a", "b")
	for _, user := range []string{"1", "42"} {
		b := shard.BucketOf(user, m.Buckets())
		fmt.Printf("user %s: bucket %d on shard %s\n", user, b, m.Shard(b))
	}
	// Output:
	// user 1: bucket 212 on shard a
	// user 42: bucket 697 on shard b
}

// Orders sharded by user id over two databases, with a third added later.
// (Needs PostgreSQL servers, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	mapDB, _ := pgxpool.New(ctx, "postgres://127.0.0.1/orders_map")
	s0, _ := pgxpool.New(ctx, "postgres://127.0.0.1/orders_0")
	s1, _ := pgxpool.New(ctx, "postgres://127.0.0.1/orders_1")
	// Each shard has the same table, with the bucket column indexed:
	//   CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL,
	//     shard_bucket integer NOT NULL, total numeric NOT NULL);
	//   CREATE INDEX ON orders (shard_bucket);
	cfg := shard.Config{
		Map:    mapDB,
		Shards: map[string]shard.Conn{"orders-0": s0, "orders-1": s1},
		Tables: []shard.Table{{Name: "orders", Key: []string{"id"}}},
	}
	db, err := shard.Create(ctx, cfg, 1024) // once; later processes call shard.Open
	if err != nil {
		log.Fatal(err)
	}

	user := "42"
	_, err = db.Exec(ctx, user, `INSERT INTO orders (id, user_id, shard_bucket, total) VALUES ($1, $2, $3, $4)`,
		1001, 42, db.Bucket(user), "19.90")
	if err != nil {
		log.Fatal(err)
	}
	rows, _ := db.QueryRows(ctx, user, `SELECT id, total FROM orders WHERE user_id = $1`, 42)
	fmt.Println(len(rows))

	// The 10 largest orders of all users: LIMIT pushed down, merged in order.
	top, err := db.QueryAll(ctx, shard.Query{
		SQL:     `SELECT id, total FROM orders WHERE shard_bucket = ANY($1)`,
		OrderBy: []shard.Order{{Column: 1, Desc: true}},
		Limit:   10,
	})
	var partial *shard.PartialError
	if errors.As(err, &partial) {
		log.Printf("shards %v failed", partial.Failed())
	}
	_ = top

	// Average over all orders: SUM and COUNT per shard, combined.
	avg, _ := db.Aggregate(ctx, shard.Query{SQL: `SELECT sum(total), count(*) FROM orders WHERE shard_bucket = ANY($1)`},
		shard.Avg, shard.Count)
	fmt.Println(avg.Rows[0][0])

	// Add a shard: register it, plan, move its share online.
	s2, _ := pgxpool.New(ctx, "postgres://127.0.0.1/orders_2")
	cfg.Shards["orders-2"] = s2
	db, _ = shard.Open(ctx, cfg)
	_ = db.Resume(ctx) // finish any move a crashed mover left
	_ = db.AddShard(ctx, "orders-2")
	moves, _ := shard.Plan(db.Map(), "orders-0", "orders-1", "orders-2")
	if err := db.Rebalance(ctx, moves); err != nil {
		log.Fatal(err)
	}
}
