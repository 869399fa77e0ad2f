package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/accesslog"
	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/limits"
)

// setup runs a proxy in front of the given instance handlers (one route "/"
// to app "web", round robin) and returns its URL and pool.
func setup(t *testing.T, opts Options, handlers ...http.Handler) (string, *balance.Pool) {
	t.Helper()
	pool := balance.NewPool("web", 1, time.Minute)
	for i, h := range handlers {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		pool.Add(&balance.Backend{Addr: strings.TrimPrefix(srv.URL, "http://"), App: "web", Index: i})
	}
	if opts.Routes == nil {
		opts.Routes = []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}, QueueTimeout: 200 * time.Millisecond}}
	}
	h, err := testNew(opts)
	if err != nil {
		t.Fatal(err)
	}
	front := newFront(t, h, nil)
	return front.URL, pool
}

func echoHeaders() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{"Host": r.Host, "Path": r.URL.Path}
		for k := range r.Header {
			h[k] = r.Header.Get(k)
		}
		json.NewEncoder(w).Encode(h)
	})
}

func doJSON(t *testing.T, req *http.Request) (*http.Response, map[string]string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]string
	data, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
	return res, m
}

func TestForwardedHeaders(t *testing.T) {
	tests := []struct {
		name     string
		trusted  []netip.Prefix
		in       map[string]string
		wantXFF  string
		wantReal string
		wantHost string
	}{
		{
			name:     "untrusted peer: incoming headers replaced",
			in:       map[string]string{"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6", "X-Forwarded-Host": "evil"},
			wantXFF:  "127.0.0.1",
			wantReal: "127.0.0.1",
			wantHost: "example.test",
		},
		{
			name:     "trusted peer: chain kept and extended",
			trusted:  []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			in:       map[string]string{"X-Forwarded-For": "203.0.113.9, 127.0.0.5", "X-Forwarded-Host": "shop.test"},
			wantXFF:  "203.0.113.9, 127.0.0.5, 127.0.0.1",
			wantReal: "203.0.113.9",
			wantHost: "shop.test",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := setup(t, Options{TrustedProxies: tc.trusted}, echoHeaders())
			req, _ := http.NewRequest("GET", url+"/x", nil)
			req.Host = "example.test"
			for k, v := range tc.in {
				req.Header.Set(k, v)
			}
			res, got := doJSON(t, req)
			if got["X-Forwarded-For"] != tc.wantXFF {
				t.Errorf("X-Forwarded-For = %q; want %q", got["X-Forwarded-For"], tc.wantXFF)
			}
			if got["X-Real-Ip"] != tc.wantReal {
				t.Errorf("X-Real-IP = %q; want %q", got["X-Real-Ip"], tc.wantReal)
			}
			if got["X-Forwarded-Host"] != tc.wantHost {
				t.Errorf("X-Forwarded-Host = %q; want %q", got["X-Forwarded-Host"], tc.wantHost)
			}
			if got["X-Forwarded-Proto"] != "http" || got["Host"] != "example.test" {
				t.Errorf("proto/host = %q/%q; want http/example.test", got["X-Forwarded-Proto"], got["Host"])
			}
			id := got["X-Request-Id"]
			if len(id) != 32 || res.Header.Get("X-Request-Id") != id {
				t.Errorf("request id %q, response id %q; want a 32-hex id echoed back", id, res.Header.Get("X-Request-Id"))
			}
		})
	}
}

func TestRequestIDKept(t *testing.T) {
	url, _ := setup(t, Options{}, echoHeaders())
	req, _ := http.NewRequest("GET", url+"/", nil)
	req.Header.Set("X-Request-ID", "abc-123")
	res, got := doJSON(t, req)
	if got["X-Request-Id"] != "abc-123" || res.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("got %q / %q; want the client's id kept", got["X-Request-Id"], res.Header.Get("X-Request-Id"))
	}
}

func TestRouting(t *testing.T) {
	web := balance.NewPool("web", 1, time.Minute)
	api := balance.NewPool("api", 1, time.Minute)
	for _, p := range []*balance.Pool{web, api} {
		name := p.Name
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		t.Cleanup(srv.Close)
		p.Add(&balance.Backend{Addr: strings.TrimPrefix(srv.URL, "http://")})
	}
	url, _ := setup(t, Options{Routes: []Route{
		{Path: "/", App: "web", Pool: web, Policy: &balance.RoundRobin{}},
		{Path: "/api", App: "api", Pool: api, Policy: &balance.RoundRobin{}},
	}})
	for path, want := range map[string]string{"/": "web", "/api": "api", "/api/users": "api", "/apiary": "web", "/x/api": "web"} {
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != want {
			t.Errorf("GET %s reached %q; want %q", path, body, want)
		}
	}
}

