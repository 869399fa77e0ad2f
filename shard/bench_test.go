package shard

import (
	"context"
	"strconv"
	"testing"
)

// Routing costs against the raw pool, on the same server: a one-row
// primary-key update and read.
func BenchmarkRouting(b *testing.B) {
	ctx := context.Background()
	c := newCluster(b, 2)
	db, err := Create(ctx, c.config(2), 1024)
	if err != nil {
		b.Fatal(err)
	}
	const users = 1000
	for u := range users {
		k := strconv.Itoa(u)
		if _, err := db.Exec(ctx, k, insertOrder, u, u, db.Bucket(k), "1"); err != nil {
			b.Fatal(err)
		}
	}
	raw := c.pools["s0"]
	var rawIDs []int
	for u := range users {
		if db.Map().ShardOf(strconv.Itoa(u)) == "s0" {
			rawIDs = append(rawIDs, u)
		}
	}
	b.Run("raw-pool/select", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var v int32
			if err := raw.QueryRow(ctx, `SELECT version FROM orders WHERE id = $1`, rawIDs[i%len(rawIDs)]).Scan(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shard/select", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			u := i % users
			if _, err := db.QueryRows(ctx, strconv.Itoa(u), `SELECT version FROM orders WHERE id = $1`, u); err != nil {
				b.Fatal(err)
			}
		}
	})
	raw.Exec(ctx, `SET herd_shard.bypass = on`) // a pool connection; the raw update below sets it per call
	b.Run("raw-pool/update", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := raw.Exec(ctx, `UPDATE orders SET version = version + 1 WHERE id = $1 AND set_config('herd_shard.bypass', 'on', true) = 'on'`, rawIDs[i%len(rawIDs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shard/update", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			u := i % users
			if _, err := db.Exec(ctx, strconv.Itoa(u), `UPDATE orders SET version = version + 1 WHERE id = $1`, u); err != nil {
				b.Fatal(err)
			}
		}
	})
}
