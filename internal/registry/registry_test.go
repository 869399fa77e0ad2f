package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/health"
	"github.com/herdhq/herd/internal/testenv"
)

func TestRegisterValidates(t *testing.T) {
	local := balance.NewPool("users", 1, time.Second)
	r := New(Options{Local: func() (map[string]*balance.Pool, map[string]*balance.Pool) {
		return map[string]*balance.Pool{"users": local}, nil
	}})
	tests := []struct {
		name string
		in   Instance
		ttl  time.Duration
		want error
		msg  string
	}{
		{"ok", Instance{Service: "billing", URL: "http://127.0.0.1:9000"}, 0, nil, ""},
		{"trailing slash is fine", Instance{Service: "billing", URL: "http://127.0.0.1:9001/"}, time.Minute, nil, ""},
		{"upper case name", Instance{Service: "Billing", URL: "http://127.0.0.1:9000"}, 0, ErrInvalid, "name"},
		{"empty name", Instance{URL: "http://127.0.0.1:9000"}, 0, ErrInvalid, "name"},
		{"a path", Instance{Service: "billing", URL: "http://127.0.0.1:9000/api"}, 0, ErrInvalid, "url"},
		{"no port", Instance{Service: "billing", URL: "http://127.0.0.1"}, 0, ErrInvalid, "url"},
		{"https", Instance{Service: "billing", URL: "https://127.0.0.1:9000"}, 0, ErrInvalid, "url"},
		{"not a url", Instance{Service: "billing", URL: "127.0.0.1:9000"}, 0, ErrInvalid, "url"},
		{"ttl too short", Instance{Service: "billing", URL: "http://127.0.0.1:9000"}, 10 * time.Millisecond, ErrInvalid, "ttl"},
		{"health not a path", Instance{Service: "billing", URL: "http://127.0.0.1:9000", Health: "health"}, 0, ErrInvalid, "health"},
		{"bad id", Instance{Service: "billing", URL: "http://127.0.0.1:9000", ID: "a/b"}, 0, ErrInvalid, "id"},
		{"an app's name", Instance{Service: "users", URL: "http://127.0.0.1:9000"}, 0, ErrLocal, "users"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Register(context.Background(), tc.in, tc.ttl)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v; want it to mention %s", err, tc.msg)
			}
			if err == nil && (got.ID == "" || !got.Expires.After(time.Now()) || strings.HasSuffix(got.URL, "/")) {
				t.Errorf("stored %+v; want an id, a future expiry and a URL without /", got)
			}
		})
	}
	if got := r.Names(); len(got) != 1 || got[0] != "billing" {
		t.Errorf("names = %v; want [billing]", got)
	}
}