func TestNoRouteIs404JSON(t *testing.T) {
	pool := balance.NewPool("api", 1, time.Minute)
	url, _ := setup(t, Options{Routes: []Route{{Path: "/api", App: "api", Pool: pool, Policy: &balance.RoundRobin{}}}})
	res, body := doJSON(t, mustReq(t, "GET", url+"/other", nil))
	if res.StatusCode != 404 || body["reason"] == "" || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %v; want 404 JSON with a reason", res.StatusCode, body)
	}
}

func mustReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestNoReadyInstanceIs503AfterQueueWait(t *testing.T) {
	var observed atomic.Int64
	url, _ := setup(t, Options{Observe: func(route, app string, status int, _ time.Duration) { observed.Store(int64(status)) }})
	start := time.Now()
	res, body := doJSON(t, mustReq(t, "GET", url+"/", nil))
	if res.StatusCode != 503 || body["app"] != "web" || !strings.Contains(body["reason"], "web") {
		t.Errorf("got %d %v; want 503 JSON naming app web", res.StatusCode, body)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("answered after %s; want the 200ms queue wait first", waited)
	}
	if observed.Load() != 503 {
		t.Errorf("observed status %d; want 503", observed.Load())
	}
}

func TestRetryOnRefusedConnection(t *testing.T) {
	var hits atomic.Int64
	good := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	})
	url, pool := setup(t, Options{}, good)
	// A backend whose port refuses connections, picked first half the time.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := &balance.Backend{Addr: l.Addr().String()}
	l.Close()
	pool.Add(dead)

	for _, tc := range []struct {
		name   string
		method string
		header string
		want   int
	}{
		{"GET is retried", "GET", "", 200},
		{"PUT is retried", "PUT", "", 200},
		{"POST with Idempotency-Key is retried", "POST", "k1", 200},
		{"POST is retried when the connection was refused", "POST", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 4 {
				req := mustReq(t, tc.method, url+"/", strings.NewReader("payload"))
				if tc.header != "" {
					req.Header.Set("Idempotency-Key", tc.header)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != tc.want || (tc.method != "GET" && string(body) != "payload") {
					t.Fatalf("%s = %d %q; want %d with the body delivered", tc.method, res.StatusCode, body, tc.want)
				}
			}
		})
	}
	if dead.Available(time.Now()) {
		t.Error("refusing backend not marked down by passive health")
	}
}

func TestPOSTNotRetriedAfterReset(t *testing.T) {
	var calls atomic.Int64
	resetter := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close() // RST before any response byte
	})
	url, _ := setup(t, Options{}, resetter, resetter)
	res, body := doJSON(t, mustReq(t, "POST", url+"/", strings.NewReader("x")))
	if res.StatusCode != 502 || body["app"] != "web" {
		t.Errorf("POST = %d %v; want 502 JSON", res.StatusCode, body)
	}
	if calls.Load() != 1 {
		t.Errorf("POST reached %d instances; want 1 (never retried)", calls.Load())
	}
	calls.Store(0)
	res, _ = doJSON(t, mustReq(t, "GET", url+"/", nil))
	if res.StatusCode != 502 || calls.Load() != 2 {
		t.Errorf("GET = %d after %d attempts; want 502 after exactly 2 (one retry)", res.StatusCode, calls.Load())
	}
}

