package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/balance"
)

// fastFront runs a Server for one route to the handler, with a fallback
// that counts what it is handed; it returns the address, the fallback's
// count and the instance's connection count.
func fastFront(t *testing.T, instance http.Handler) (addr string, fallbacks, instanceConns *atomic.Int64) {
	t.Helper()
	fallbacks, instanceConns = new(atomic.Int64), new(atomic.Int64)
	app := httptest.NewUnstartedServer(instance)
	app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			instanceConns.Add(1)
		}
	}
	app.Start()
	t.Cleanup(app.Close)
	addr = frontTo(t, strings.TrimPrefix(app.URL, "http://"), TransportOptions{}, func(s *http.Server) {
		proxy := s.Handler
		s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fallbacks.Add(1); proxy.ServeHTTP(w, r) })
	})
	return addr, fallbacks, instanceConns
}

// dialFront connects to addr for at most 10 seconds.
func dialFront(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, bufio.NewReader(conn)
}

// TestFastPathKeepsConnections: plain requests, pipelined on one client
// connection, all take the fast path and share one connection to the
// instance; a request the fast path does not take (HTTP/1.0) goes to the
// fallback with the bytes already read.
func TestFastPathKeepsConnections(t *testing.T) {
	addr, fallbacks, instanceConns := fastFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	conn, br := dialFront(t, addr)
	// Three requests in one write, then one the fast path hands over.
	io.WriteString(conn, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	for _, want := range []string{"/a", "/b", "/c"} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if string(body) != want || res.Header.Get("X-Request-Id") == "" || res.Header.Get("Date") == "" {
			t.Errorf("got %q %v; want %s with a request id and a date", body, res.Header, want)
		}
	}
	if n := fallbacks.Load(); n != 0 {
		t.Errorf("%d plain requests went to the fallback; want 0", n)
	}
	io.WriteString(conn, "GET /d HTTP/1.0\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if string(body) != "/d" || fallbacks.Load() != 1 {
		t.Errorf("HTTP/1.0: got %q with %d fallbacks; want /d through the fallback", body, fallbacks.Load())
	}
	if n := instanceConns.Load(); n > 2 {
		t.Errorf("the instance saw %d connections; want the fast path's one reused (and net/http's)", n)
	}
}

// TestFastPathShutdownWaitsForRequests: Shutdown lets a request in flight
// finish and closes idle connections.
func TestFastPathShutdownWaitsForRequests(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	defer app.Close()
	pool := balance.NewPool("web", 1, time.Minute)
	pool.Add(&balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://")})
	h, _ := testNew(Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}}}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &Server{Handler: func() *Handler { return h }, Fallback: &http.Server{Handler: h}}
	go srv.Serve(ln)
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if b := <-got; b != "done" {
		t.Errorf("the request in flight got %q; want done", b)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return once the request was done")
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("the idle connection is still open after Shutdown")
	}
}

// TestFastPathLatePipelinedRequest: a request that comes in while the one
// before it is with the instance is answered, though the connection waits
// for the next request without reading first (see flushAndWait).
func TestFastPathLatePipelinedRequest(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	addr, _, _ := fastFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}))
	// The fallback's IdleTimeout is a minute: a lost request shows as
	// dialFront's deadline.
	conn, br := dialFront(t, addr)
	for round := range 3 {
		io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-started
		io.WriteString(conn, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(20 * time.Millisecond) // it is in herd's socket buffer now
		release <- struct{}{}
		for _, want := range []string{"/slow", "/next"} {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, want, err)
			}
			body, _ := io.ReadAll(res.Body)
			if string(body) != want {
				t.Errorf("round %d: got %q; want %s", round, body, want)
			}
		}
	}
}

// frontTo runs a Server for one route to the instance at addr, with the
// fallback's timeouts set by configure.
func frontTo(t *testing.T, addr string, tr TransportOptions, configure func(*http.Server)) string {
	t.Helper()
	pool := balance.NewPool("web", 1, time.Minute)
	pool.Add(&balance.Backend{Addr: addr, App: "web"})
	h, err := testNew(Options{Routes: []Route{{Path: "/", App: "web", Pool: pool, Policy: &balance.RoundRobin{}, Transport: tr}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fallback := &http.Server{Handler: h, IdleTimeout: time.Minute}
	if configure != nil {
		configure(fallback)
	}
	srv := &Server{Handler: func() *Handler { return h }, Fallback: fallback}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// A head begun on a kept-alive connection must be whole within
// ReadHeaderTimeout, not the longer IdleTimeout.
func TestFastPathReadHeaderTimeoutAfterKeepAlive(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(app.Close)
	addr := frontTo(t, strings.TrimPrefix(app.URL, "http://"), TransportOptions{}, func(s *http.Server) {
		s.IdleTimeout, s.ReadHeaderTimeout = 5*time.Second, 300*time.Millisecond
	})
	conn, br := dialFront(t, addr)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(res.Body)
	io.WriteString(conn, "GET /slowloris HTTP/1.1\r\n") // never finished
	start := time.Now()
	br.ReadByte() // the connection ends
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("a partial head was kept %v; ReadHeaderTimeout is 300ms", waited.Round(time.Millisecond))
	}
}

// An instance that closes idle keep-alive connections by half-closing them
// (a FIN, then reading on) must not hang the request that finds such a
// connection in the pool: it goes again on a new connection.
func TestFastPathInstanceHalfClosesIdleConnections(t *testing.T) {
	const instanceIdle = 300 * time.Millisecond // well past sendThenReadIdle
	instance := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			c.SetReadDeadline(time.Now().Add(instanceIdle))
			if _, err := http.ReadRequest(br); err != nil {
				// Idle too long: a lingering close, as some servers do.
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				io.Copy(io.Discard, br)
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	addr := frontTo(t, instance, TransportOptions{}, nil)
	conn, br := dialFront(t, addr)
	for i := range 2 {
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(body) != "ok" {
			t.Errorf("request %d: %d %q; want 200 ok", i, res.StatusCode, body)
		}
		time.Sleep(instanceIdle + 200*time.Millisecond)
	}
}
