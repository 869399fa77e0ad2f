package svcclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// admin serves a /services list and counts the reads of it.
type admin struct {
	srv   *httptest.Server
	reads atomic.Int32
	body  atomic.Value // string
}

func newAdmin(t *testing.T, body string) *admin {
	t.Helper()
	a := &admin{}
	a.body.Store(body)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/services" {
			http.NotFound(w, r)
			return
		}
		a.reads.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(a.body.Load().(string)))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

const servicesJSON = `{"services": [
  {"name": "users", "kind": "app", "healthy": 2,
   "instances": [{"id": "0", "url": "http://127.0.0.1:41001", "healthy": true, "state": "ready"},
                 {"id": "1", "url": "http://127.0.0.1:41002", "healthy": false, "state": "backoff"},
                 {"id": "2", "url": "http://127.0.0.1:41003/", "healthy": true, "state": "ready"}]},
  {"name": "payments", "kind": "registered", "healthy": 0,
   "instances": [{"id": "a", "url": "http://10.0.0.9:80", "healthy": false}]},
  {"name": "empty", "kind": "upstream", "healthy": 0, "instances": []}
]}`

func TestRegistryResolve(t *testing.T) {
	a := newAdmin(t, servicesJSON)
	r := Registry(a.srv.URL+"/", time.Hour)
	ctx := context.Background()

	// Round robin over the healthy instances only.
	count := map[string]int{}
	var order []string
	for range 6 {
		u, err := r.Resolve(ctx, "users")
		if err != nil {
			t.Fatal(err)
		}
		count[u]++
		order = append(order, u)
	}
	want := map[string]int{"http://127.0.0.1:41001": 3, "http://127.0.0.1:41003": 3}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("resolved %v, want %v", count, want)
	}
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1] {
			t.Errorf("resolved %v: the same instance twice in a row", order)
		}
	}

	tests := []struct {
		service string
		status  int
		reason  string
	}{
		{"nope", 404, `herd has no service "nope"`},
		{"payments", 503, `no healthy instance of "payments" (1 registered)`},
		{"empty", 503, `no healthy instance of "empty" (0 registered)`},
	}
	for _, tt := range tests {
		_, err := r.Resolve(ctx, tt.service)
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Status != tt.status || e.Service != tt.service || e.Reason != tt.reason {
			t.Errorf("Resolve(%q) = %v, want %d %s", tt.service, err, tt.status, tt.reason)
		}
	}
	if n := a.reads.Load(); n != 1 {
		t.Errorf("the list was read %d times, want 1", n)
	}
}

func TestRegistryRefresh(t *testing.T) {
	a := newAdmin(t, servicesJSON)
	r := Registry(a.srv.URL, 20*time.Millisecond)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	// A new list replaces the old after refresh.
	a.body.Store(`{"services":[{"name":"users","instances":[{"url":"http://new:1","healthy":true}]}]}`)
	time.Sleep(100 * time.Millisecond)
	u, err := r.Resolve(ctx, "users")
	if err != nil || u != "http://new:1" {
		t.Errorf("Resolve = %q, %v; want the new instance", u, err)
	}
	if n := a.reads.Load(); n != 2 {
		t.Errorf("the list was read %d times, want 2", n)
	}

	// With herd's admin listener gone, the last list stays in use.
	a.srv.Close()
	time.Sleep(100 * time.Millisecond)
	u, err = r.Resolve(ctx, "users")
	if err != nil || u != "http://new:1" {
		t.Errorf("Resolve = %q, %v; want the last list's instance", u, err)
	}
}

func TestRegistryUnreachable(t *testing.T) {
	a := newAdmin(t, servicesJSON)
	a.srv.Close()
	_, err := Registry(a.srv.URL, time.Hour).Resolve(context.Background(), "users")
	if err == nil || StatusOf(err) != 0 || !strings.Contains(err.Error(), "reading the service list") {
		t.Errorf("err = %v, want a failed read with no status", err)
	}

	// An answer other than 200 is the admin listener's, not the service's.
	a = newAdmin(t, servicesJSON)
	_, err = Registry(a.srv.URL+"/wrong", time.Hour).Resolve(context.Background(), "users")
	if err == nil || StatusOf(err) != 0 || !strings.Contains(err.Error(), "404") {
		t.Errorf("err = %v, want a failed read with no status", err)
	}

	a.body.Store(`not json`)
	_, err = Registry(a.srv.URL, time.Hour).Resolve(context.Background(), "users")
	if err == nil || !strings.Contains(err.Error(), "decoding") {
		t.Errorf("err = %v, want a decoding failure", err)
	}
}

func TestRegistryConcurrentFirstRead(t *testing.T) {
	a := newAdmin(t, servicesJSON)
	r := Registry(a.srv.URL, time.Hour)
	errs := make(chan error, 32)
	for range 32 {
		go func() {
			_, err := r.Resolve(context.Background(), "users")
			errs <- err
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := a.reads.Load(); n != 1 {
		t.Errorf("the list was read %d times, want 1", n)
	}
}

// TestRegistryClient calls real instances found in the registry.
func TestRegistryClient(t *testing.T) {
	var hits [3]atomic.Int32
	var urls [3]string
	for i := range hits {
		srv := httptest.NewServer(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			writeJSON(w, 200, map[string]int{"instance": i})
		})))
		t.Cleanup(srv.Close)
		urls[i] = srv.URL
	}
	a := newAdmin(t, fmt.Sprintf(`{"services":[{"name":"users","instances":[
		{"url":%q,"healthy":true},{"url":%q,"healthy":false},{"url":%q,"healthy":true}]}]}`, urls[0], urls[1], urls[2]))
	c := New(Registry(a.srv.URL, time.Hour), fast()...)
	for range 4 {
		if err := c.Get(context.Background(), "users", "/me", nil); err != nil {
			t.Fatal(err)
		}
	}
	if hits[0].Load() != 2 || hits[1].Load() != 0 || hits[2].Load() != 2 {
		t.Errorf("instances were called %d, %d and %d times, want 2, 0, 2", hits[0].Load(), hits[1].Load(), hits[2].Load())
	}

	// Resolve failures are the call's, and not retried.
	err := c.Get(context.Background(), "nope", "/", nil)
	if StatusOf(err) != 404 || !strings.HasPrefix(err.Error(), "svcclient: GET nope /: resolving nope: ") {
		t.Errorf("err = %v, want a 404", err)
	}
}

// TestRegistryRetryMovesOn shows a retry going to the next instance.
func TestRegistryRetryMovesOn(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{})
	}))
	t.Cleanup(up.Close)
	a := newAdmin(t, fmt.Sprintf(`{"services":[{"name":"users","instances":[
		{"url":%q,"healthy":true},{"url":%q,"healthy":true}]}]}`, down.URL, up.URL))
	c := New(Registry(a.srv.URL, time.Hour), fast(WithRetries(2))...)
	for range 4 {
		if err := c.Get(context.Background(), "users", "/", nil); err != nil {
			t.Error(err)
		}
	}
}
