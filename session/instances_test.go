package session

import (
	"context"
	"net/http/httptest"
	"testing"
)

// TestInstancesShareSessions: two app instances (two Managers, two store
// clients, two servers) behind the same store: a login on one is seen by
// the other, a cart changed on each keeps both changes, a logout on one
// ends the session on both.
func TestInstancesShareSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() Store) {
		clk := newClock()
		a := httptest.NewServer(newManager(open(), clk).LoadAndSave(shopHandler()))
		defer a.Close()
		b := httptest.NewServer(newManager(open(), clk).LoadAndSave(shopHandler()))
		defer b.Close()
		ca, cb := tclient{t, a}, tclient{t, b}

		_, _, ck, _ := ca.get("/put?v=socks", "")
		_, _, ck, _ = ca.get("/login?user=dana", ck.Value)
		tok := ck.Value
		if _, body, _, _ := cb.get("/get", tok); body != "socks" {
			t.Fatalf("instance B after a login on A: got %q; want socks", body)
		}
		cb.get("/put?v=shoes", tok)
		if _, body, _, _ := ca.get("/get", tok); body != "shoes" {
			t.Fatalf("instance A after a change on B: got %q; want shoes", body)
		}
		_, _, ck, _ = cb.get("/logout", tok)
		if ck == nil || ck.MaxAge != -1 {
			t.Fatalf("logout on B: got cookie %v; want it deleted", ck)
		}
		if _, body, _, _ := ca.get("/get", tok); body != "" {
			t.Fatalf("instance A after a logout on B: got %q; want nothing", body)
		}
	})
}

// BenchmarkLoadCommit: one request's store work on each store: a load,
// and a commit that writes one key (the touch being within its interval).
func BenchmarkLoadCommit(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			m := &Manager{Store: be.open(b)()}
			ctx := context.Background()
			s, _ := m.Load(ctx, "")
			s.SetBytes("cart", []byte(`["socks"]`))
			tok, err := m.Commit(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				s, err := m.Load(ctx, tok)
				if err != nil || s.IsNew() {
					b.Fatal("session lost:", err)
				}
				s.SetBytes("n", []byte{byte(i)})
				if _, err := m.Commit(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
