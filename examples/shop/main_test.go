package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no service", nil, map[string]string{"PORT": "1"}, "usage: shop users|products|orders|payments"},
		{"unknown service", []string{"carts"}, map[string]string{"PORT": "1"}, `unknown service "carts"`},
		{"two services", []string{"users", "orders"}, map[string]string{"PORT": "1"}, "usage:"},
		{"no PORT", []string{"users"}, nil, "PORT is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(tc.args, func(k string) string { return tc.env[k] }, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// The program as herd runs it: it answers /health once started and, on
// SIGTERM, finishes the request in flight before it exits 0.
func TestRunServesAndStopsOnSIGTERM(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	// worker.Listen and the monitor's labels read the process's own
	// environment, as under herd; run's getenv the rest.
	t.Setenv("PORT", port)
	t.Setenv("HERD_APP", "products")
	t.Setenv("HERD_INSTANCE", "3")
	env := map[string]string{"PORT": port, "SHOP_DATA": t.TempDir()}
	var stderr syncBuffer
	exited := make(chan int, 1)
	go func() { exited <- run([]string{"products"}, func(k string) string { return env[k] }, &stderr) }()

	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(base + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case code := <-exited:
			t.Fatalf("run exited with %d before serving: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /health within 20 s: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, body := call(t, "GET", base+"/health", "")
	if status != 200 || !strings.Contains(string(body), `"service":"products"`) {
		t.Errorf("/health: %d %s", status, body)
	}

	// The service's monitor, at /metrics of its own port, and only there.
	res, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(raw)
	for _, want := range []string{
		`herd_monitor_heap_bytes{app="products",instance="3"}`,
		`herd_monitor_goroutines{app="products",instance="3"}`,
		`herd_monitor_rss_bytes{app="products",instance="3"}`,
		`herd_monitor_sched_latency_p99_seconds{app="products",instance="3"}`,
	} {
		if res.StatusCode != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics: %d, lacks %s:\n%s", res.StatusCode, want, metrics)
		}
	}
	// httpkit's stack answered it: a request id and helmet's headers.
	if res.Header.Get("X-Request-Id") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("X-Frame-Options") == "" {
		t.Errorf("/metrics headers %v; want httpkit's X-Request-Id, X-Content-Type-Options and X-Frame-Options", res.Header)
	}
	// As herd's gateway would pass /products/metrics on: refused.
	refused := do(t, "GET", base+"/products/metrics", "", nil, "X-Forwarded-For", "203.0.113.9")
	check{403, "", "not through a proxy"}.verify(t, refused.status, refused.body)

	// A request in flight: its body arrives in two parts, the second after
	// the SIGTERM.
	slowBody, bodyRest := io.Pipe()
	answered := make(chan int, 1)
	go func() {
		res, err := http.Post(base+"/products", "application/json", slowBody)
		if err != nil {
			t.Errorf("the request in flight failed: %v", err)
			answered <- 0
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	fmt.Fprint(bodyRest, `{"name":"Slow lamp",`)
	time.Sleep(200 * time.Millisecond)

	// run's signal.NotifyContext is in place, since it serves: the signal
	// goes to run, not to the test process's default handler.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	fmt.Fprint(bodyRest, `"price_cents":1500}`)
	bodyRest.Close()
	if status := <-answered; status != http.StatusCreated {
		t.Errorf("the request in flight at SIGTERM got %d, want 201", status)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15 s of SIGTERM")
	}
	for _, want := range []string{"msg=listening", "msg=stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q: %s", want, stderr.String())
		}
	}
}

// syncBuffer is a bytes.Buffer the service's logger and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
