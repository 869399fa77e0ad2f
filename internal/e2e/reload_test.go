package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// herdCLI runs a herd subcommand against h's config.
func (h *herd) cli(args ...string) (string, error) {
	full := append([]string{args[0], "--config", h.dir + "/herd.yaml"}, args[1:]...)
	if h.socket != "" {
		full = append(full, "--socket", h.socket)
	}
	cmd := exec.Command(herdBin, full...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rewriteConfig replaces old with new in h's herd.yaml.
func (h *herd) rewriteConfig(t *testing.T, old, new string) {
	t.Helper()
	path := h.dir + "/herd.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("herd.yaml lacks %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(data), old, new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// load sends GETs and POSTs from 8 clients until stop is closed, counting
// failures (transport errors and non-2xx) and the greetings answered.
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	mu         sync.Mutex
	greetings  map[string]int
	stop       chan struct{}
	wg         sync.WaitGroup
}

// startLoad sends GETs of /slow and POSTs to /echo from 8 keep-alive
// clients that never resend a request (rawClient), reading every body to
// the end and checking it; url is http://host:port.
func startLoad(url string) *load {
	l := &load{greetings: map[string]int{}, stop: make(chan struct{})}
	addr := strings.TrimPrefix(url, "http://")
	for w := range 8 {
		l.wg.Go(func() {
			c := newRawClient(addr)
			defer c.close()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				var code int
				var body []byte
				var err error
				payload := fmt.Sprintf("payload %d %d", w, i)
				if (w+i)%2 == 0 {
					code, body, err = c.do("GET", "/slow?ms=20", "")
				} else {
					code, body, err = c.do("POST", "/echo", payload)
				}
				if err != nil {
					l.fail(err.Error())
					continue
				}
				if code/100 != 2 {
					l.fail(fmt.Sprintf("%d %s", code, body))
					continue
				}
				if (w+i)%2 == 0 {
					var who whoAmI
					if err := json.Unmarshal(body, &who); err != nil || who.Greeting == "" {
						l.fail("GET /slow answered " + string(body))
						continue
					}
					l.mu.Lock()
					l.greetings[who.Greeting]++
					l.mu.Unlock()
				} else if string(body) != payload {
					l.fail("echo answered " + string(body))
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.firstErr.CompareAndSwap(nil, msg)
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed (first: %v); want 0", n, n+l.ok.Load(), l.firstErr.Load())
	}
	if l.ok.Load() < 50 {
		t.Errorf("only %d requests succeeded; the load did not run", l.ok.Load())
	}
}

// proxyPaths are the two ways herd forwards a request: its fast HTTP/1.1
// path and Go's net/http; load tests run on both.
var proxyPaths = []struct{ name, server string }{
	{"fast path", ""},
	{"net/http path", "server: {fast_path: false}\n"},
}

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	for _, path := range proxyPaths {
		for _, instances := range []int{2, 4} {
			t.Run(fmt.Sprintf("%s, %d instances", path.name, instances), func(t *testing.T) {
				testReloadUnderLoad(t, path.server, instances)
			})
		}
	}
}

func testReloadUnderLoad(t *testing.T, server string, instances int) {
	h := startHerd(t, server+fmt.Sprintf(`
apps:
  web:
    command: TESTAPP --greeting v1
    instances: %d
    ready: {http: /health}
routes:
  - path: /
    to: web
`, instances))
	before := h.pids()
	l := startLoad("http://" + h.public)
	time.Sleep(300 * time.Millisecond)

	// Roll out a new version: the reload re-reads herd.yaml.
	h.rewriteConfig(t, "--greeting v1", "--greeting v2")
	out, err := h.cli("reload", "web")
	if err != nil {
		t.Fatalf("herd reload: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	l.finish(t)

	after := h.pids()
	if len(after) != instances {
		t.Fatalf("after reload %d instances run; want %d", len(after), instances)
	}
	for _, p := range after {
		for _, q := range before {
			if p == q {
				t.Errorf("pid %d survived the reload", p)
			}
		}
	}
	for _, p := range before {
		if alive(p) {
			t.Errorf("old instance %d still runs after the reload", p)
		}
	}
	if code, body := get(t, "http://"+h.public+"/"); code != 200 || !strings.Contains(string(body), `"greeting":"v2"`) {
		t.Errorf("after reload GET / = %d %s; want the v2 greeting", code, body)
	}
	t.Logf("%d requests during the reload, 0 failed; greetings %v", l.ok.Load(), l.greetings)
}

func TestReloadToBrokenVersionKeepsServing(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP --greeting v1
    instances: 2
    ready: {http: /health}
    listen_timeout: 1s
routes:
  - path: /
    to: web
`)
	before := h.pids()
	l := startLoad("http://" + h.public)
	time.Sleep(200 * time.Millisecond)
	h.rewriteConfig(t, "--greeting v1", "--crash")
	out, err := h.cli("reload", "web")
	if err == nil || !strings.Contains(out, "old instances kept serving") {
		t.Fatalf("reload to a crashing version: %v\n%s\nwant a failure saying the old instances kept serving", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	l.finish(t)
	after := h.pids()
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("instances %v after the failed reload; want the old %v", after, before)
	}
	if l.greetings["v1"] == 0 || len(l.greetings) != 1 {
		t.Errorf("greetings during the failed reload: %v; want v1 only", l.greetings)
	}
}

func TestControlCommands(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
    instances: 1
routes:
  - path: /
    to: web
`)
	out, err := h.cli("status")
	if err != nil || !strings.Contains(out, "APP") || !strings.Contains(out, "ready") {
		t.Fatalf("herd status: %v\n%s", err, out)
	}
	if out, err := h.cli("scale", "web", "+2"); err != nil || !strings.Contains(out, "web: 3 instances") {
		t.Fatalf("herd scale +2: %v\n%s", err, out)
	}
	if n := len(h.pids()); n != 3 {
		t.Fatalf("after scale +2: %d instances; want 3", n)
	}
	if out, err := h.cli("scale", "web", "-5"); err == nil || !strings.Contains(out, "the least is 0") {
		t.Errorf("herd scale -5: %v\n%s; want a refusal", err, out)
	}
	if out, err := h.cli("stop", "web"); err != nil {
		t.Fatalf("herd stop: %v\n%s", err, out)
	}
	if n := len(h.pids()); n != 0 {
		t.Errorf("after stop: %d instances run; want 0", n)
	}
	if out, err := h.cli("start", "web"); err != nil {
		t.Fatalf("herd start: %v\n%s", err, out)
	}
	if out, err := h.cli("logs", "web", "--lines", "5"); err != nil || !strings.Contains(out, "web[0] testapp") {
		t.Errorf("herd logs: %v\n%s", err, out)
	}
	if out, err := h.cli("describe", "web"); err != nil || !strings.Contains(out, `"instances": 3`) {
		t.Errorf("herd describe: %v\n%s", err, out)
	}
	if out, err := h.cli("reload", "nope"); err == nil || !strings.Contains(out, `no app named "nope"`) {
		t.Errorf("herd reload nope: %v\n%s", err, out)
	}
	// herd logs -f follows new lines until interrupted.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	follow := exec.CommandContext(ctx, herdBin, "logs", "web", "-f", "--lines", "0", "--config", h.dir+"/herd.yaml")
	var buf syncBuffer
	follow.Stdout = &buf
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	h.cli("signal", "SIGTERM", "web") // each instance logs as it stops, then herd restarts it
	waitFor(t, 2500*time.Millisecond, "herd logs -f to show the new lines", func() bool {
		return strings.Contains(buf.String(), "stopped gracefully")
	})
	cancel()
	follow.Wait()

	// The socket is the owner's alone, and a second herd on the same config is refused.
	st, err := os.Stat(h.dir + "/.herd/herd.sock")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("control socket: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	second := exec.Command(herdBin, "up", "-f", h.dir+"/herd.yaml")
	out2, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out2), "in use") && !strings.Contains(string(out2), "already running") {
		t.Errorf("second herd up: %v\n%s; want a refusal", err, out2)
	}
}

// TestInterpreterAndEnvSets runs a script through an interpreter with
// interpreter_args, and picks an env_NAME set with `herd up --env`.
func TestInterpreterAndEnvSets(t *testing.T) {
	path, public, admin := writeConfig(t, `
apps:
  web:
    command: run.sh --greeting
    interpreter: /bin/sh
    interpreter_args: -e
    env: {GREETING: dev, SUFFIX: "!"}
    env_production: {GREETING: prod}
routes:
  - path: /
    to: web
`)
	script := "exec " + testappBin + ` "$1" "$GREETING$SUFFIX"` + "\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "run.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &herd{t: t, dir: filepath.Dir(path), public: public, admin: admin, out: &syncBuffer{}, exited: make(chan struct{})}
	h.cmd = exec.Command(herdBin, "up", "-f", path, "--env", "production")
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.err = h.cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() { h.cmd.Process.Signal(syscall.SIGTERM); <-h.exited })
	h.waitHealthy(15 * time.Second)
	var who whoAmI
	h.getJSON("http://"+h.public+"/", &who)
	if who.Greeting != "prod!" {
		t.Errorf("greeting %q; want prod! (env_production over env, run by /bin/sh -e run.sh)", who.Greeting)
	}
	if out, err := exec.Command(herdBin, "up", "-f", path, "--env", "staging").CombinedOutput(); err == nil || !strings.Contains(string(out), "no app has an env_staging") {
		t.Errorf("herd up --env staging: %v\n%s; want a refusal", err, out)
	}
}
