package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/limits"
)

// pathLog records which path served each request of a Handler (see
// Handler.onServe). Install it before the Handler serves.
type pathLog struct {
	mu    sync.Mutex
	paths map[string][]servePath // by request target
	seen  chan string
}

func logPaths(h *Handler) *pathLog {
	l := &pathLog{paths: map[string][]servePath{}, seen: make(chan string, 100)}
	h.onServe = func(p servePath, target string) {
		l.mu.Lock()
		l.paths[target] = append(l.paths[target], p)
		l.mu.Unlock()
		select {
		case l.seen <- target:
		default:
		}
	}
	return l
}

// of returns the paths that served requests for target, in order.
func (l *pathLog) of(target string) []servePath {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]servePath(nil), l.paths[target]...)
}

// all returns every path that served a request.
func (l *pathLog) all() []servePath {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []servePath
	for _, ps := range l.paths {
		all = append(all, ps...)
	}
	return all
}

// serveBoth runs h behind a Server (the fast path, net/http as its
// fallback) and returns its address.
func serveBoth(t testing.TB, h *Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: func() *Handler { return h }, Fallback: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// rawGet sends one GET for target on a new connection and returns the
// connection and a reader of its answers.
func rawGet(t *testing.T, addr, target string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, br := dialFront(t, addr)
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn, br
}

// readStatus reads one answer from br and returns its status, reading
// the body to the end.
func readStatus(t *testing.T, br *bufio.Reader) int {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// A client that leaves while its request waits for an instance (queued)
// or for its turn under the rate limit (delayed) is noticed on both
// paths: the wait ends at once with a 499 in the metrics, its place under
// the connection limit is free again, and the instance never gets the
// request.
func TestClientLeavesWhileWaiting(t *testing.T) {
	paths := []struct {
		name    string
		hashKey string // query: is a key the fast path does not take
		want    servePath
	}{
		{"fast", "", pathFast},
		{"net/http", "query:k", pathNetHTTP},
	}
	for _, p := range paths {
		for _, wait := range []string{"queued", "delayed"} {
			t.Run(p.name+"/"+wait, func(t *testing.T) {
				var hits atomic.Int64
				app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					io.WriteString(w, r.URL.Path)
				}))
				t.Cleanup(app.Close)
				instance := &balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://"), App: "web"}
				pool := balance.NewPool("web", 1, time.Minute)
				statuses := make(chan int, 10)
				route := Route{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}, HashKey: p.hashKey,
					QueueTimeout: 30 * time.Second,
					Conns:        &ConnLimit{Conns: limits.NewConns(1), Key: "ip", Status: 429, Max: 1}}
				if wait == "delayed" {
					// One request per 30 s: the second waits 30 s for its turn.
					route.Rate = &RateLimit{Limiter: limits.NewRate(1.0/30, 1, false, 0), Key: "ip", Status: 503, Desc: "2r/m"}
					pool.Add(instance)
				}
				h, err := testNew(Options{Routes: []Route{route},
					Observe: func(_, _ string, status int, _ time.Duration) { statuses <- status }})
				if err != nil {
					t.Fatal(err)
				}
				log := logPaths(h)
				addr := serveBoth(t, h)
				if wait == "delayed" {
					_, br := rawGet(t, addr, "/first")
					if s := readStatus(t, br); s != 200 {
						t.Fatalf("first request: %d; want 200", s)
					}
					if s := <-statuses; s != 200 {
						t.Fatalf("first request observed as %d; want 200", s)
					}
				}

				start := time.Now()
				conn, _ := rawGet(t, addr, "/left")
				for len(log.of("/left")) == 0 { // in the handler, on its way into the wait
					<-log.seen
				}
				conn.Close()
				select {
				case s := <-statuses:
					if s != StatusClientClosed {
						t.Errorf("the request whose client left observed as %d; want 499", s)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the request whose client left was not noticed within 10s (the wait is 30s)")
				}
				if waited := time.Since(start); waited > 10*time.Second {
					t.Errorf("noticed after %s", waited)
				}
				if got := log.of("/left"); len(got) != 1 || got[0] != p.want {
					t.Errorf("/left served by %v; want the %s path", got, p.want)
				}
				if n := hits.Load(); n > 1 || (wait == "queued" && n > 0) {
					t.Errorf("the instance got %d requests; want none from the client that left", n)
				}

				// Its place under the connection limit is free: a request from
				// the same address is served, not refused with 429.
				if wait == "queued" {
					pool.Add(instance)
					_, br := rawGet(t, addr, "/next")
					if s := readStatus(t, br); s != 200 {
						t.Errorf("next request from the same client: %d; want 200 (the slot of the one that left freed)", s)
					}
					if n := hits.Load(); n != 1 {
						t.Errorf("the instance got %d requests; want 1 (only /next)", n)
					}
				}
			})
		}
	}
}