// A client that gives up while its request is with an instance is a 499,
// also on a kept-alive connection, where the instance connection the watch
// closes must not pass for a stale idle one and be retried.
func TestClientGoneIs499(t *testing.T) {
	for _, warmups := range []int{0, 2} {
		t.Run(fmt.Sprintf("after %d requests", warmups), func(t *testing.T) {
			statuses := make(chan int, 10)
			release := make(chan struct{})
			var slowCalls atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					slowCalls.Add(1)
					<-release // like an app that never looks at its context
				}
			})
			url, _ := setup(t, Options{Observe: func(_, _ string, status int, _ time.Duration) { statuses <- status }}, h)
			t.Cleanup(func() { close(release) }) // before the instance closes
			client := &http.Client{Transport: &http.Transport{}}
			for range warmups {
				res, err := client.Get(url + "/")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				<-statuses
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", url+"/slow", nil)
			if _, err := client.Do(req); err == nil {
				t.Fatal("request succeeded; want the client to give up")
			}
			select {
			case s := <-statuses:
				if s != StatusClientClosed {
					t.Errorf("observed %d; want 499", s)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("request never observed")
			}
			if n := slowCalls.Load(); n != 1 {
				t.Errorf("the request reached instances %d times; want once", n)
			}
		})
	}
}

func TestStreamingIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	sse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: two\n\n")
	})
	url, _ := setup(t, Options{}, sse)
	res, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event = %q, %v; want it before the stream ends", line, err)
	}
	close(release)
}

func TestUpgradePassesThrough(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		conn.Write([]byte("echo: " + line))
	})
	url, pool := setup(t, Options{}, echo)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("upgrade answer %v, %v; want 101", res, err)
	}
	if n := pool.Backends()[0].Inflight(); n != 1 {
		t.Errorf("in flight during the upgraded connection = %d; want 1", n)
	}
	io.WriteString(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
}

func TestMatchPrefix(t *testing.T) {
	tests := []struct {
		prefix, path string
		want         bool
	}{
		{"/", "/", true},
		{"/", "/anything", true},
		{"/api", "/api", true},
		{"/api", "/api/x", true},
		{"/api", "/apix", false},
		{"/api/", "/api/x", true},
		{"/api/", "/api", false},
	}
	for _, tc := range tests {
		if got := matchPrefix(tc.prefix, tc.path); got != tc.want {
			t.Errorf("matchPrefix(%q, %q) = %v; want %v", tc.prefix, tc.path, got, tc.want)
		}
	}
}

func TestChunkedStreamIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	chunked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n") // no Content-Length, no event-stream type
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	})
	url, _ := setup(t, Options{}, chunked)
	res, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk = %q, %v; want it before the response ends", line, err)
	}
	close(release)
}

func TestHeaderRules(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Powered-By", "Express")
		w.Header().Set("X-Frame-Options", "DENY") // the app's own choice wins over a default
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok")
	})
	pool := poolFor(t, app)
	rules := SecurityHeaders
	rules.Set = map[string]string{"Cache-Control": "public, max-age=60"}
	rules.Add = map[string]string{"Vary": "Accept-Encoding"}
	rules.Remove = append(rules.Remove, "Server")
	url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}, Headers: rules}}})
	res, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for k, want := range map[string]string{
		"X-Powered-By": "", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "strict-origin-when-cross-origin", "Cache-Control": "public, max-age=60", "Vary": "Accept-Encoding",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	var reached atomic.Int64
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.Copy(io.Discard, r.Body)
	})
	pool := poolFor(t, app)
	url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}, MaxBody: 10}}})

	res, body := doJSON(t, mustReq(t, "POST", url+"/", strings.NewReader("0123456789ABC")))
	if res.StatusCode != 413 || !strings.Contains(body["reason"], "at most 10") {
		t.Errorf("declared oversized body: %d %v; want 413 JSON", res.StatusCode, body)
	}
	if reached.Load() != 0 {
		t.Error("an oversized body declared in Content-Length reached the instance")
	}
	// A chunked body that turns out too large is cut off, 413 as well.
	req := mustReq(t, "POST", url+"/", io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("ABCDEF")))
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 && res.StatusCode != 200 {
		t.Errorf("chunked oversized body: %d; want 413 (or 200 if the instance answered first)", res.StatusCode)
	}
	small, err := http.DefaultClient.Do(mustReq(t, "POST", url+"/", strings.NewReader("small")))
	if err != nil {
		t.Fatal(err)
	}
	small.Body.Close()
	if small.StatusCode != 200 || reached.Load() == 0 {
		t.Errorf("small body: %d; want 200 from the instance", small.StatusCode)
	}
}

