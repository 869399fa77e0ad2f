package shard

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const insertOrder = `INSERT INTO orders (id, user_id, shard_bucket, total) VALUES ($1, $2, $3, $4)`

func addOrder(ctx context.Context, t testing.TB, db *DB, id, user int64, total string) {
	t.Helper()
	k := strconv.FormatInt(user, 10)
	if _, err := db.Exec(ctx, k, insertOrder, id, user, db.Bucket(k), total); err != nil {
		t.Fatalf("insert order %d of user %d: %v", id, user, err)
	}
}

func TestRoutesByKey(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 3)
	db, err := Create(ctx, c.config(3), 64)
	if err != nil {
		t.Fatal(err)
	}
	for u := int64(1); u <= 60; u++ {
		addOrder(ctx, t, db, u, u, "1.00")
	}
	m := db.Map()
	for u := int64(1); u <= 60; u++ {
		k := strconv.FormatInt(u, 10)
		for _, name := range c.names {
			var n int
			if err := c.pools[name].QueryRow(ctx, `SELECT count(*) FROM orders WHERE user_id = $1`, u).Scan(&n); err != nil {
				t.Fatal(err)
			}
			want := 0
			if name == m.ShardOf(k) {
				want = 1
			}
			if n != want {
				t.Errorf("user %d: %d rows on %s; want %d (the map says %s)", u, n, name, want, m.ShardOf(k))
			}
		}
		rows, err := db.QueryRows(ctx, k, `SELECT id FROM orders WHERE user_id = $1`, u)
		if err != nil || len(rows) != 1 || rows[0][0] != u {
			t.Errorf("QueryRows(user %d) = %v, %v; want [[%d]]", u, rows, err, u)
		}
	}
	// Every shard got some: the placement spreads.
	for name, n := range c.rawCount(ctx, "orders") {
		if n == 0 {
			t.Errorf("shard %s got no rows of 60 users", name)
		}
	}
	// Open finds the same map.
	db2, err := Open(ctx, c.config(3))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := db2.Map().Version(), m.Version(); got != want {
		t.Errorf("Open: version %d; want %d", got, want)
	}
	if _, err := Create(ctx, c.config(3), 64); err == nil {
		t.Error("a second Create succeeded; want an error")
	}
}

// The trigger refuses a write that did not enter its bucket: so no write
// can go around a move's fence.
func TestWritesAroundThePackageAreRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := newCluster(t, 2)
	db, err := Create(ctx, c.config(2), 16)
	if err != nil {
		t.Fatal(err)
	}
	k := "7"
	b := db.Bucket(k)
	owner := c.pools[db.Map().ShardOf(k)]
	tests := []struct {
		name string
		run  func() error
	}{
		{"insert on the shard directly", func() error {
			_, err := owner.Exec(ctx, insertOrder, 1, 7, b, "1")
			return err
		}},
		{"insert with another key's bucket", func() error {
			_, err := db.Exec(ctx, k, insertOrder, 2, 7, (b+1)%16, "1")
			return err
		}},
		{"a write inside a read", func() error {
			_, err := db.QueryRows(ctx, k, `INSERT INTO orders (id, user_id, shard_bucket, total) VALUES (3, 7, $1, 1) RETURNING id`, b)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != codeBypass {
				t.Fatalf("got %v; want SQLSTATE %s", err, codeBypass)
			}
		})
	}
	if n := c.rawCount(ctx, "orders"); n["s0"]+n["s1"] != 0 {
		t.Errorf("rows written: %v; want none", n)
	}
	// The same insert through the package works.
	addOrder(ctx, t, db, 1, 7, "1")
}