// TestFeatureRoutesTakeTheFastPath: routes with limits, body bounds,
// retries, keepalive_requests, a read timeout or header rules are served
// by the fast path; what it does not take goes to net/http.
func TestFeatureRoutesTakeTheFastPath(t *testing.T) {
	var calls atomic.Int64
	instance := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/retry" && calls.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first try; the retry gets 200
			return
		}
		w.Header().Set("X-Powered-By", "app")
		io.WriteString(w, "ok")
	})
	pool := balance.NewPool("web", 1, time.Minute)
	for i := range 2 { // two, for the retry
		app := httptest.NewServer(instance)
		t.Cleanup(app.Close)
		pool.Add(&balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://"), App: "web", Index: i})
	}
	base := Route{App: "web", Pool: pool, Policy: &balance.RoundRobin{}}
	route := func(path string, edit func(*Route)) Route {
		r := base
		r.Path = path
		edit(&r)
		return r
	}
	routes := []Route{
		route("/rate", func(r *Route) {
			r.Rate = &RateLimit{Limiter: limits.NewRate(1000, 1000, true, 0), Key: "ip", Status: 429, Desc: "1000r/s"}
		}),
		route("/conns", func(r *Route) { r.Conns = &ConnLimit{Conns: limits.NewConns(10), Key: "ip", Status: 429, Max: 10} }),
		route("/max_body", func(r *Route) { r.MaxBody = 4 }),
		route("/retry", func(r *Route) { r.Retry = RetryPolicy{Tries: 2, OnStatus: []int{503}} }),
		route("/keepalive_requests", func(r *Route) { r.Transport.KeepaliveRequests = 2 }),
		route("/read_timeout", func(r *Route) { r.Transport.ReadTimeout = time.Second }),
		route("/headers", func(r *Route) { r.Headers = SecurityHeaders }),
		route("/sticky", func(r *Route) { r.StickyCookie = "s" }),
		route("/query_key", func(r *Route) { r.HashKey = "query:k" }),
	}
	h, err := testNew(Options{Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	log := logPaths(h)
	addr := serveBoth(t, h)
	for _, tc := range []struct {
		name, head string
		status     int
		want       servePath
	}{
		{"rate limit", "GET /rate HTTP/1.1\r\nHost: x\r\n\r\n", 200, pathFast},
		{"conn limit", "GET /conns HTTP/1.1\r\nHost: x\r\n\r\n", 200, pathFast},
		{"max_body within", "POST /max_body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd", 200, pathFast},
		{"max_body over", "POST /max_body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde", 413, pathFast},
		{"retry", "GET /retry HTTP/1.1\r\nHost: x\r\n\r\n", 200, pathFast},
		{"keepalive_requests", "GET /keepalive_requests HTTP/1.1\r\nHost: x\r\n\r\n", 200, pathFast},
		{"read_timeout", "GET /read_timeout HTTP/1.1\r\nHost: x\r\n\r\n", 200, pathFast},
		{"headers", "GET /headers HTTP/1.1\r\nHost: x\r\n\r\n", 200, pathFast},
		{"sticky cookie", "GET /sticky HTTP/1.1\r\nHost: x\r\n\r\n", 200, pathNetHTTP},
		{"query hash key", "GET /query_key HTTP/1.1\r\nHost: x\r\n\r\n", 200, pathNetHTTP},
		{"HTTP/1.0", "GET /headers HTTP/1.0\r\nHost: x\r\n\r\n", 200, pathNetHTTP},
		{"chunked body", "POST /conns HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, pathNetHTTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, br := dialFront(t, addr)
			target := strings.Fields(tc.head)[1]
			before := len(log.of(target))
			if _, err := io.WriteString(conn, tc.head); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status %d; want %d", res.StatusCode, tc.status)
			}
			if target == "/headers" && (res.Header.Get("X-Powered-By") != "" || res.Header.Get("X-Frame-Options") != "SAMEORIGIN") {
				t.Errorf("header rules not applied: %v", res.Header)
			}
			got := log.of(target)
			if len(got) != before+1 || got[before] != tc.want {
				t.Errorf("served by %v; want one more request on the %s path", got[before:], tc.want)
			}
		})
	}
}
