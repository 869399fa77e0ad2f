package e2e

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths of the binaries TestMain builds.
var herdBin, testappBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	herdBin = filepath.Join(dir, "herd")
	testappBin = filepath.Join(dir, "testapp")
	for bin, pkg := range map[string]string{herdBin: "../../cmd/herd", testappBin: "./testdata/testapp"} {
		args := []string{"build", "-o", bin}
		if raceEnabled && bin == herdBin {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, pkg)...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// herd is a running `herd up` child process.
type herd struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string
	public string // host:port
	admin  string
	out    *syncBuffer
	exited chan struct{}
	err    error
	socket string // --socket, when not beside the config
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeConfig writes a herd.yaml whose listen and admin are free ports,
// followed by body, in which TESTAPP stands for the test app's path.
func writeConfig(t *testing.T, body string) (path, public, admin string) {
	t.Helper()
	dir := t.TempDir()
	public, admin = freeAddr(t), freeAddr(t)
	text := fmt.Sprintf("listen: %s\nadmin: %s\n%s", public, admin, strings.ReplaceAll(body, "TESTAPP", testappBin))
	path = filepath.Join(dir, "herd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, public, admin
}

// startHerd runs `herd up` on a config made by writeConfig and waits until
// every instance is ready. The process is stopped at the end of the test.
func startHerd(t *testing.T, body string) *herd {
	t.Helper()
	h := startHerdNoWait(t, body)
	h.waitHealthy(15 * time.Second)
	// /health is 200 once every app has one ready instance; wait for all.
	h.waitAllReady()
	return h
}

// waitAllReady waits until every instance is ready.
func (h *herd) waitAllReady() {
	h.t.Helper()
	waitFor(h.t, 15*time.Second, "every instance to be ready", func() bool {
		apps := h.status()
		if len(apps) == 0 {
			return false // the admin listener is not up yet
		}
		for _, ins := range apps {
			if len(ins) == 0 {
				return false
			}
			for _, in := range ins {
				if in.State != "ready" {
					return false
				}
			}
		}
		return true
	})
}

func startHerdNoWait(t *testing.T, body string) *herd {
	t.Helper()
	// freeAddr's ports are free when chosen, but another process may take
	// one before herd binds it; then herd refuses to start (exit 2), and
	// we try again with new ports.
	for attempt := 1; ; attempt++ {
		h := launchHerd(t, body)
		if !h.lostPortRace() || attempt == 3 {
			return h
		}
		t.Logf("a port was taken before herd bound it; retrying:\n%s", h.out.String())
	}
}

func launchHerd(t *testing.T, body string) *herd {
	t.Helper()
	path, public, admin := writeConfig(t, body)
	h := &herd{t: t, dir: filepath.Dir(path), public: public, admin: admin}
	h.start(exec.Command(herdBin, "up", "-f", path))
	return h
}

// start runs cmd (a `herd up`) as h's process; at the end of the test it is
// stopped with SIGTERM (SIGKILL after 30 s) and its output shown if the test
// failed.
func (h *herd) start(cmd *exec.Cmd) {
	h.t.Helper()
	h.cmd, h.out, h.exited = cmd, &syncBuffer{}, make(chan struct{})
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() { h.err = h.cmd.Wait(); close(h.exited) }()
	h.t.Cleanup(func() {
		h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(30 * time.Second):
			h.cmd.Process.Kill()
			<-h.exited
		}
		if h.t.Failed() {
			h.t.Logf("herd output:\n%s", h.out.String())
		}
	})
}

// lostPortRace waits until herd's admin listener accepts (false) or herd
// exited because a port was already in use (true).
func (h *herd) lostPortRace() bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-h.exited:
			return strings.Contains(h.out.String(), "already in use")
		default:
		}
		if c, err := net.DialTimeout("tcp", h.admin, time.Second); err == nil {
			c.Close()
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// waitHealthy waits until /health on the admin listener answers 200.
func (h *herd) waitHealthy(timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-h.exited:
			h.t.Fatalf("herd exited early: %v\n%s", h.err, h.out.String())
		default:
		}
		res, err := http.Get("http://" + h.admin + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("herd not healthy after %s\n%s", timeout, h.out.String())
}

// waitExit waits for herd to exit and returns its exit code.
func (h *herd) waitExit(timeout time.Duration) int {
	h.t.Helper()
	select {
	case <-h.exited:
	case <-time.After(timeout):
		h.t.Fatalf("herd still running %s after the signal\n%s", timeout, h.out.String())
	}
	return h.cmd.ProcessState.ExitCode()
}

type instanceStatus struct {
	Index    int    `json:"index"`
	State    string `json:"state"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit"`
	Inflight int64  `json:"inflight"`
}

type appStatus struct {
	Name      string           `json:"name"`
	Instances []instanceStatus `json:"instances"`
}

// status reads /status from the admin listener.
func (h *herd) status() map[string][]instanceStatus {
	h.t.Helper()
	var body struct {
		Apps []appStatus `json:"apps"`
	}
	h.getJSON("http://"+h.admin+"/status", &body)
	out := map[string][]instanceStatus{}
	for _, a := range body.Apps {
		out[a.Name] = a.Instances
	}
	return out
}

// pids returns the pids of every live instance of every app.
func (h *herd) pids() []int {
	var pids []int
	for _, ins := range h.status() {
		for _, in := range ins {
			if in.Pid != 0 {
				pids = append(pids, in.Pid)
			}
		}
	}
	return pids
}

func (h *herd) getJSON(url string, v any) int {
	h.t.Helper()
	res, err := http.Get(url)
	if err != nil {
		h.t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(data, v); err != nil {
		h.t.Fatalf("GET %s: decoding %q: %v", url, data, err)
	}
	return res.StatusCode
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || i+2 >= len(data) || data[i+2] != 'Z'
}

// whoAmI is the test app's answer to GET /.
type whoAmI struct {
	Pid      int    `json:"pid"`
	Instance string `json:"instance"`
	Greeting string `json:"greeting"`
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child's
// stdout and stderr.
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

func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }
