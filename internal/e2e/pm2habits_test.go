package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
)

// PM2 habits under herd: wait_ready apps in both modes become ready on
// process.send('ready') (and not before), and a worker that serves no port
// stays up past listen_timeout without a route or a pool.
func TestWaitReadyAndWorkersFromNode(t *testing.T) {
	node := testenv.Tool(t, "node")
	shared := freeAddr(t)
	waitReady, _ := filepath.Abs("testdata/node/waitready.js")
	worker, _ := filepath.Abs("testdata/node/worker.js")
	h := startHerd(t, fmt.Sprintf(`
apps:
  api:
    command: %[1]s %[2]s
    wait_ready: true
    env: {WARMUP_MS: "400"}
    instances: 2
  edge:
    command: %[1]s %[2]s
    mode: shared_socket
    listen: %[3]s
    wait_ready: true
    env: {WARMUP_MS: "400"}
  queue:
    command: %[1]s %[4]s
    ready: none
    listen_timeout: 500ms
    min_uptime: 200ms
    restart_delay: 10
routes:
  - path: /
    to: api
`, node, waitReady, shared, worker))

	if want := "restart_delay: 10 is 10ms"; !strings.Contains(h.out.String(), want) {
		t.Errorf("herd up did not warn %q:\n%s", want, h.out.String())
	}
	// The banner names the shared socket's own address and the worker.
	waitFor(t, 5*time.Second, "the banner", func() bool { return strings.Contains(h.out.String(), "herd is serving 3 apps") })
	for _, want := range []string{"  edge: on http://" + shared + " (shared socket", "  queue: worker (serves no port)"} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, h.out.String())
		}
	}

	// Ready means warmed up: no 503 from an instance that had not yet sent 'ready'.
	for _, url := range []string{"http://" + h.public + "/", "http://" + shared + "/"} {
		for range 20 {
			if code, body := get(t, url); code != http.StatusOK {
				t.Fatalf("GET %s = %d %s; want 200 once herd calls the instance ready", url, code, body)
			}
		}
	}

	// The worker outlives listen_timeout (500ms) several times over, unrestarted.
	first := h.status()["queue"][0]
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		in := h.status()["queue"][0]
		if in.State != "ready" || in.Pid != first.Pid || in.Restarts != 0 {
			t.Fatalf("worker %+v; want the first process (%d), ready, never restarted", in, first.Pid)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// /services lists it as a worker, with no address to send to.
	var body struct {
		Services []struct {
			Name      string `json:"name"`
			Kind      string `json:"kind"`
			Instances []struct {
				URL string `json:"url"`
			} `json:"instances"`
		} `json:"services"`
	}
	h.getJSON("http://"+h.admin+"/services", &body)
	services := body.Services
	found := false
	for _, s := range services {
		if s.Name != "queue" {
			continue
		}
		found = true
		if s.Kind != "worker" || len(s.Instances) != 1 || s.Instances[0].URL != "" {
			t.Errorf("/services has queue as %+v; want kind worker, one instance, no URL", s)
		}
	}
	if !found {
		t.Errorf("/services lacks the worker: %+v", services)
	}
}