func TestAccessLog(t *testing.T) {
	var out bytes.Buffer
	log := accesslog.New(&out, "combined")
	url, pool := setup(t, Options{AccessLog: log}, echoHeaders())
	req := mustReq(t, "GET", url+"/path?x=1", nil)
	req.Header.Set("User-Agent", "test-agent")
	req.Header.Set("X-Request-ID", "rid-1")
	res, _ := doJSON(t, req)
	log.Close()
	line := out.String()
	addr := pool.Backends()[0].Addr
	for _, want := range []string{`"GET /path?x=1 HTTP/1.1" 200 `, `"test-agent"`, "uaddr=" + addr, "rid=rid-1", "127.0.0.1 - - ["} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line %q lacks %q", line, want)
		}
	}
	if res.StatusCode != 200 {
		t.Errorf("status %d", res.StatusCode)
	}
}

// poolFor is a pool of one backend serving h.
func poolFor(t *testing.T, h http.Handler) *balance.Pool {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	pool := balance.NewPool("web", 1, time.Minute)
	pool.Add(&balance.Backend{Addr: strings.TrimPrefix(srv.URL, "http://")})
	return pool
}

// named answers its name, to tell backends apart.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
}

func poolOf(t *testing.T, names ...string) *balance.Pool {
	t.Helper()
	pool := balance.NewPool("web", 1, time.Minute)
	for i, n := range names {
		srv := httptest.NewServer(named(n))
		t.Cleanup(srv.Close)
		pool.Add(&balance.Backend{Addr: strings.TrimPrefix(srv.URL, "http://"), App: "web", Index: i, ID: "web/" + n})
	}
	return pool
}

func getBody(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHashKey(t *testing.T) {
	pool := poolOf(t, "a", "b", "c")
	url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: balance.Rendezvous{}, HashKey: "header:X-User"}}})
	seen := map[string]string{}
	spread := map[string]bool{}
	for i := range 60 {
		user := strconv.Itoa(i % 20)
		req := mustReq(t, "GET", url+"/", nil)
		req.Header.Set("X-User", user)
		_, got := getBody(t, req)
		if prev, ok := seen[user]; ok && prev != got {
			t.Fatalf("user %s reached %s, then %s; want one backend per key", user, prev, got)
		}
		seen[user] = got
		spread[got] = true
	}
	if len(spread) != 3 {
		t.Errorf("20 users reached %v; want all three backends", spread)
	}
}

func TestStickyCookie(t *testing.T) {
	pool := poolOf(t, "a", "b", "c")
	url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}, StickyCookie: "srv", StickyMaxAge: time.Hour}}})
	res, first := getBody(t, mustReq(t, "GET", url+"/", nil))
	cookies := res.Cookies()
	if len(cookies) != 1 || cookies[0].Name != "srv" || cookies[0].MaxAge != 3600 || !cookies[0].HttpOnly {
		t.Fatalf("Set-Cookie = %v; want srv with Max-Age 3600, HttpOnly", res.Header["Set-Cookie"])
	}
	for range 10 {
		req := mustReq(t, "GET", url+"/", nil)
		req.AddCookie(cookies[0])
		res, got := getBody(t, req)
		if got != first || len(res.Cookies()) != 0 {
			t.Fatalf("with the cookie reached %s (Set-Cookie %v); want %s and no new cookie", got, res.Header["Set-Cookie"], first)
		}
	}
	// When that backend leaves, the client goes elsewhere and gets a new cookie.
	for _, b := range pool.Backends() {
		if b.ID == "web/"+first {
			pool.Remove(b)
		}
	}
	req := mustReq(t, "GET", url+"/", nil)
	req.AddCookie(cookies[0])
	res, got := getBody(t, req)
	if got == first || len(res.Cookies()) != 1 {
		t.Errorf("after its backend left: reached %s with Set-Cookie %v; want another backend and a new cookie", got, res.Header["Set-Cookie"])
	}
}

