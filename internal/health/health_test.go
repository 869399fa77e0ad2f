package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/balance"
)

func TestActiveHealth(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			t.Errorf("probed %s; want /health", r.URL.Path)
		}
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	pool := balance.NewPool("legacy", 1, time.Minute)
	b := &balance.Backend{Addr: strings.TrimPrefix(srv.URL, "http://")}
	pool.Add(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, pool, Check{Path: "/health", Interval: 20 * time.Millisecond, Passes: 2, Fails: 3}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	defer func() { cancel(); <-done }()

	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if !b.Healthy() {
		t.Fatal("a passing server was marked unhealthy")
	}
	failing.Store(true)
	waitUntil("the server to turn unhealthy", func() bool { return !b.Healthy() })
	// With every server down, a request waits the queue out, then learns why.
	_, err := pool.Pick(context.Background(), &balance.RoundRobin{}, nil, "", 50*time.Millisecond)
	if !errors.Is(err, balance.ErrAllDown) || !errors.Is(err, balance.ErrNoBackend) {
		t.Errorf("Pick with every server unhealthy: %v; want ErrAllDown", err)
	}
	failing.Store(false)
	waitUntil("the server to pass again", func() bool { return b.Healthy() })
	got, err := pool.Pick(context.Background(), &balance.RoundRobin{}, nil, "", time.Second)
	if err != nil || got != b {
		t.Errorf("after recovery Pick = %v, %v", got, err)
	}
}
