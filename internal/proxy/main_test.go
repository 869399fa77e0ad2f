package proxy

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// frontPath is how the tests' fronts serve: "net/http" alone, or "fast"
// (Server, with net/http as its fallback).
var frontPath = "net/http"

// TestMain runs every test on both paths, so the fast path is held to
// everything the net/http path does. HERD_PROXY_PATH=fast or net/http runs
// one; fuzzing runs once.
func TestMain(m *testing.M) {
	flag.Parse()
	paths := []string{"net/http", "fast"}
	if p := os.Getenv("HERD_PROXY_PATH"); p != "" {
		paths = []string{p}
	}
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		paths = paths[:1]
	}
	code := 0
	for _, p := range paths {
		frontPath = p
		if len(paths) > 1 && testing.Verbose() {
			fmt.Printf("=== proxy path: %s\n", p)
		}
		if c := m.Run(); c != 0 {
			fmt.Printf("FAIL on the %s path\n", p)
			code = c
		}
	}
	os.Exit(code)
}

// newFront serves h as herd's public listener does, on the path under
// test; configure, if set, tunes the server (timeouts, header limits).
func newFront(t testing.TB, h *Handler, configure func(*http.Server)) *httptest.Server {
	t.Helper()
	paths := logPaths(h)
	t.Cleanup(func() {
		fast := 0
		for _, p := range paths.all() {
			if p == pathFast {
				fast++
			}
		}
		if frontPath != "fast" && fast > 0 {
			t.Errorf("%d requests took the fast path behind a plain net/http server", fast)
		}
		t.Logf("%s front: %d of %d requests on the fast path", frontPath, fast, len(paths.all()))
	})
	srv := httptest.NewUnstartedServer(h)
	if configure != nil {
		configure(srv.Config)
	}
	if frontPath != "fast" {
		srv.Start()
		t.Cleanup(srv.Close)
		return srv
	}
	fast := &Server{Handler: func() *Handler { return h }, Fallback: srv.Config}
	go func() { _ = fast.Serve(srv.Listener) }()
	srv.URL = "http://" + srv.Listener.Addr().String()
	t.Cleanup(func() { fast.Close() })
	return srv
}
