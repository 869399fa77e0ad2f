package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herdhq/herd/internal/testenv"
)

// countOn counts the rows of q on the database at url.
func countOn(t *testing.T, url, q string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// Orders sharded by user id over two PostgreSQL servers: each user's
// orders are on the shard the map gives the user, a user's listing reads
// that shard, and the admin listing reads both and says which one failed
// when one is stopped (206), or 503 when none answers.
func TestOrdersSharded(t *testing.T) {
	shard0, _ := testenv.PostgresDatabase(t)
	// The second shard is a server of its own that the test can stop: a
	// private replica of the shared server, promoted to a primary.
	srv1 := testenv.PostgresReplica(t)
	onReplica(t, srv1.URL, "select pg_promote(true, 60)")
	onReplica(t, srv1.URL, "create database shop_shard1")
	shard1 := srv1.DatabaseURL("shop_shard1")
	urls := []string{shard0, shard1}

	// Two orders instances start at once on fresh shards: one creates the
	// map, the other opens it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	repos := make([]*shardRepo, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range repos {
		wg.Go(func() { repos[i], errs[i] = openShardRepo(ctx, urls) })
	}
	wg.Wait()
	for _, r := range repos {
		if r != nil {
			t.Cleanup(r.close)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	repo := repos[0]
	if v0, v1 := repo.db.Map().Version(), repos[1].db.Map().Version(); v0 != 1 || v1 != 1 {
		t.Errorf("map versions %d and %d; want one map, version 1", v0, v1)
	}
	s := startShopWith(t, storeConfig{DataDir: t.TempDir()}, func(name string, d *deps) {
		if name == "orders" {
			d.orders = repo
		}
	})

	// Users until both shards have some.
	onShard := map[string][]string{}
	for i := 0; len(onShard) < 2 || len(onShard["orders-0"]) < 2 || len(onShard["orders-1"]) < 2; i++ {
		if i == 40 {
			t.Fatalf("40 users and the shards hold %v", onShard)
		}
		got := do(t, "POST", s.gateway.URL+"/api/users", fmt.Sprintf(`{"name":"Shard user %d","email":"shard%d@example.com"}`, i, i), nil)
		check{status: 201}.verify(t, got.status, got.body)
		id := decode[user](t, got.body).ID
		onShard[repo.db.Map().ShardOf(id)] = append(onShard[repo.db.Map().ShardOf(id)], id)
	}
	placed := map[string]order{}
	owner := map[string]string{} // order id → shard
	for name, users := range onShard {
		for _, u := range users {
			got := do(t, "POST", s.gateway.URL+"/api/orders", `{"user_id":"`+u+`","items":[{"product_id":"prd_cable","quantity":1},{"product_id":"prd_mouse","quantity":2}]}`, nil)
			check{status: 201}.verify(t, got.status, got.body)
			o := decode[order](t, got.body)
			placed[o.ID], owner[o.ID] = o, name
		}
	}
	for i, url := range urls {
		name := shardName(i)
		want := 0
		for id := range placed {
			if owner[id] == name {
				want++
				if n := countOn(t, url, `select count(*) from orders where id = $1`, id); n != 1 {
					t.Errorf("order %s of a user on %s: %d rows there", id, name, n)
				}
			}
		}
		if n := countOn(t, url, `select count(*) from orders`); n != want {
			t.Errorf("%s holds %d orders; want %d", name, n, want)
		}
		if n := countOn(t, url, `select count(*) from order_items`); n != 2*want {
			t.Errorf("%s holds %d items; want %d", name, n, 2*want)
		}
	}

	for id, o := range placed {
		got := do(t, "GET", s.gateway.URL+"/api/orders/"+id, "", nil)
		check{status: 200}.verify(t, got.status, got.body)
		if g := decode[order](t, got.body); fmt.Sprint(g) != fmt.Sprint(o) {
			t.Errorf("GET %s: %+v; want %+v", id, g, o)
		}
		got = do(t, "GET", s.gateway.URL+"/api/orders/users/"+o.UserID, "", nil)
		check{status: 200}.verify(t, got.status, got.body)
		if list := decode[[]order](t, got.body); len(list) != 1 || list[0].ID != id {
			t.Errorf("the orders of %s: %s", o.UserID, got.body)
		}
	}
	newest := make([]order, 0, len(placed))
	for _, o := range placed {
		newest = append(newest, o)
	}
	sort.Slice(newest, func(i, j int) bool {
		if newest[i].CreatedAt != newest[j].CreatedAt {
			return newest[i].CreatedAt > newest[j].CreatedAt
		}
		return newest[i].ID > newest[j].ID
	})
	got := do(t, "GET", s.gateway.URL+"/api/orders/admin/orders?limit=3", "", nil)
	check{status: 200}.verify(t, got.status, got.body)
	all := decode[allOrders](t, got.body)
	if len(all.Orders) != 3 || len(all.FailedShards) != 0 {
		t.Fatalf("admin listing, limit 3: %s", got.body)
	}
	for i, o := range all.Orders {
		if o.ID != newest[i].ID {
			t.Errorf("admin listing [%d] = %s; want %s (newest first across shards)", i, o.ID, newest[i].ID)
		}
	}

	// Shard 1's server stops.
	if err := srv1.Stop(); err != nil {
		t.Fatal(err)
	}
	got = do(t, "GET", s.gateway.URL+"/api/orders/admin/orders", "", nil)
	check{status: 206}.verify(t, got.status, got.body)
	all = decode[allOrders](t, got.body)
	if len(all.FailedShards) != 1 || all.FailedShards[0].Shard != "orders-1" || all.FailedShards[0].Error == "" {
		t.Errorf("failed_shards %+v; want orders-1 with its error", all.FailedShards)
	}
	if len(all.Orders) != len(onShard["orders-0"]) {
		t.Errorf("%d orders from the shard that answered; want %d", len(all.Orders), len(onShard["orders-0"]))
	}
	for _, o := range all.Orders {
		if owner[o.ID] != "orders-0" {
			t.Errorf("order %s of %s in a listing without it", o.ID, owner[o.ID])
		}
	}
	for id, o := range placed {
		want := check{status: 200}
		if owner[id] == "orders-1" {
			want = check{503, "", "did not answer"}
		}
		got := do(t, "GET", s.gateway.URL+"/api/orders/"+id, "", nil)
		want.verify(t, got.status, got.body)
		got = do(t, "GET", s.gateway.URL+"/api/orders?user_id="+o.UserID, "", nil)
		want.verify(t, got.status, got.body)
	}
	got = do(t, "GET", s.gateway.URL+"/api/orders/ord_nowhere", "", nil)
	check{503, "", "orders-1"}.verify(t, got.status, got.body)

	// Neither answers (shard 0's table is gone for a moment): 503 naming both.
	ctx0, cancel0 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel0()
	c0, err := pgx.Connect(ctx0, shard0)
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close(context.Background())
	if _, err := c0.Exec(ctx0, `ALTER TABLE orders RENAME TO orders_away`); err != nil {
		t.Fatal(err)
	}
	got = do(t, "GET", s.gateway.URL+"/api/orders/admin/orders", "", nil)
	check{503, "", "2 of 2 shards failed"}.verify(t, got.status, got.body)
	if _, err := c0.Exec(ctx0, `ALTER TABLE orders_away RENAME TO orders`); err != nil {
		t.Fatal(err)
	}

	// Back: every order is listed again.
	if err := srv1.Start(); err != nil {
		t.Fatal(err)
	}
	await(t, 15*time.Second, "both shards answering", func() bool {
		a := do(t, "GET", s.gateway.URL+"/api/orders/admin/orders", "", nil)
		return a.status == 200 && len(decode[allOrders](t, a.body).Orders) == len(placed)
	})
}
