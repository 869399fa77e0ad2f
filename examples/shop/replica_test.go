package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herdhq/herd/dbrouter"
	"github.com/herdhq/herd/internal/testenv"
)

// onReplica runs one statement on its own connection to url and scans
// its row into dest, if any.
func onReplica(t *testing.T, url, q string, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to the replica: %v", err)
	}
	defer conn.Close(context.Background())
	if len(dest) == 0 {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return
	}
	if err := conn.QueryRow(ctx, q).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// Orders on a primary and a streaming replica whose replay is paused: the
// replica does not have a new order, yet the client that placed it always
// reads it: with the token the POST answered (Herd-Consistency-Token), by
// its user's scope, or because a miss on the replica is asked of the
// primary. Reads with nothing to honour still go to the replica.
func TestOrdersReadYourWritesOnALaggingReplica(t *testing.T) {
	primary, name := testenv.PostgresDatabase(t)
	open(t, "orders", storeConfig{DatabaseURL: primary}) // the tables, before the base backup
	rep := testenv.PostgresReplica(t)
	replica := rep.DatabaseURL(name)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	repo, err := openRouterRepo(ctx, primary, []string{replica}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.close)
	if st := repo.r.Stat().Replicas[0].State; st != dbrouter.Up {
		t.Fatalf("replica %v at start; want up", st)
	}
	s := startShopWith(t, storeConfig{DataDir: t.TempDir()}, func(name string, d *deps) {
		if name == "orders" {
			d.orders = repo
		}
	})
	decisions := func(server, reason string) int64 { return repo.r.Decisions(server, reason) }

	onReplica(t, replica, "select pg_wal_replay_pause()")
	t.Cleanup(func() { onReplica(t, replica, "select pg_wal_replay_resume()") })
	await(t, 15*time.Second, "replay paused", func() bool {
		var state string
		onReplica(t, replica, "select pg_get_wal_replay_pause_state()", &state)
		return state == "paused"
	})

	got := do(t, "POST", s.gateway.URL+"/api/orders", `{"user_id":"usr_bob","items":[{"product_id":"prd_cable","quantity":1}]}`, nil)
	check{status: 201}.verify(t, got.status, got.body)
	o := decode[order](t, got.body)
	token := got.header.Get(dbrouter.TokenHeader)
	if _, err := dbrouter.ParseToken(token); err != nil || token == "" {
		t.Fatalf("the POST's answer has %s %q (%v); want the write's token", dbrouter.TokenHeader, token, err)
	}
	// The test can tell: the replica does not have the order.
	var n int
	onReplica(t, replica, "select count(*) from orders where id = '"+o.ID+"'", &n)
	if n != 0 {
		t.Fatalf("the paused replica has the order already; the test shows nothing")
	}

	t.Run("with the token", func(t *testing.T) {
		before := decisions("primary", "token")
		got := do(t, "GET", s.gateway.URL+"/api/orders/"+o.ID, "", nil, dbrouter.TokenHeader, token)
		check{status: 200}.verify(t, got.status, got.body)
		if decisions("primary", "token") == before {
			t.Errorf("the read with a token the replica has not replayed was not sent to the primary for it")
		}
	})
	t.Run("by the user's scope", func(t *testing.T) {
		got := do(t, "GET", s.gateway.URL+"/api/orders?user_id=usr_bob", "", nil)
		check{status: 200}.verify(t, got.status, got.body)
		if list := decode[[]order](t, got.body); len(list) != 1 || list[0].ID != o.ID {
			t.Errorf("bob's orders %s; want the one just placed", got.body)
		}
	})
	t.Run("a miss asked of the primary", func(t *testing.T) {
		got := do(t, "GET", s.gateway.URL+"/api/orders/"+o.ID, "", nil)
		check{status: 200}.verify(t, got.status, got.body)
		if g := decode[order](t, got.body); g.ID != o.ID || len(g.Items) != 1 || g.Items[0].PriceCents != 999 {
			t.Errorf("order %+v; want %+v", g, o)
		}
	})
	t.Run("nothing to honour reads the replica", func(t *testing.T) {
		before := decisions("replica0", "selected")
		got := do(t, "GET", s.gateway.URL+"/api/orders?user_id=usr_carol", "", nil)
		check{status: 200}.verify(t, got.status, got.body)
		if decisions("replica0", "selected") == before {
			t.Errorf("carol's listing (no token, no write in her scope) did not go to the replica")
		}
		// The admin listing reads the replica too, and is as old as it.
		got = do(t, "GET", s.gateway.URL+"/api/orders/admin/orders", "", nil)
		check{status: 200}.verify(t, got.status, got.body)
		if all := decode[allOrders](t, got.body); len(all.Orders) != 0 {
			t.Errorf("the admin listing from the paused replica has %d orders; want none yet", len(all.Orders))
		}
	})

	onReplica(t, replica, "select pg_wal_replay_resume()")
	await(t, 15*time.Second, "the replica replaying the order", func() bool {
		onReplica(t, replica, "select count(*) from orders where id = '"+o.ID+"'", &n)
		return n == 1
	})
	// The router learns the replica's position by polling it (every
	// second), so reads with the token go to it within a poll or two.
	await(t, 5*time.Second, "a read with the token going to the replica that replayed it", func() bool {
		before := decisions("replica0", "selected")
		got := do(t, "GET", s.gateway.URL+"/api/orders/"+o.ID, "", nil, dbrouter.TokenHeader, token)
		check{status: 200}.verify(t, got.status, got.body)
		return decisions("replica0", "selected") > before
	})
	if !strings.Contains(repo.describe(), "1 replicas") {
		t.Errorf("describe() = %q", repo.describe())
	}
}
