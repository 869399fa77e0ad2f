package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herdhq/herd/internal/testenv"
)

// await polls cond every 5 ms until it holds or within passes, and returns
// how long it took.
func await(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// priceOn is the price GET /products/id answers on srv, -status if not 200.
func priceOn(t *testing.T, srv, id string) int64 {
	t.Helper()
	a := do(t, "GET", srv+"/products/"+id, "", nil)
	if a.status != http.StatusOK {
		return -int64(a.status)
	}
	return decode[product](t, a.body).PriceCents
}

// Two products instances on one database: B has a product cached; a PATCH
// on A is what B serves next, at once with Redis (every write evicts the
// key from every instance's L1), and within localOnlyTTL without it.
func TestProductPatchSeenByOtherInstance(t *testing.T) {
	for _, withRedis := range []bool{true, false} {
		t.Run(fmt.Sprintf("redis=%v", withRedis), func(t *testing.T) {
			t.Parallel()
			var rdbA, rdbB redis.UniversalClient
			if withRedis {
				r := testenv.StartRedis(t)
				// A client each, as two processes would have.
				rdbA = redis.NewClient(&redis.Options{Addr: r.Addr()})
				rdbB = redis.NewClient(&redis.Options{Addr: r.Addr()})
				t.Cleanup(func() { rdbA.Close(); rdbB.Close() })
			}
			cfg := storeConfig{DataDir: t.TempDir()}
			stA := open(t, "products", cfg)
			a := serveWith(t, "products", deps{store: stA, redis: rdbA}).URL
			b := serveWith(t, "products", deps{store: open(t, "products", cfg), redis: rdbB}).URL

			if p := priceOn(t, b, "prd_mouse"); p != 2499 {
				t.Fatalf("B's mouse costs %d; want the seeded 2499", p)
			}
			// Behind the cache's back: B still serves what it cached, so
			// what follows can tell a fresh read from a cached one.
			if _, err := stA.DB.Exec(`UPDATE products SET price_cents = 1 WHERE id = 'prd_mouse'`); err != nil {
				t.Fatal(err)
			}
			if p := priceOn(t, b, "prd_mouse"); p != 2499 {
				t.Fatalf("B's mouse costs %d after a write behind the cache; want the cached 2499", p)
			}
			got := do(t, "PATCH", a+"/products/prd_mouse", `{"price_cents":3000}`, nil)
			check{status: 200}.verify(t, got.status, got.body)
			if p := decode[product](t, got.body); p.PriceCents != 3000 || p.Stock != 250 {
				t.Errorf("PATCH answered %+v; want price 3000, stock unchanged at 250", p)
			}
			within := 2 * time.Second // far below L1's minute: only the invalidation can do it
			if !withRedis {
				within = localOnlyTTL + time.Second
			}
			took := await(t, within, "B serving the patched price", func() bool { return priceOn(t, b, "prd_mouse") == 3000 })
			t.Logf("B served the new price %v after the PATCH's answer", took)
			if p := priceOn(t, a, "prd_mouse"); p != 3000 {
				t.Errorf("A, which wrote, serves %d", p)
			}
			// GET /products (the cached list) follows as well.
			await(t, within, "B's list showing the patched price", func() bool {
				for _, p := range decode[[]product](t, do(t, "GET", b+"/products", "", nil).body) {
					if p.ID == "prd_mouse" {
						return p.PriceCents == 3000
					}
				}
				return false
			})

			// Negative caching: B remembers "no such product" even once
			// the row exists behind its back, until a write says otherwise.
			if p := priceOn(t, b, "prd_ghost"); p != -404 {
				t.Fatalf("prd_ghost: %d; want 404", p)
			}
			if _, err := stA.DB.Exec(`INSERT INTO products (id, name, price_cents, stock, created_at) VALUES ('prd_ghost', 'Ghost', 100, 0, $1)`, now()); err != nil {
				t.Fatal(err)
			}
			if withRedis {
				if p := priceOn(t, b, "prd_ghost"); p != -404 {
					t.Errorf("prd_ghost after a write behind the cache: %d; want the cached 404", p)
				}
			}
			got = do(t, "PATCH", a+"/products/prd_ghost", `{"stock":3}`, nil)
			check{status: 200}.verify(t, got.status, got.body)
			await(t, within, "B serving the product it had cached as missing", func() bool { return priceOn(t, b, "prd_ghost") == 100 })

			for _, tc := range []struct {
				name, path, body string
				want             check
			}{
				{"nothing to change", "/products/prd_mouse", `{}`, check{400, "", "price_cents, stock or both"}},
				{"negative stock", "/products/prd_mouse", `{"stock":-1}`, check{400, "stock", "0 or more"}},
				{"zero price", "/products/prd_mouse", `{"price_cents":0}`, check{400, "price_cents", "from 1"}},
				{"unknown field", "/products/prd_mouse", `{"name":"x"}`, check{400, "name", "unknown field"}},
				{"unknown product", "/products/prd_none", `{"stock":1}`, check{404, "", "no product"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := do(t, "PATCH", a+tc.path, tc.body, nil)
					tc.want.verify(t, got.status, got.body)
				})
			}
		})
	}
}

// N concurrent orders for a product with M < N in stock: exactly M are
// placed, the others are 409s that say so, and the stock ends at 0.
func TestNoOversell(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		s := startShop(t, cfg)
		const stock, orders = 5, 20
		got := do(t, "PATCH", s.gateway.URL+"/api/products/prd_monitor", fmt.Sprintf(`{"stock":%d}`, stock), nil)
		check{status: 200}.verify(t, got.status, got.body)

		statuses := make([]int, orders)
		bodies := make([][]byte, orders)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range orders {
			wg.Go(func() {
				<-start
				req, _ := http.NewRequest("POST", s.gateway.URL+"/api/orders",
					strings.NewReader(`{"user_id":"usr_bob","items":[{"product_id":"prd_cable","quantity":1},{"product_id":"prd_monitor","quantity":1}]}`))
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("order %d: %v", i, err)
					return
				}
				defer res.Body.Close()
				statuses[i] = res.StatusCode
				bodies[i], err = io.ReadAll(res.Body)
				if err != nil {
					t.Errorf("order %d: reading the answer: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		placed := 0
		for i, st := range statuses {
			switch st {
			case http.StatusCreated:
				placed++
			case http.StatusConflict:
				check{409, "items[1].quantity", "in stock"}.verify(t, st, bodies[i])
			default:
				t.Errorf("order %d: %d %s; want 201 or 409", i, st, bodies[i])
			}
		}
		if placed != stock {
			t.Errorf("%d orders placed for %d in stock; want exactly %d", placed, stock, stock)
		}
		left := decode[product](t, do(t, "GET", s.gateway.URL+"/api/products/prd_monitor", "", nil).body)
		if left.Stock != 0 {
			t.Errorf("monitor stock %d after the rush; want 0", left.Stock)
		}
		// The cable of the refused orders was given back with the monitor
		// it came with (all or nothing).
		cable := decode[product](t, do(t, "GET", s.gateway.URL+"/api/products/prd_cable", "", nil).body)
		if cable.Stock != 1000-stock {
			t.Errorf("cable stock %d; want %d (one per placed order)", cable.Stock, 1000-stock)
		}
		if n := count(t, s.stores["orders"], "orders", ""); n != stock {
			t.Errorf("%d orders stored; want %d", n, stock)
		}
		if n := count(t, s.stores["payments"], "payments", ""); n != stock {
			t.Errorf("%d payments taken; want %d", n, stock)
		}
	})
}

// An order that is not placed gives its stock back: a declined payment,
// payments being down.
func TestRefusedOrderReleasesStock(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		s := startShop(t, cfg)
		stockOf := func(id string) int64 {
			return decode[product](t, do(t, "GET", s.gateway.URL+"/api/products/"+id, "", nil).body).Stock
		}
		// 18 monitors: over payments' card limit.
		got := do(t, "POST", s.gateway.URL+"/api/orders", `{"user_id":"usr_bob","items":[{"product_id":"prd_monitor","quantity":18}]}`, nil)
		check{402, "", "declined"}.verify(t, got.status, got.body)
		await(t, 2*time.Second, "the monitors given back", func() bool { return stockOf("prd_monitor") == 40 })
		if n := count(t, s.stores["products"], "reservations", "status = 'released'"); n != 1 {
			t.Errorf("%d released reservations; want 1", n)
		}

		s.servers["payments"].Close()
		got = do(t, "POST", s.gateway.URL+"/api/orders", `{"user_id":"usr_bob","items":[{"product_id":"prd_mouse","quantity":2}]}`, nil)
		check{503, "", "payments is unavailable"}.verify(t, got.status, got.body)
		await(t, 2*time.Second, "the mice given back", func() bool { return stockOf("prd_mouse") == 250 })

		got = do(t, "POST", s.gateway.URL+"/api/orders", `{"user_id":"usr_bob","items":[{"product_id":"prd_mouse","quantity":251}]}`, nil)
		check{409, "items[0].quantity", "only 250 of product prd_mouse in stock"}.verify(t, got.status, got.body)
	})
}

// Reserving is idempotent on the order id: a repeat takes nothing more;
// the same id with other items is refused; a release gives back once.
func TestReservationIdempotent(t *testing.T) {
	srv := serve(t, "products", open(t, "products", storeConfig{DataDir: t.TempDir()}), nil).URL
	stock := func() int64 { return decode[product](t, do(t, "GET", srv+"/products/prd_mouse", "", nil).body).Stock }
	body := `{"order_id":"ord_1","items":[{"product_id":"prd_mouse","quantity":3},{"product_id":"prd_mouse","quantity":2}]}`
	got := do(t, "POST", srv+"/products/reservations", body, nil)
	check{status: 201}.verify(t, got.status, got.body)
	rv := decode[reservation](t, got.body)
	if len(rv.Items) != 2 || rv.Items[0].PriceCents != 2499 || rv.Items[1].Quantity != 2 {
		t.Errorf("reservation %+v; want both items priced 2499", rv)
	}
	got = do(t, "POST", srv+"/products/reservations", body, nil)
	check{status: 200}.verify(t, got.status, got.body)
	if n := stock(); n != 245 {
		t.Errorf("stock %d after the reservation and its repeat; want 245", n)
	}
	got = do(t, "POST", srv+"/products/reservations", `{"order_id":"ord_1","items":[{"product_id":"prd_mouse","quantity":9}]}`, nil)
	check{409, "order_id", "other items"}.verify(t, got.status, got.body)
	for range 2 {
		got = do(t, "POST", srv+"/products/reservations/ord_1/release", "", nil)
		check{status: 200}.verify(t, got.status, got.body)
	}
	if n := stock(); n != 250 {
		t.Errorf("stock %d after releasing twice; want 250", n)
	}
	// A released reservation taken again (the order retried) takes the stock anew.
	got = do(t, "POST", srv+"/products/reservations", body, nil)
	check{status: 201}.verify(t, got.status, got.body)
	if n := stock(); n != 245 {
		t.Errorf("stock %d after reserving again; want 245", n)
	}
	got = do(t, "POST", srv+"/products/reservations/ord_none/release", "", nil)
	check{404, "", "no reservation"}.verify(t, got.status, got.body)
}
