package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/herdhq/herd/svcclient"
)

func TestOrderPlaced(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		s := startShop(t, cfg)
		status, body := s.api(t, "POST", "/api/orders",
			`{"user_id":"usr_alice","items":[{"product_id":"prd_keyboard","quantity":2},{"product_id":"prd_cable","quantity":3},{"product_id":"prd_keyboard","quantity":1}]}`)
		check{status: 201}.verify(t, status, body)
		o := decode[order](t, body)
		want := []orderItem{{"prd_keyboard", 2, 4999}, {"prd_cable", 3, 999}, {"prd_keyboard", 1, 4999}}
		if fmt.Sprint(o.Items) != fmt.Sprint(want) {
			t.Errorf("items %+v, want %+v", o.Items, want)
		}
		if o.TotalCents != 4999*2+999*3+4999 || o.Status != "paid" || o.UserID != "usr_alice" ||
			!strings.HasPrefix(o.ID, "ord_") || o.CreatedAt == "" {
			t.Errorf("order %+v", o)
		}

		status, body = s.api(t, "GET", "/api/payments/"+o.PaymentID, "")
		check{status: 200}.verify(t, status, body)
		if p := decode[payment](t, body); p.OrderID != o.ID || p.AmountCents != o.TotalCents || p.Status != "captured" || p.UserID != "usr_alice" {
			t.Errorf("payment %+v for order %+v", p, o)
		}

		status, body = s.api(t, "GET", "/api/orders/"+o.ID, "")
		check{status: 200}.verify(t, status, body)
		if got := decode[order](t, body); fmt.Sprint(got) != fmt.Sprint(o) {
			t.Errorf("GET %+v, POST %+v", got, o)
		}
		status, body = s.api(t, "GET", "/api/orders?user_id=usr_alice", "")
		check{status: 200}.verify(t, status, body)
		if list := decode[[]order](t, body); len(list) != 1 || fmt.Sprint(list[0]) != fmt.Sprint(o) {
			t.Errorf("alice's orders %+v, want [%+v]", list, o)
		}
		status, body = s.api(t, "GET", "/api/orders?user_id=usr_bob", "")
		check{status: 200}.verify(t, status, body)
		if list := decode[[]order](t, body); len(list) != 0 {
			t.Errorf("bob's orders %+v, want none", list)
		}
		// Called directly rather than through the gateway.
		status, body = call(t, "GET", s.servers["orders"].URL+"/orders/"+o.ID, "")
		check{status: 200}.verify(t, status, body)
	})
}

func TestOrderRefused(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		s := startShop(t, cfg)
		item := `{"product_id":"prd_mouse","quantity":1}`
		items101 := strings.TrimSuffix(strings.Repeat(item+",", 101), ",")
		tests := []struct {
			name, body string
			want       check
		}{
			{"no user", `{"items":[` + item + `]}`, check{400, "user_id", "user's id"}},
			{"unknown user", `{"user_id":"usr_nobody","items":[` + item + `]}`, check{400, "user_id", `no user "usr_nobody"`}},
			{"no items", `{"user_id":"usr_bob","items":[]}`, check{400, "items", "1 to 100"}},
			{"101 items", `{"user_id":"usr_bob","items":[` + items101 + `]}`, check{400, "items", "1 to 100"}},
			{"zero quantity", `{"user_id":"usr_bob","items":[` + item + `,{"product_id":"prd_mouse","quantity":0}]}`, check{400, "items[1].quantity", "from 1 to 1000"}},
			{"quantity over 1000", `{"user_id":"usr_bob","items":[{"product_id":"prd_mouse","quantity":1001}]}`, check{400, "items[0].quantity", "from 1 to 1000"}},
			{"no product id", `{"user_id":"usr_bob","items":[{"quantity":1}]}`, check{400, "items[0].product_id", "product's id"}},
			{"unknown product", `{"user_id":"usr_bob","items":[` + item + `,{"product_id":"prd_unicorn","quantity":1}]}`, check{400, "items[1].product_id", `no product "prd_unicorn"`}},
			{"unknown field", `{"user_id":"usr_bob","items":[` + item + `],"coupon":"FREE"}`, check{400, "coupon", "unknown field"}},
			// 18 monitors: 503982 cents, over payments' card limit.
			{"payment declined", `{"user_id":"usr_bob","items":[{"product_id":"prd_monitor","quantity":18}]}`, check{402, "", "declined: 503982 cents is over the card limit"}},
		}
		for _, tc := range tests {
			status, body := s.api(t, "POST", "/api/orders", tc.body)
			t.Run(tc.name, func(t *testing.T) { tc.want.verify(t, status, body) })
		}
		if n := count(t, s.stores["orders"], "orders", ""); n != 0 {
			t.Errorf("%d orders stored, want none", n)
		}
		if n := count(t, s.stores["payments"], "payments", ""); n != 0 {
			t.Errorf("%d payments taken, want none", n)
		}

		status, body := s.api(t, "GET", "/api/orders", "")
		check{400, "user_id", "required"}.verify(t, status, body)
		status, body = s.api(t, "GET", "/api/orders/ord_nothing", "")
		check{404, "", "no order"}.verify(t, status, body)
	})
}

