package shard_test

import (
	"fmt"
	"strconv"

	"github.com/herdhq/herd/shard"
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
