package e2e

import (
	"net/http"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestSoakRestartsDoNotGrowHerd replaces instances every few seconds for
// HERD_SOAK (default 20s; bench/README.md records a 10-minute run) under a
// light load — a rolling reload every 2 s and a kill -9 of one instance
// every 5 s — and checks that herd's goroutines, open files and memory come
// back to where they were: no leak per restart.
func TestSoakRestartsDoNotGrowHerd(t *testing.T) {
	soak := 20 * time.Second
	if s := os.Getenv("HERD_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("HERD_SOAK=%q: %v", s, err)
		}
		soak = d
	}
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
    instances: 4
    ready: {http: /health}
    restart_delay: 50ms
    max_restarts: 1000000
routes:
  - path: /
    to: web
    queue_timeout: 5s
`)
	pid := h.cmd.Process.Pid
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // light steady load, so the proxy paths run too
		defer close(done)
		reload := time.NewTicker(2 * time.Second)
		defer reload.Stop()
		kill := time.NewTicker(5 * time.Second)
		defer kill.Stop()
		for {
			select {
			case <-stop:
				return
			case <-reload.C:
				if out, err := h.cli("reload", "web"); err != nil {
					t.Errorf("reload during the soak: %v\n%s", err, out)
				}
			case <-kill.C:
				if pids := h.pids(); len(pids) > 0 {
					syscall.Kill(pids[0], syscall.SIGKILL)
				}
			case <-time.After(20 * time.Millisecond):
			}
			if res, err := http.Get("http://" + h.public + "/"); err == nil {
				res.Body.Close()
			}
		}
	}()
	time.Sleep(5 * time.Second) // warm up: pools, buffers, first restarts
	g0, f0, r0 := h.footprint(pid)
	time.Sleep(soak)
	close(stop)
	<-done
	time.Sleep(2 * time.Second)
	g1, f1, r1 := h.footprint(pid)
	restarts := 0
	for _, in := range h.status()["web"] {
		restarts += in.Restarts
	}
	t.Logf("soak %s, %d restarts: goroutines %d → %d, open files %d → %d, RSS %.1f → %.1f MB",
		soak, restarts, g0, g1, f0, f1, float64(r0)/(1<<20), float64(r1)/(1<<20))
	if restarts < int(soak/(2*time.Second)) { // a reload every 2 s replaces 4 instances
		t.Errorf("only %d restarts in %s; the soak did not restart instances", restarts, soak)
	}
	if g1 > g0+20 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if f1 > f0+10 {
		t.Errorf("open files grew from %d to %d", f0, f1)
	}
	if r1 > r0+16<<20 {
		t.Errorf("RSS grew from %d to %d bytes", r0, r1)
	}
}

var goroutinesRE = regexp.MustCompile(`(?m)^go_goroutines (\d+)`)

// footprint returns herd's goroutines (from /metrics), open file descriptors and RSS.
func (h *herd) footprint(pid int) (goroutines, fds int, rss int64) {
	h.t.Helper()
	code, body := get(h.t, "http://"+h.admin+"/metrics")
	m := goroutinesRE.FindSubmatch(body)
	if code != 200 || m == nil {
		h.t.Fatalf("/metrics = %d without go_goroutines:\n%.2000s", code, body)
	}
	goroutines, _ = strconv.Atoi(string(m[1]))
	entries, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(status); m != nil {
		kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
		rss = kb << 10
	}
	return goroutines, len(entries), rss
}