func TestCompression(t *testing.T) {
	big := strings.Repeat(`{"name":"herd","ok":true},`, 100) // 2.6 KB of JSON
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		case "/encoded":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "br")
			io.WriteString(w, big)
		case "/range":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Range", "bytes 0-2599/9999")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, big)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, big)
		}
	})
	pool := poolFor(t, app)
	url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{},
		Compress: &Compression{Level: 5, MinSize: 1024, Zstd: true}}}})
	// A transport that does not decompress, to see the wire.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(path, accept string, hdr ...string) (*http.Response, []byte) {
		req := mustReq(t, "GET", url+path, nil)
		req.Header.Set("Accept-Encoding", accept)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, body
	}
	tests := []struct {
		name, path, accept string
		hdr                []string
		wantEncoding       string
	}{
		{"gzip", "/", "gzip", nil, "gzip"},
		{"zstd preferred", "/", "gzip, zstd", nil, "zstd"},
		{"client accepts none", "/", "identity", nil, ""},
		{"below min_size", "/small", "gzip", nil, ""},
		{"opted out with X-No-Compression", "/", "gzip", []string{"X-No-Compression", "1"}, ""},
		{"already encoded", "/encoded", "gzip", nil, "br"},
		{"ranged", "/range", "gzip", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(tc.path, tc.accept, tc.hdr...)
			if got := res.Header.Get("Content-Encoding"); got != tc.wantEncoding {
				t.Fatalf("Content-Encoding = %q; want %q", got, tc.wantEncoding)
			}
			if tc.wantEncoding == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := io.ReadAll(zr)
				if string(plain) != big || len(body) >= len(big) {
					t.Errorf("gzip body: %d bytes decoding to %d; want a smaller encoding of the %d bytes", len(body), len(plain), len(big))
				}
			}
		})
	}
}

func TestRetryPolicy(t *testing.T) {
	var calls atomic.Int64
	unavailable := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "busy")
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, "ok")
	})
	mkPool := func(handlers ...http.Handler) *balance.Pool {
		pool := balance.NewPool("web", 1, time.Minute)
		for i, h := range handlers {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			pool.Add(&balance.Backend{Addr: strings.TrimPrefix(srv.URL, "http://"), ID: strconv.Itoa(i)})
		}
		return pool
	}
	tests := []struct {
		name      string
		method    string
		policy    RetryPolicy
		handlers  []http.Handler
		wantCode  int
		wantCalls int64
	}{
		{"503 retried when asked", "GET", RetryPolicy{Tries: 2, OnStatus: []int{503}}, []http.Handler{unavailable, ok}, 200, 2},
		{"503 passed on by default", "GET", RetryPolicy{}, []http.Handler{unavailable, unavailable}, 503, 1},
		{"tries bound the attempts", "GET", RetryPolicy{Tries: 3, OnStatus: []int{503}}, []http.Handler{unavailable, unavailable, unavailable, ok}, 0, 3},
		{"POST not retried on status", "POST", RetryPolicy{Tries: 2, OnStatus: []int{503}}, []http.Handler{unavailable, unavailable}, 503, 1},
		{"POST retried with non_idempotent", "POST", RetryPolicy{Tries: 2, OnStatus: []int{503}, NonIdempotent: true}, []http.Handler{unavailable, ok}, 200, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			pool := mkPool(tc.handlers...)
			// Round robin from a fixed start makes the order known.
			url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}, Retry: tc.policy}}})
			res, _ := getBody(t, mustReq(t, tc.method, url+"/", nil))
			if tc.wantCode != 0 && res.StatusCode != tc.wantCode {
				t.Errorf("status %d; want %d", res.StatusCode, tc.wantCode)
			}
			if calls.Load() != tc.wantCalls {
				t.Errorf("%d instances tried; want %d", calls.Load(), tc.wantCalls)
			}
		})
	}
}

func TestReadTimeoutBetweenReads(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/trickle" { // a byte every 100ms: never 300ms between reads
			for range 5 {
				io.WriteString(w, "x")
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
			return
		}
		time.Sleep(time.Second)
	})
	pool := poolFor(t, slow)
	url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{},
		Transport: TransportOptions{ReadTimeout: 300 * time.Millisecond}, Retry: RetryPolicy{Tries: 1}}}})
	start := time.Now()
	res, body := doJSON(t, mustReq(t, "GET", url+"/", nil))
	if res.StatusCode != 504 || body["app"] != "web" {
		t.Errorf("silent instance: %d %v; want 504 JSON", res.StatusCode, body)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("answered after %s; want about the 300ms read timeout", took)
	}
	res, got := getBody(t, mustReq(t, "GET", url+"/trickle", nil))
	if res.StatusCode != 200 || got != "xxxxx" {
		t.Errorf("trickling instance: %d %q; want the whole body (the timeout is between reads)", res.StatusCode, got)
	}
}

