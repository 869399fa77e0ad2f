package main

import (
	"testing"
)

func TestPayments(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		st := open(t, "payments", cfg)
		srv := serve(t, "payments", st, nil)

		pay := func(body string, want check) payment {
			t.Helper()
			status, out := call(t, "POST", srv.URL+"/payments", body)
			want.verify(t, status, out)
			if status >= 300 {
				return payment{}
			}
			return decode[payment](t, out)
		}
		first := pay(`{"order_id":"ord_1","user_id":"usr_alice","amount_cents":12345}`, check{status: 201})
		if first.Status != "captured" || first.AmountCents != 12345 || first.OrderID != "ord_1" || len(first.ID) != 20 {
			t.Errorf("payment %+v", first)
		}
		// The same order again, as after a lost answer: the same payment, 200.
		if again := pay(`{"order_id":"ord_1","user_id":"usr_alice","amount_cents":12345}`, check{status: 200}); again != first {
			t.Errorf("repeated payment %+v, want %+v", again, first)
		}
		pay(`{"order_id":"ord_1","user_id":"usr_alice","amount_cents":999}`, check{409, "order_id", "already paid"})
		if n := count(t, st, "payments", "order_id = $1", "ord_1"); n != 1 {
			t.Errorf("%d payments for ord_1, want 1", n)
		}

		pay(`{"order_id":"ord_2","user_id":"usr_bob","amount_cents":500001}`, check{402, "amount_cents", "declined: 500001 cents is over the card limit"})
		if n := count(t, st, "payments", "order_id = $1", "ord_2"); n != 0 {
			t.Errorf("a declined payment was stored")
		}
		pay(`{"order_id":"ord_3","user_id":"usr_bob","amount_cents":500000}`, check{status: 201})

		for _, tc := range []struct{ name, body, field string }{
			{"no order", `{"user_id":"usr_bob","amount_cents":1}`, "order_id"},
			{"bad order id", `{"order_id":"a/b","user_id":"usr_bob","amount_cents":1}`, "order_id"},
			{"no user", `{"order_id":"ord_4","amount_cents":1}`, "user_id"},
			{"zero amount", `{"order_id":"ord_4","user_id":"usr_bob","amount_cents":0}`, "amount_cents"},
			{"negative amount", `{"order_id":"ord_4","user_id":"usr_bob","amount_cents":-1}`, "amount_cents"},
		} {
			t.Run(tc.name, func(t *testing.T) { pay(tc.body, check{status: 400, field: tc.field}) })
		}

		status, out := call(t, "GET", srv.URL+"/payments/"+first.ID, "")
		check{status: 200}.verify(t, status, out)
		if got := decode[payment](t, out); got != first {
			t.Errorf("GET %+v, want %+v", got, first)
		}
		status, out = call(t, "GET", srv.URL+"/payments/pay_nothing", "")
		check{404, "", "no payment"}.verify(t, status, out)

		// Refunds are idempotent too.
		var refunded payment
		for range 2 {
			status, out = call(t, "POST", srv.URL+"/payments/"+first.ID+"/refund", "")
			check{status: 200}.verify(t, status, out)
			got := decode[payment](t, out)
			if got.Status != "refunded" || got.RefundedAt == "" || (refunded.ID != "" && got != refunded) {
				t.Errorf("refund answered %+v (before: %+v)", got, refunded)
			}
			refunded = got
		}
		status, out = call(t, "POST", srv.URL+"/payments/pay_nothing/refund", "")
		check{404, "", "no payment"}.verify(t, status, out)
	})
}
