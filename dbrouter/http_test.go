package dbrouter

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/herdhq/herd/svcclient"
)

// TestTokenAcrossServices: a front service calls orders (which writes)
// then users (which reads) with svcclient under its request's context;
// with replay paused, users' read sees the write, because the token came
// back from orders and went on to users. A read not given the token is
// stale, so the test can tell.
func TestTokenAcrossServices(t *testing.T) {
	e := newEnv(t, true, nil)
	e.pauseReplay(t)
	defer e.resumeReplay(t)

	orders := httptest.NewServer(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := e.r.Exec(r.Context(), "insert into items values (21, 'order')"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})))
	defer orders.Close()
	users := httptest.NewServer(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := e.r.Read().QueryRow(r.Context(), "select count(*) from items where id = 21").Scan(&n); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]int{"orders": n})
	})))
	defer users.Close()
	peers := svcclient.New(static{"orders": orders.URL, "users": users.URL}, svcclient.WithTimeout(10*time.Second))
	front := httptest.NewServer(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := peers.Post(r.Context(), "orders", "/", map[string]int{"id": 21}, nil); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		var got map[string]int
		if err := peers.Get(r.Context(), "users", "/", &got); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_ = json.NewEncoder(w).Encode(got)
	})))
	defer front.Close()

	resp, err := http.Post(front.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got["orders"] != 1 {
		t.Fatalf("front: %d %v; want 200 and the order seen by users", resp.StatusCode, got)
	}
	tok, err := ParseToken(resp.Header.Get(TokenHeader))
	if err != nil || tok.LSN(e.r.Cluster()) == 0 {
		t.Fatalf("front's answer %s = %q (%v); want the write's token", TokenHeader, resp.Header.Get(TokenHeader), err)
	}

	// Straight to users, without the token: the replica's stale answer.
	var stale map[string]int
	if err := peers.Get(context.Background(), "users", "/", &stale); err != nil {
		t.Fatal(err)
	}
	if stale["orders"] != 0 {
		t.Fatalf("users without the token saw %d orders; want 0 (the paused replica)", stale["orders"])
	}
	// With the token the client got back: fresh.
	var fresh map[string]int
	if err := peers.Get(WithToken(context.Background(), tok), "users", "/", &fresh); err != nil {
		t.Fatal(err)
	}
	if fresh["orders"] != 1 {
		t.Fatalf("users with the token saw %d orders; want 1", fresh["orders"])
	}
}

// TestMiddlewareBadToken: an invalid header is ignored, and an answer
// with nothing written carries no token.
func TestMiddlewareBadToken(t *testing.T) {
	var seen Token
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = TokenFrom(r.Context())
		w.WriteHeader(204)
	}))
	for _, tc := range []struct{ name, header, want string }{
		{"none", "", ""},
		{"bad", "not a token", ""},
		{"good", "5:0/10", "5:0/10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				req.Header.Set(TokenHeader, tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if seen.String() != tc.want || rec.Header().Get(TokenHeader) != tc.want {
				t.Fatalf("handler saw %q, answer has %q; want %q", seen, rec.Header().Get(TokenHeader), tc.want)
			}
		})
	}
}

// static resolves services to fixed base URLs.
type static map[string]string

func (s static) Resolve(_ context.Context, service string) (string, error) { return s[service], nil }