func TestStaticFiles(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "app.js"), []byte("console.log('herd')\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "docs"), 0o755)
	os.WriteFile(filepath.Join(root, "docs", "index.html"), []byte("<h1>docs</h1>"), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(root), "secret.txt"), []byte("secret"), 0o644)
	url, _ := setup(t, Options{Routes: []Route{{Path: "/static", Files: Static(root, "/static", time.Hour), Headers: SecurityHeaders}}})

	res, body := getBody(t, mustReq(t, "GET", url+"/static/app.js", nil))
	etag := res.Header.Get("ETag")
	if res.StatusCode != 200 || body != "console.log('herd')\n" || !strings.HasPrefix(etag, `W/"`) ||
		res.Header.Get("Last-Modified") == "" || res.Header.Get("Cache-Control") != "public, max-age=3600" ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET app.js = %d %q %v", res.StatusCode, body, res.Header)
	}
	req := mustReq(t, "GET", url+"/static/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	if res, _ := getBody(t, req); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match = %d; want 304", res.StatusCode)
	}
	req = mustReq(t, "GET", url+"/static/app.js", nil)
	req.Header.Set("Range", "bytes=0-6")
	if res, body := getBody(t, req); res.StatusCode != http.StatusPartialContent || body != "console" {
		t.Errorf("Range = %d %q; want 206 console", res.StatusCode, body)
	}
	if _, body := getBody(t, mustReq(t, "GET", url+"/static/docs/", nil)); body != "<h1>docs</h1>" {
		t.Errorf("folder = %q; want its index.html", body)
	}
	for path, want := range map[string]int{
		"/static/missing.js": 404,
		// Normalized before routing (see pathnorm.go): /secret.txt, which
		// no route serves.
		"/static/../secret.txt":         404,
		"/static/%2e%2e/secret.txt":     404,
		"/static/docs/../../secret.txt": 404,
		"/static/../../secret.txt":      400, // above /
	} {
		// Send the path as is: the client would clean it.
		conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		conn.Close()
		if res.StatusCode != want || strings.Contains(string(b), "secret") {
			t.Errorf("GET %s = %d %s; want %d and no file outside the root", path, res.StatusCode, b, want)
		}
	}
	if res, _ := getBody(t, mustReq(t, "POST", url+"/static/app.js", strings.NewReader("x"))); res.StatusCode != 405 {
		t.Errorf("POST = %d; want 405", res.StatusCode)
	}
}

func TestRateAndConnLimits(t *testing.T) {
	release := make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	pool := poolFor(t, app)
	url, _ := setup(t, Options{Routes: []Route{
		{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{},
			Rate: &RateLimit{Limiter: limits.NewRate(1, 2, true, 0), Key: "header:X-Client", Status: 429, Desc: "1r/s with a burst of 2"}},
		{Path: "/hold", App: "web", Pool: pool, Policy: &balance.RoundRobin{},
			Conns: &ConnLimit{Conns: limits.NewConns(1), Key: "ip", Status: 503, Max: 1}},
	}})
	codes := []int{}
	for range 4 {
		req := mustReq(t, "GET", url+"/", nil)
		req.Header.Set("X-Client", "alice")
		res, _ := getBody(t, req)
		codes = append(codes, res.StatusCode)
		if res.StatusCode == 429 && res.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if fmt.Sprint(codes) != "[200 200 200 429]" {
		t.Errorf("alice's 4 requests at once: %v; want 3 passed (1 + burst 2, nodelay), then 429", codes)
	}
	req := mustReq(t, "GET", url+"/", nil)
	req.Header.Set("X-Client", "bob")
	if res, _ := getBody(t, req); res.StatusCode != 200 {
		t.Errorf("bob limited by alice's requests: %d", res.StatusCode)
	}

	// One request in flight per client on /hold: a second one is refused.
	done := make(chan int)
	go func() {
		res, _ := getBody(t, mustReq(t, "GET", url+"/hold", nil))
		done <- res.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)
	res, body := doJSON(t, mustReq(t, "GET", url+"/hold", nil))
	if res.StatusCode != 503 || !strings.Contains(body["reason"], "in flight") {
		t.Errorf("second request in flight: %d %v; want 503 JSON", res.StatusCode, body)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Errorf("first request: %d", code)
	}
}

func TestH2CToBackend(t *testing.T) {
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	app.Config.Protocols = new(http.Protocols)
	app.Config.Protocols.SetHTTP1(true)
	app.Config.Protocols.SetUnencryptedHTTP2(true)
	app.Start()
	defer app.Close()
	pool := balance.NewPool("grpc", 1, time.Minute)
	pool.Add(&balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://")})
	url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "grpc", Pool: pool, Policy: &balance.RoundRobin{}, Transport: TransportOptions{H2C: true}}}})
	if _, proto := getBody(t, mustReq(t, "GET", url+"/", nil)); proto != "HTTP/2.0" {
		t.Errorf("the backend saw %q; want HTTP/2.0 over h2c", proto)
	}
}

