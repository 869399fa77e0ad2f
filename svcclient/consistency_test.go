package svcclient

import (
	"context"
	"net/http"
	"testing"

	"github.com/herdhq/herd/dbrouter/consistency"
)

// TestConsistencyToken: the call's token goes out in the header, and the
// one the answer brings back joins the caller's context.
func TestConsistencyToken(t *testing.T) {
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set(consistency.Header, "1:0/20,2:0/5")
		}
		writeJSON(w, 200, map[string]string{})
	})
	c := New(Gateway(srv.URL), fast()...)

	ctx := consistency.WithToken(context.Background(), consistency.NewToken(1, 0x10))
	if err := c.Get(ctx, "orders", "/", nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.req(0); r.Header.Get(consistency.Header) != "1:0/10" {
		t.Fatalf("sent %s: %q; want 1:0/10", consistency.Header, r.Header.Get(consistency.Header))
	}
	if got := consistency.TokenFrom(ctx).String(); got != "1:0/20,2:0/5" {
		t.Fatalf("token after the answer = %q; want 1:0/20,2:0/5", got)
	}
	// The next call carries what the first one's service wrote.
	if err := c.Get(ctx, "users", "/", nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.req(1); r.Header.Get(consistency.Header) != "1:0/20,2:0/5" {
		t.Fatalf("second call sent %q; want 1:0/20,2:0/5", r.Header.Get(consistency.Header))
	}
	// Without a token, no header.
	if err := c.Get(context.Background(), "users", "/", nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.req(2); r.Header.Get(consistency.Header) != "" {
		t.Fatalf("call without a token sent %q; want none", r.Header.Get(consistency.Header))
	}
}
