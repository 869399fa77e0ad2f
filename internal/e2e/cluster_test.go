package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

func TestDistributionAcrossThreeInstances(t *testing.T) {
	for _, policy := range []string{"round_robin", "least_conn", "random_two"} {
		t.Run(policy, func(t *testing.T) {
			h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP --greeting "hi there"
    instances: 3
    ready: {http: /health}
routes:
  - path: /
    to: web
    balance: %s
`, policy))
			const n = 300
			counts := map[int]int{}
			for range n {
				code, body := get(t, "http://"+h.public+"/")
				if code != http.StatusOK {
					t.Fatalf("GET / = %d %s; want 200", code, body)
				}
				var who whoAmI
				if err := json.Unmarshal(body, &who); err != nil {
					t.Fatal(err)
				}
				if who.Greeting != "hi there" {
					t.Fatalf("greeting = %q; want %q (command not split like a shell)", who.Greeting, "hi there")
				}
				counts[who.Pid]++
			}
			if len(counts) != 3 {
				t.Fatalf("requests reached %d instances (%v); want 3", len(counts), counts)
			}
			for pid, c := range counts {
				// Rotation policies split exactly; random_two within wide bounds.
				if c < n/3*6/10 {
					t.Errorf("instance %d got %d of %d requests; want about %d", pid, c, n, n/3)
				}
				if policy == "round_robin" && c != n/3 {
					t.Errorf("round_robin: instance %d got %d; want exactly %d", pid, c, n/3)
				}
			}
		})
	}
}

func TestKillInstanceUnderLoadLosesNoRequest(t *testing.T) {
	for _, path := range proxyPaths {
		t.Run(path.name, func(t *testing.T) { testKillInstanceUnderLoad(t, path.server) })
	}
}

func testKillInstanceUnderLoad(t *testing.T, server string) {
	h := startHerd(t, server+`
apps:
  web:
    command: TESTAPP
    instances: 3
    ready: {http: /health}
    restart_delay: 100ms
routes:
  - path: /
    to: web
`)
	before := h.status()["web"]
	victim := before[1].Pid

	// GETs only: a POST in flight on the killed instance was sent, so it is
	// not retried (herd cannot know whether it took effect).
	l := startLoadGET("http://" + h.public)
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A replacement becomes ready in slot 1 with a new pid.
	waitFor(t, 10*time.Second, "a replacement instance", func() bool {
		in := h.status()["web"][1]
		return in.State == "ready" && in.Pid != victim && in.Pid != 0
	})
	time.Sleep(500 * time.Millisecond)
	l.finish(t)
	after := h.status()["web"][1]
	if after.Restarts != 1 {
		t.Errorf("restarts of slot 1 = %d; want 1", after.Restarts)
	}
	if !strings.Contains(after.LastExit, "killed") {
		t.Errorf("last_exit = %q; want it to say killed", after.LastExit)
	}
	t.Logf("%d requests, %d failed; replacement pid %d", l.ok.Load(), l.failed.Load(), after.Pid)
}

func TestCrashLoopEndsErrored(t *testing.T) {
	h := startHerdNoWait(t, `
apps:
  web:
    command: TESTAPP --crash
    instances: 1
    restart_delay: 20ms
    min_uptime: 1s
    max_restarts: 3
routes:
  - path: /
    to: web
    queue_timeout: 300ms
`)
	waitFor(t, 20*time.Second, "the instance to be errored", func() bool {
		res, err := http.Get("http://" + h.admin + "/status")
		if err != nil {
			return false
		}
		res.Body.Close()
		ins := h.status()["web"]
		return len(ins) == 1 && ins[0].State == "errored"
	})
	in := h.status()["web"][0]
	if in.Restarts != 3 {
		t.Errorf("restarts = %d; want 3 (max_restarts) before errored", in.Restarts)
	}
	// It stays stopped: no more restarts.
	time.Sleep(500 * time.Millisecond)
	if again := h.status()["web"][0]; again.Restarts != in.Restarts || again.State != "errored" || again.Pid != 0 {
		t.Errorf("after errored: %+v; want it to stay errored with no process", again)
	}
	code, body := get(t, "http://"+h.public+"/")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"app":"web"`) {
		t.Errorf("GET / = %d %s; want 503 JSON naming app web", code, body)
	}
	hc, hbody := get(t, "http://"+h.admin+"/health")
	if hc != http.StatusServiceUnavailable || !strings.Contains(string(hbody), "web") {
		t.Errorf("/health = %d %s; want 503 naming web", hc, hbody)
	}
	if !strings.Contains(h.out.String(), "instance errored") {
		t.Errorf("herd's log does not say the instance errored:\n%s", h.out.String())
	}
}

func TestStopLeavesNoProcess(t *testing.T) {
	const cfg = `
apps:
  web:
    command: TESTAPP
    instances: 2
  api:
    command: TESTAPP --ignore-term
    instances: 2
    kill_timeout: 500ms
routes:
  - path: /
    to: web
  - path: /api
    to: api
`
	for _, tc := range []struct {
		name     string
		sig      syscall.Signal
		wantCode int // -1: killed, no exit status
	}{
		{"SIGTERM", syscall.SIGTERM, 0},
		{"SIGINT", syscall.SIGINT, 0},
		{"SIGKILL", syscall.SIGKILL, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHerd(t, cfg)
			pids := h.pids()
			if len(pids) != 4 {
				t.Fatalf("got %d instance pids; want 4", len(pids))
			}
			if err := h.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if code := h.waitExit(15 * time.Second); code != tc.wantCode {
				t.Errorf("herd exit code = %d; want %d\n%s", code, tc.wantCode, h.out.String())
			}
			waitFor(t, 5*time.Second, "every instance to be gone", func() bool {
				for _, pid := range pids {
					if alive(pid) {
						return false
					}
				}
				return true
			})
		})
	}
}

func TestGracefulStopFinishesInFlightRequest(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
    instances: 1
routes:
  - path: /
    to: web
`)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + h.public + "/slow?ms=1500")
		if err != nil {
			done <- result{err: err}
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		done <- result{code: res.StatusCode}
	}()
	time.Sleep(300 * time.Millisecond)
	h.cmd.Process.Signal(syscall.SIGTERM)
	r := <-done
	if r.err != nil || r.code != http.StatusOK {
		t.Fatalf("in-flight request during stop: %d %v; want 200", r.code, r.err)
	}
	if code := h.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d; want 0", code)
	}
}

// A request in flight when herd stops, whose instance calls herd back on
// the way (a service calling another through the gateway), is answered:
// the instances keep their listener to herd until they have drained.
func TestStopAnswersNestedCallsInFlight(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
    instances: 2
routes:
  - path: /
    to: web
`)
	c := newRawClient(h.public)
	defer c.close()
	type answer struct {
		code int
		body string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		code, body, err := c.do("GET", "/nested?ms=800", "")
		done <- answer{code, string(body), err}
	}()
	waitFor(t, 5*time.Second, "the request to be in flight", func() bool {
		for _, in := range h.status()["web"] {
			if in.Inflight > 0 {
				return true
			}
		}
		return false
	})
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil || a.code != 200 || a.body != "nested 200\n" {
		t.Errorf("request in flight during the stop = %d %q %v; want 200 with its nested call answered 200", a.code, a.body, a.err)
	}
	if code := h.waitExit(20 * time.Second); code != 0 {
		t.Errorf("herd exited %d; want 0", code)
	}
}