// TestKeepaliveRequests: a connection carries keepalive_requests requests,
// the last with Connection: close, like NGINX's keepalive_requests.
func TestKeepaliveRequests(t *testing.T) {
	tests := []struct {
		limit     int
		wantConns int64
	}{
		{0, 1}, // no limit: one connection carries all nine
		{3, 3},
		{1, 9},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			var conns, closes atomic.Int64
			app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Close {
					closes.Add(1)
				}
				io.WriteString(w, "ok")
			}))
			app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			app.Start()
			defer app.Close()
			pool := balance.NewPool("web", 1, time.Minute)
			pool.Add(&balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://")})
			url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{},
				Transport: TransportOptions{KeepaliveRequests: tc.limit}}}})
			for i := range 9 {
				if res, body := getBody(t, mustReq(t, "GET", url+"/", nil)); res.StatusCode != 200 || body != "ok" {
					t.Fatalf("request %d = %d %q", i, res.StatusCode, body)
				}
			}
			if got := conns.Load(); got != tc.wantConns {
				t.Errorf("%d connections to the backend; want %d", got, tc.wantConns)
			}
			if tc.limit > 0 && closes.Load() != tc.wantConns {
				t.Errorf("%d requests said Connection: close; want the last of each connection (%d)", closes.Load(), tc.wantConns)
			}
		})
	}
}

func TestCache(t *testing.T) {
	var calls atomic.Int64
	var failing atomic.Bool
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/short":
			w.Header().Set("Cache-Control", "max-age=1")
		case "/private":
			w.Header().Set("Cache-Control", "private")
		case "/slow":
			time.Sleep(200 * time.Millisecond)
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		}
		fmt.Fprintf(w, "answer %d", n)
	})
	cache, err := NewCache(1<<20, map[int]time.Duration{200: time.Minute, 404: time.Minute}, true)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := setup(t, Options{Routes: []Route{{Path: "/", App: "web", Pool: poolFor(t, app), Policy: &balance.RoundRobin{}, Cache: cache}}})
	status := func(path string, hdr ...string) (string, string) {
		req := mustReq(t, "GET", url+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, body := getBody(t, req)
		return res.Header.Get("X-Cache-Status"), body
	}
	check := func(path, want, wantBody string, hdr ...string) {
		t.Helper()
		got, body := status(path, hdr...)
		if got != want || (wantBody != "" && body != wantBody) {
			t.Errorf("GET %s: %s %q; want %s %q", path, got, body, want, wantBody)
		}
	}
	check("/a", "MISS", "answer 1")
	check("/a", "HIT", "answer 1")
	check("/a", "BYPASS", "answer 2", "Authorization", "Bearer x")
	check("/missing", "MISS", "")
	check("/missing", "HIT", "")
	check("/private", "MISS", "")
	check("/private", "MISS", "") // never stored

	// Concurrent misses collapse into one upstream request.
	calls.Store(0)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { status("/slow") })
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("10 concurrent misses made %d upstream requests; want 1", n)
	}

	// An expired copy is served when the refresh fails.
	_, first := status("/short")
	time.Sleep(1100 * time.Millisecond)
	failing.Store(true)
	check("/short", "STALE", first)
	failing.Store(false)
	check("/short", "EXPIRED", "")
}

func TestServiceOf(t *testing.T) {
	tests := []struct{ prefix, path, service, rest string }{
		{"/api", "/api/users/7", "users", "/7"},
		{"/api", "/api/users", "users", "/"},
		{"/api/", "/api/users/a/b", "users", "/a/b"},
		{"/", "/orders/1", "orders", "/1"},
		{"/api", "/api/", "", "/"},
	}
	for _, tc := range tests {
		if s, r := serviceOf(tc.prefix, tc.path); s != tc.service || r != tc.rest {
			t.Errorf("serviceOf(%q, %q) = %q, %q; want %q, %q", tc.prefix, tc.path, s, r, tc.service, tc.rest)
		}
	}
}
