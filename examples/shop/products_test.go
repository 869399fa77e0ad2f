package main

import (
	"strings"
	"testing"
)

func TestProducts(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		srv := serve(t, "products", open(t, "products", cfg), nil)
		tests := []struct {
			name, method, path, body string
			want                     check
		}{
			{"create", "POST", "/products", `{"name":"Desk lamp","price_cents":3499,"stock":7}`, check{status: 201}},
			{"create without stock", "POST", "/products", `{"name":"Sticker","price_cents":1}`, check{status: 201}},
			{"no name", "POST", "/products", `{"price_cents":100}`, check{400, "name", "required"}},
			{"long name", "POST", "/products", `{"name":"` + strings.Repeat("x", 101) + `","price_cents":100}`, check{400, "name", "at most 100"}},
			{"no price", "POST", "/products", `{"name":"Free"}`, check{400, "price_cents", "from 1"}},
			{"negative price", "POST", "/products", `{"name":"X","price_cents":-5}`, check{400, "price_cents", "from 1"}},
			{"fractional price", "POST", "/products", `{"name":"X","price_cents":12.5}`, check{400, "price_cents", "must be an integer"}},
			{"price in a string", "POST", "/products", `{"name":"X","price_cents":"12"}`, check{400, "price_cents", "must be an integer"}},
			{"price too high", "POST", "/products", `{"name":"X","price_cents":1000000001}`, check{400, "price_cents", "from 1"}},
			{"negative stock", "POST", "/products", `{"name":"X","price_cents":100,"stock":-1}`, check{400, "stock", "0 or more"}},
			{"unknown field", "POST", "/products", `{"name":"X","price":100}`, check{400, "price", "unknown field"}},
			{"get", "GET", "/products/prd_keyboard", ``, check{status: 200}},
			{"get unknown", "GET", "/products/prd_nothing", ``, check{404, "", "no product"}},
			{"list", "GET", "/products?limit=500", ``, check{status: 200}},
			{"limit over 500 is capped", "GET", "/products?limit=100000", ``, check{status: 200}},
		}
		for _, tc := range tests {
			status, body := call(t, tc.method, srv.URL+tc.path, tc.body)
			t.Run(tc.name, func(t *testing.T) { tc.want.verify(t, status, body) })
		}

		_, body := call(t, "GET", srv.URL+"/products/prd_keyboard", "")
		if p := decode[product](t, body); p.PriceCents != 4999 || p.Name == "" || p.Stock != 100 {
			t.Errorf("seeded keyboard: %+v", p)
		}
		_, body = call(t, "GET", srv.URL+"/products", "")
		list := decode[[]product](t, body)
		if len(list) != 6 || list[0].Name != "Sticker" || list[0].Stock != 0 || list[1].PriceCents != 3499 {
			t.Errorf("list %+v: want the 2 new products first, then the 4 seeded", list)
		}
	})
}
