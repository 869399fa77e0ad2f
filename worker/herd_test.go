package worker_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests build herd and a tiny app that uses worker, and run the app
// under the real herd in both modes.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries builds cmd/herd and testdata/app once per test binary.
func binaries(t *testing.T) (herd, app string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "worker-test-")
		if buildErr != nil {
			return
		}
		for bin, pkg := range map[string]string{"herd": "../cmd/herd", "app": "./testdata/app"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, bin), pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("building %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "herd"), filepath.Join(buildDir, "app")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// herdProc is a running `herd up`.
type herdProc struct {
	t      *testing.T
	bin    string
	config string
	admin  string
	public string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startHerd writes herd.yaml (listen and admin on free ports, then body
// with APP for the app's path) and runs herd up until every instance is
// ready. It is stopped at the end of the test.
func startHerd(t *testing.T, body string) *herdProc {
	t.Helper()
	herd, app := binaries(t)
	dir := t.TempDir()
	admin, public := freeAddr(t), freeAddr(t)
	text := fmt.Sprintf("listen: %s\nadmin: %s\n%s", public, admin, strings.ReplaceAll(body, "APP", app))
	config := filepath.Join(dir, "herd.yaml")
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &herdProc{t: t, bin: herd, config: config, admin: admin, public: public, out: &syncBuffer{}, exited: make(chan struct{})}
	h.cmd = exec.Command(herd, "up", "-f", config)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(30 * time.Second):
			h.cmd.Process.Kill()
			<-h.exited
		}
		if t.Failed() {
			t.Logf("herd output:\n%s", h.out.String())
		}
	})
	h.waitFor(15*time.Second, "every instance ready", func() bool {
		apps := h.status()
		if len(apps) == 0 {
			return false
		}
		for _, ins := range apps {
			if len(ins) == 0 {
				return false // not spawned yet
			}
			for _, in := range ins {
				if in.State != "ready" {
					return false
				}
			}
		}
		return true
	})
	return h
}

type instance struct {
	State string `json:"state"`
	Pid   int    `json:"pid"`
}

// status is herd's /status: app name → instances, or nil before it answers.
func (h *herdProc) status() map[string][]instance {
	res, err := http.Get("http://" + h.admin + "/status")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var body struct {
		Apps []struct {
			Name      string     `json:"name"`
			Instances []instance `json:"instances"`
		} `json:"apps"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil
	}
	out := map[string][]instance{}
	for _, a := range body.Apps {
		out[a.Name] = a.Instances
	}
	return out
}

// waitFor polls cond until it holds; herd exiting first fails the test.
func (h *herdProc) waitFor(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-h.exited:
			h.t.Fatalf("herd exited while waiting for %s:\n%s", what, h.out.String())
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s:\n%s", timeout, what, h.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type who struct {
	Pid  int    `json:"pid"`
	Port string `json:"port"`
}

// fetch GETs url on a fresh connection (no retries) and reads all of it.
func fetch(url string) (who, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	res, err := client.Get(url)
	if err != nil {
		return who{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return who{}, fmt.Errorf("reading %s: %w (got %q)", url, err, body)
	}
	if res.StatusCode != 200 {
		return who{}, fmt.Errorf("GET %s: %d %s", url, res.StatusCode, body)
	}
	var w who
	if err := json.Unmarshal(body, &w); err != nil || w.Pid == 0 {
		return who{}, fmt.Errorf("GET %s: body %q", url, body)
	}
	return w, nil
}

// slowRequest starts GET url/slow?ms=ms and waits until the app has it.
func (h *herdProc) slowRequest(base string, ms int) <-chan error {
	h.t.Helper()
	before := strings.Count(h.out.String(), "slow start")
	done := make(chan error, 1)
	go func() {
		_, err := fetch(fmt.Sprintf("%s/slow?ms=%d", base, ms))
		done <- err
	}()
	h.waitFor(10*time.Second, "the slow request to reach the app", func() bool {
		return strings.Count(h.out.String(), "slow start") > before
	})
	return done
}

func TestUnderHerdSharedSocket(t *testing.T) {
	shared := freeAddr(t)
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: APP
    mode: shared_socket
    listen: %s
    instances: 2
    ready: notify
    kill_timeout: 6s
    env: {HERD_KILL_TIMEOUT: 6s}
`, shared))
	pids := map[int]bool{}
	for _, in := range h.status()["web"] {
		pids[in.Pid] = true
	}
	if len(pids) != 2 {
		t.Fatalf("instances %v; want 2 ready", h.status())
	}
	// Both instances accept on the one socket herd passed (which one gets
	// a connection is the kernel's choice, so ask until both answered).
	seen := map[int]int{}
	for i := 0; i < 500 && len(seen) < 2; i++ {
		w, err := fetch("http://" + shared + "/")
		if err != nil {
			t.Fatal(err)
		}
		if !pids[w.Pid] {
			t.Fatalf("answer from pid %d, not one of herd's %v", w.Pid, pids)
		}
		seen[w.Pid]++
	}
	if len(seen) != 2 {
		t.Errorf("answers by pid %v; want both instances to accept on the shared socket", seen)
	}

	// herd stop: SIGTERM to each instance; the one holding a slow request
	// finishes it before it exits.
	slow := h.slowRequest("http://"+shared, 1500)
	if out, err := exec.Command(h.bin, "stop", "web", "--config", h.config).CombinedOutput(); err != nil {
		t.Fatalf("herd stop: %v\n%s", err, out)
	}
	if err := <-slow; err != nil {
		t.Errorf("request in flight during herd stop: %v; want it answered in full", err)
	}
	h.waitFor(10*time.Second, "both instances to say they drained", func() bool {
		return strings.Count(h.out.String(), "app drained") == 2
	})
	if n := strings.Count(h.out.String(), `exit="exit status 0"`); n != 2 {
		t.Errorf("%d instances exited with status 0; want 2:\n%s", n, h.out.String())
	}
}

func TestUnderHerdPort(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: APP
    ready: notify
routes:
  - path: /
    to: web
`)
	ins := h.status()["web"]
	if len(ins) != 1 || ins[0].State != "ready" {
		t.Fatalf("instances %v; want one ready (READY=1 on NOTIFY_SOCKET)", ins)
	}
	// Find the instance's own port through herd's proxy, then hold a slow
	// request on it directly: herd's drain cannot see that one, so only the
	// app's own drain can save it.
	w, err := fetch("http://" + h.public + "/")
	if err != nil {
		t.Fatal(err)
	}
	if w.Pid != ins[0].Pid || w.Port == "" {
		t.Fatalf("answer %+v; want pid %d and its PORT", w, ins[0].Pid)
	}
	slow := h.slowRequest("http://127.0.0.1:"+w.Port, 1500)
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-slow; err != nil {
		t.Errorf("request in flight when herd got SIGTERM: %v; want it answered in full", err)
	}
	select {
	case <-h.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("herd still running 15 s after SIGTERM")
	}
	if !strings.Contains(h.out.String(), "app drained") || !strings.Contains(h.out.String(), `exit="exit status 0"`) {
		t.Errorf("the app did not drain and exit 0:\n%s", h.out.String())
	}
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+w.Port, time.Second); err == nil {
		t.Errorf("the instance's port still accepts after the stop")
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
