package proxy

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/balance"
)

// TestMalformedRequestsNeverReachAnInstance sends broken requests over a raw
// connection to a server configured as herd's public one.
func TestMalformedRequestsNeverReachAnInstance(t *testing.T) {
	var reached atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer app.Close()
	pool := balance.NewPool("web", 1, time.Minute)
	pool.Add(&balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://")})
	h, err := testNew(Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}, MaxBody: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	front := newFront(t, h, func(s *http.Server) {
		s.MaxHeaderBytes = 4 << 10
		s.ReadHeaderTimeout = 2 * time.Second
	})

	tests := []struct {
		name string
		raw  string
		want int
	}{
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400},
		{"negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"oversized headers", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", 431},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"garbage request line", "HELLO\r\n\r\n", 400},
		{"unknown Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Write([]byte(tc.raw))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("status %d; want %d", res.StatusCode, tc.want)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d malformed requests reached the instance; want 0", n)
	}
}

// TestContentLengthWithChunked: a request framed both ways is how requests
// are smuggled. The fast path refuses it with 400, as NGINX ≥ 1.21.1 does.
// net/http drops the Content-Length (RFC 9112 §6.3), so the instance
// receives one consistent framing, and cannot be told apart by a handler;
// connections that the fast path has handed to net/http get that.
func TestContentLengthWithChunked(t *testing.T) {
	got := make(chan string, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- strings.Join(r.Header["Content-Length"], ",") + "|" + strings.Join(r.TransferEncoding, ",")
	}))
	defer app.Close()
	pool := balance.NewPool("web", 1, time.Minute)
	pool.Add(&balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://")})
	h, _ := testNew(Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}}}})
	front := newFront(t, h, nil)
	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if frontPath == "fast" {
		if res.StatusCode != http.StatusBadRequest || !res.Close {
			t.Errorf("status %d, close %v; want 400 and the connection closed", res.StatusCode, res.Close)
		}
		select {
		case framing := <-got:
			t.Errorf("the instance got the request (%s)", framing)
		default:
		}
		return
	}
	if framing := <-got; framing != "|chunked" && framing != "5|" {
		t.Errorf("the instance saw Content-Length|Transfer-Encoding = %q; want one framing only", framing)
	}
}

// FuzzServeHTTP feeds arbitrary paths and headers through routing, header
// rewriting, limits and error answers. The pool is empty, so no request
// leaves the process: every answer is herd's own and must be JSON.
func FuzzServeHTTP(f *testing.F) {
	f.Add("/", "X-Forwarded-For", "1.2.3.4", "")
	f.Add("/api/../x", "X-Real-IP", "::1", "sid=1")
	f.Add("/static/%2e%2e/etc", "Host", "a:b:c", "")
	f.Add("//", "X-Request-Id", "\x00", "a=b; c")
	pool := balance.NewPool("web", 1, time.Minute)
	h, err := testNew(Options{
		Routes: []Route{
			{Path: "/", App: "web", Pool: pool, Policy: balance.Rendezvous{}, HashKey: "cookie:sid", QueueTimeout: time.Nanosecond, StickyCookie: "s"},
			{Path: "/api", App: "web", Pool: pool, Policy: &balance.LeastConn{}, HashKey: "header:X-User", QueueTimeout: time.Nanosecond},
			{Path: "/static", Files: Static(f.TempDir(), "/static", time.Hour)},
		},
		TrustedProxies: nil,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, name, value, cookie string) {
		req, err := http.NewRequest("GET", "http://herd.test/", nil)
		if err != nil {
			t.Fatal(err) // a constant URL: never
		}
		req.URL.Path = path
		req.RequestURI = path
		req.RemoteAddr = "192.0.2.1:1234"
		if name != "" && !strings.ContainsAny(name, " \t\r\n:") {
			req.Header.Set(name, value)
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 304, 400, 404, 405, 503:
		default:
			t.Fatalf("status %d for %q", rec.Code, path)
		}
		if rec.Code != 200 && rec.Code != 304 {
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["reason"] == nil {
				t.Fatalf("answer %d is not JSON with a reason: %q", rec.Code, rec.Body.String())
			}
		}
	})
}