func TestRegistrationsExpireAndHeartbeat(t *testing.T) {
	r := New(Options{})
	ctx := context.Background()
	a, err := r.Register(ctx, Instance{Service: "billing", URL: "http://127.0.0.1:9000"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Register(ctx, Instance{Service: "billing", URL: "http://127.0.0.1:9001"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pool := r.Pool("billing")
	if n := len(pool.Backends()); n != 2 {
		t.Fatalf("%d instances; want 2", n)
	}
	// Registering a URL again is a heartbeat: the same id, no new instance.
	time.Sleep(600 * time.Millisecond)
	again, err := r.Register(ctx, Instance{Service: "billing", URL: "http://127.0.0.1:9000"}, time.Second)
	if err != nil || again.ID != a.ID {
		t.Fatalf("heartbeat = %+v, %v; want id %s", again, err, a.ID)
	}
	time.Sleep(600 * time.Millisecond)
	r.Sync(ctx)
	if r.Pool("billing") != pool {
		t.Fatal("the pool was replaced while the service stayed registered")
	}
	if bs := pool.Backends(); len(bs) != 1 || bs[0].Addr != "127.0.0.1:9000" {
		t.Fatalf("after %s expired: %v; want only 127.0.0.1:9000", b.ID, bs)
	}
	if err := r.Deregister(ctx, "billing", a.ID); err != nil {
		t.Fatal(err)
	}
	if r.Pool("billing") != nil || len(r.Names()) != 0 {
		t.Errorf("after deregistering the last instance the service is still there: %v", r.Names())
	}
	if err := r.Deregister(ctx, "billing", a.ID); !errors.Is(err, ErrUnknown) {
		t.Errorf("deregistering twice = %v; want ErrUnknown", err)
	}
}

func TestRegisteredServicesAreHealthChecked(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ping" {
			t.Errorf("probed %s; want the registration's /ping", r.URL.Path)
		}
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	r := New(Options{Check: health.Check{Interval: 20 * time.Millisecond, Fails: 2, Passes: 2}, Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the registry to run", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.runCtx != nil })

	if _, err := r.Register(ctx, Instance{Service: "billing", URL: srv.URL, Health: "/ping"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	status := func() InstanceStatus { return r.Status()[0].Instances[0] }
	waitFor(t, "a first probe", func() bool { return !status().LastCheck.IsZero() })
	if !status().Healthy {
		t.Fatal("a passing instance is unhealthy")
	}
	failing.Store(true)
	waitFor(t, "the failing instance to leave service", func() bool { return !status().Healthy })
	if r.Status()[0].Healthy != 0 {
		t.Errorf("service status counts %d healthy; want 0", r.Status()[0].Healthy)
	}
	failing.Store(false)
	waitFor(t, "the instance to pass again", func() bool { return status().Healthy })
}

// TestRedisSharesServicesBetweenNodes runs two registries as two herd
// nodes on one real Redis: each sees the other's apps and registrations,
// not its own, and a node that stops withdraws its apps at once.
func TestRedisSharesServicesBetweenNodes(t *testing.T) {
	url := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := "herdtest:" + randomHex() + ":"

	node := func(name string, apps map[string]*balance.Pool) (*Registry, context.CancelFunc, chan struct{}) {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		store := NewRedisStore(redis.NewClient(opts), prefix)
		t.Cleanup(func() { store.Close() })
		r := New(Options{Store: store, Node: name, Poll: 100 * time.Millisecond,
			Local: func() (map[string]*balance.Pool, map[string]*balance.Pool) { return apps, nil }})
		nodeCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { r.Run(nodeCtx); close(done) }()
		return r, stop, done
	}
	users := balance.NewPool("users", 1, time.Second)
	users.Add(&balance.Backend{Addr: "127.0.0.1:41001", App: "users", Index: 0, ID: "users/0"})
	orders := balance.NewPool("orders", 1, time.Second)
	orders.Add(&balance.Backend{Addr: "127.0.0.1:42001", App: "orders", Index: 0, ID: "orders/0"})
	a, stopA, doneA := node("a", map[string]*balance.Pool{"users": users})
	b, stopB, doneB := node("b", map[string]*balance.Pool{"orders": orders})
	defer func() { stopB(); <-doneB }()

	waitFor(t, "b to see a's users", func() bool { return b.Pool("users") != nil })
	waitFor(t, "a to see b's orders", func() bool { return a.Pool("orders") != nil })
	if got := b.Pool("users").Backends(); len(got) != 1 || got[0].Addr != "127.0.0.1:41001" {
		t.Errorf("b's users = %v; want 127.0.0.1:41001", got)
	}
	if a.Pool("users") != nil || b.Pool("orders") != nil {
		t.Error("a node lists its own app as a registered service")
	}

	// A registration on one node is seen by the other within a second.
	start := time.Now()
	if _, err := a.Register(ctx, Instance{Service: "billing", URL: "http://127.0.0.1:43001"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see billing", func() bool { return b.Pool("billing") != nil })
	// Announced at once, or read at the next poll (100 ms here); the bound
	// leaves room for a loaded test machine.
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("b saw the registration after %s; want about a poll at most", took)
	}
	st := b.Status()
	if len(st) != 2 || st[0].Name != "billing" || st[1].Name != "users" || st[1].Instances[0].Node != "a" {
		t.Errorf("b's status = %+v; want billing and users (node a)", st)
	}

	// An instance that leaves a's pool leaves b's view; a's stop withdraws the rest.
	users.Add(&balance.Backend{Addr: "127.0.0.1:41002", App: "users", Index: 1, ID: "users/1"})
	waitFor(t, "b to see the second users instance", func() bool { return len(b.Pool("users").Backends()) == 2 })
	users.Remove(users.Backends()[0])
	waitFor(t, "b to drop the removed instance", func() bool { return len(b.Pool("users").Backends()) == 1 })
	stopA()
	<-doneA
	waitFor(t, "b to forget a's users", func() bool { return b.Pool("users") == nil })
	if b.Pool("billing") == nil {
		t.Error("the registration of billing went with the node that took it; it should live to its TTL")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// flakyStore is a memory store whose List fails while down is set.
type flakyStore struct {
	Store
	down atomic.Bool
}

func (s *flakyStore) List(ctx context.Context) ([]Instance, error) {
	if s.down.Load() {
		return nil, errors.New("connection refused")
	}
	return s.Store.List(ctx)
}

// TestStoreOutageLoggedOnce: while the store is down the registry keeps
// what it knew and says so once, not at every poll.
func TestStoreOutageLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	store := &flakyStore{Store: NewMemoryStore()}
	r := New(Options{Store: store, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	if _, err := r.Register(ctx, Instance{Service: "billing", URL: "http://127.0.0.1:9000"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	store.down.Store(true)
	for range 5 {
		r.Sync(ctx)
	}
	if r.Pool("billing") == nil {
		t.Error("a store outage made the registry forget billing")
	}
	store.down.Store(false)
	r.Sync(ctx)
	if n := strings.Count(logs.String(), "keeping what was known"); n != 1 {
		t.Errorf("the outage was logged %d times; want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "answers again") {
		t.Errorf("the recovery was not logged:\n%s", logs.String())
	}
}