func TestOrderWithPaymentsDown(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		s := startShop(t, cfg)
		s.servers["payments"].Close()
		// The gateway answers 502 for payments; after a few of those the
		// circuit breaker opens and orders fails fast, with the same answer.
		var body []byte
		for range 4 {
			var status int
			status, body = s.api(t, "POST", "/api/orders", `{"user_id":"usr_carol","items":[{"product_id":"prd_cable","quantity":1}]}`)
			check{503, "", "payments is unavailable"}.verify(t, status, body)
		}
		if e := decode[errorBody](t, body); !strings.Contains(e.Reason, svcclient.ErrCircuitOpen.Error()) {
			t.Errorf("the 4th order's reason %q does not say the circuit is open", e.Reason)
		}
		if n := count(t, s.stores["orders"], "orders", ""); n != 0 {
			t.Errorf("%d orders stored, want none", n)
		}
	})
}

// A service that cannot be reached at all (no gateway) is a 503 too.
func TestOrderWithGatewayUnreachable(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close() // connections to it are refused
		peers := svcclient.New(svcclient.Gateway("http://"+ln.Addr().String()+"/api"), svcclient.WithRetries(1))
		st := open(t, "orders", cfg)
		srv := serve(t, "orders", st, peers)
		status, body := call(t, "POST", srv.URL+"/orders", `{"user_id":"usr_carol","items":[{"product_id":"prd_cable","quantity":1}]}`)
		check{503, "", "users is unavailable"}.verify(t, status, body)
		if n := count(t, st, "orders", ""); n != 0 {
			t.Errorf("%d orders stored, want none", n)
		}
	})
}

// When the order cannot be stored after the payment was taken, the payment
// is refunded: the customer never pays for an order that does not exist.
func TestOrderStoreFailureRefunds(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		s := startShop(t, cfg)
		// Items can still be read but no longer stored: a column the
		// service does not fill must not be NULL.
		for _, q := range []string{"DROP TABLE order_items",
			`CREATE TABLE order_items (order_id TEXT, position BIGINT, product_id TEXT, quantity BIGINT, price_cents BIGINT, broken TEXT NOT NULL)`} {
			if _, err := s.stores["orders"].DB.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		status, body := s.api(t, "POST", "/api/orders", `{"user_id":"usr_carol","items":[{"product_id":"prd_cable","quantity":1}]}`)
		check{500, "", "was refunded"}.verify(t, status, body)
		if n := count(t, s.stores["orders"], "orders", ""); n != 0 {
			t.Errorf("%d orders stored, want none", n)
		}
		if n := count(t, s.stores["payments"], "payments", "status = $1", "refunded"); n != 1 {
			t.Errorf("%d refunded payments, want 1", n)
		}
	})
}

// When payments takes a payment but its answer is lost, orders cannot know
// whether it was taken: it refunds whatever the order paid, and stores no
// order.
func TestOrderLostPaymentAnswerRefunds(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		s := startShop(t, cfg)
		payments := s.servers["payments"]
		// Charges go through to payments; their answers become 503s.
		lossy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			to, _ := url.Parse(payments.URL)
			httputil.NewSingleHostReverseProxy(to).ServeHTTP(rec, r)
			if r.Method == "POST" && r.URL.Path == "/" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"error":"Service Unavailable","reason":"the answer was lost"}`)
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		}))
		t.Cleanup(lossy.Close)
		s.swap("payments", lossy)
		status, body := s.api(t, "POST", "/api/orders", `{"user_id":"usr_carol","items":[{"product_id":"prd_cable","quantity":1}]}`)
		check{503, "", "payments is unavailable"}.verify(t, status, body)
		if n := count(t, s.stores["orders"], "orders", ""); n != 0 {
			t.Errorf("%d orders stored, want none", n)
		}
		if all, refunded := count(t, s.stores["payments"], "payments", ""), count(t, s.stores["payments"], "payments", "status = $1", "refunded"); all != 1 || refunded != 1 {
			t.Errorf("%d payments, %d refunded; want the one taken, refunded", all, refunded)
		}
	})
}

// A POST /orders repeated with the same Idempotency-Key (a client that lost
// the answer) gets the same order back: one order, one payment.
func TestOrderIdempotencyKey(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		s := startShop(t, cfg)
		post := func(key string) (int, order) {
			req, _ := http.NewRequest("POST", s.gateway.URL+"/api/orders",
				strings.NewReader(`{"user_id":"usr_bob","items":[{"product_id":"prd_mouse","quantity":1}]}`))
			req.Header.Set("Idempotency-Key", key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			return res.StatusCode, decode[order](t, body)
		}
		code1, first := post("checkout-42")
		code2, again := post("checkout-42")
		if code1 != 201 || code2 != 200 || again.ID != first.ID || again.PaymentID != first.PaymentID {
			t.Errorf("same key twice: %d %+v then %d %+v; want 201 then 200 with the same order", code1, first, code2, again)
		}
		if code, other := post("checkout-43"); code != 201 || other.ID == first.ID {
			t.Errorf("another key: %d %+v; want a new order", code, other)
		}
		if n := count(t, s.stores["orders"], "orders", "user_id = $1", "usr_bob"); n != 2 {
			t.Errorf("%d orders stored for bob; want 2", n)
		}
		if n := count(t, s.stores["payments"], "payments", "user_id = $1", "usr_bob"); n != 2 {
			t.Errorf("%d payments taken from bob; want 2", n)
		}
	})
}
