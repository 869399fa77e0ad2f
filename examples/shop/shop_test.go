package main

// Helpers shared by the tests: every test runs against a real database,
// SQLite in a temporary folder and PostgreSQL when HERD_TEST_POSTGRES_URL
// names a server (each test gets a database of its own, dropped after it).

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/herdhq/herd/svcclient"
)

// eachDatabase runs fn once per database engine, as subtests "sqlite" and
// "postgres". cfg is a fresh, empty place to store data.
func eachDatabase(t *testing.T, fn func(t *testing.T, cfg storeConfig)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, storeConfig{DataDir: t.TempDir()})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, storeConfig{DatabaseURL: freshPostgres(t)})
	})
}

// freshPostgres creates an empty database on the server at
// HERD_TEST_POSTGRES_URL and returns its URL; the database is dropped when
// the test ends.
func freshPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("HERD_TEST_POSTGRES_URL")
	if base == "" {
		msg := "HERD_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), so the PostgreSQL variant does not run"
		if os.Getenv("HERD_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg + "; HERD_REQUIRE_SERVICES=1 requires it")
		}
		t.Skip(msg)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("HERD_TEST_POSTGRES_URL: %v", err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "shop_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("creating the test database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		// FORCE: a store a failed test left open must not keep it alive.
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("dropping the test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// open opens service name's store as an instance would at start.
func open(t *testing.T, name string, cfg storeConfig) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := openStore(ctx, name, services[name].schema, cfg)
	if err != nil {
		t.Fatalf("opening the %s store: %v", name, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// serve runs service name as an HTTP server, as main does, with no Redis,
// replicas or shards.
func serve(t *testing.T, name string, st *Store, peers *svcclient.Client) *httptest.Server {
	t.Helper()
	return serveWith(t, name, deps{store: st, peers: peers})
}

// serveWith runs service name on d.
func serveWith(t *testing.T, name string, d deps) *httptest.Server {
	t.Helper()
	if d.bcryptCost == 0 {
		d.bcryptCost = bcrypt.MinCost
	}
	if name == "users" {
		// The seeded hashes are bcrypt at cost 10, a second or more each
		// under the race detector: the tests' users have cheaper ones.
		for id, pw := range map[string]string{"usr_alice": "wonderland", "usr_bob": "canwefixit", "usr_carol": "higherfurther"} {
			h, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if _, err := d.store.DB.Exec(`UPDATE user_passwords SET hash = $1 WHERE user_id = $2`, string(h), id); err != nil {
				t.Fatal(err)
			}
		}
	}
	h, closeSvc, err := newHandler(name, d)
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); closeSvc() })
	return srv
}

// shop is the four services behind a gateway that, like herd's, sends
// /api/NAME/rest to service NAME as /rest.
type shop struct {
	gateway *httptest.Server
	mu      sync.Mutex // guards servers, which tests may swap
	servers map[string]*httptest.Server
	stores  map[string]*Store
}

// swap puts srv in place of service name behind the gateway.
func (s *shop) swap(name string, srv *httptest.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers[name] = srv
}

func startShop(t *testing.T, cfg storeConfig) *shop {
	t.Helper()
	return startShopWith(t, cfg, nil)
}

// startShopWith is startShop with each service's deps changed by
// configure (nil: none), which may also replace the orders store.
func startShopWith(t *testing.T, cfg storeConfig, configure func(name string, d *deps)) *shop {
	t.Helper()
	s := &shop{servers: map[string]*httptest.Server{}, stores: map[string]*Store{}}
	s.gateway = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/api/"), "/")
		s.mu.Lock()
		target := s.servers[name]
		s.mu.Unlock()
		if target == nil || !strings.HasPrefix(r.URL.Path, "/api/") {
			http.Error(w, `{"error":"Not Found","reason":"no such service"}`, http.StatusNotFound)
			return
		}
		to, _ := url.Parse(target.URL)
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(to)
				pr.Out.URL.Path, pr.Out.URL.RawPath = "/"+rest, ""
			},
			// A stopped service is a 502 in JSON, as herd answers.
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadGateway)
				json.NewEncoder(w).Encode(errorBody{Error: "Bad Gateway", Reason: name + ": " + err.Error()})
			},
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.gateway.Close)
	peers := svcclient.New(svcclient.Gateway(s.gateway.URL+"/api"),
		svcclient.WithTimeout(5*time.Second), svcclient.WithRetries(2))
	for _, name := range []string{"users", "products", "payments", "orders"} {
		st := open(t, name, cfg)
		d := deps{store: st, peers: peers}
		if configure != nil {
			configure(name, &d)
		}
		srv := serveWith(t, name, d)
		s.mu.Lock()
		s.stores[name], s.servers[name] = st, srv
		s.mu.Unlock()
	}
	return s
}

// api calls the shop through its gateway: path is /api/NAME/….
func (s *shop) api(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	return call(t, method, s.gateway.URL+path, body)
}

// call sends body (JSON, or none when "") and returns the status and body.
func call(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	status, out, err := send(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, out
}

// send is call for goroutines, which must not stop the test themselves.
func send(method, url, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		return 0, nil, fmt.Errorf("%s %s: Content-Type %q, want application/json; body %s", method, url, ct, out)
	}
	return res.StatusCode, out, nil
}

// decode unmarshals an answer, failing the test when it is not JSON.
func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return v
}

// check compares an answer with the status and, for errors, the field
// named in the error body.
type check struct {
	status int
	field  string // the error's field; checked when status >= 400
	reason string // a part of the error's reason, when not ""
}

func (c check) verify(t *testing.T, status int, body []byte) {
	t.Helper()
	if status != c.status {
		t.Fatalf("status %d, want %d; body %s", status, c.status, body)
	}
	if status < 400 {
		return
	}
	e := decode[errorBody](t, body)
	if e.Error != http.StatusText(status) || e.RequestID == "" {
		t.Errorf("error body %s: want error %q and a request_id", body, http.StatusText(status))
	}
	if e.Field != c.field {
		t.Errorf("error field %q, want %q; body %s", e.Field, c.field, body)
	}
	if !strings.Contains(e.Reason, c.reason) {
		t.Errorf("error reason %q does not say %q", e.Reason, c.reason)
	}
}

// count returns SELECT COUNT(*) FROM table WHERE where, args.
func count(t *testing.T, st *Store, table, where string, args ...any) int {
	t.Helper()
	var n int
	q := "SELECT COUNT(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	if err := st.DB.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// bigJSON is a body over the 1 MiB limit.
func bigJSON() string {
	var b bytes.Buffer
	b.WriteString(`{"name":"`)
	b.Write(bytes.Repeat([]byte("x"), maxBody))
	b.WriteString(`","email":"big@example.com"}`)
	return b.String()
}
