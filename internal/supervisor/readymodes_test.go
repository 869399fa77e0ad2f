package supervisor

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/testenv"
)

// A worker that serves nothing (ready: process) is ready once it has stayed
// up min_uptime, and is not killed at listen_timeout.
func TestProcessReadinessOutlivesListenTimeout(t *testing.T) {
	app := testApp(t, "idle", 1)
	app.Ready = config.Ready{Process: true}
	app.MinUptime = config.Duration(300 * time.Millisecond)
	app.ListenTimeout = config.Duration(100 * time.Millisecond)
	var ev events
	s, _, _ := run(t, app, ev.hooks())
	start := time.Now()
	first := waitState(t, s, 0, Ready, 5*time.Second)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("ready after %s; want only after min_uptime 300ms", waited)
	}
	// Well past listen_timeout: still the same process, never restarted.
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		st := s.Status()[0].Instances[0]
		if st.Pid != first.Pid || st.Restarts != 0 || st.State != Ready {
			t.Fatalf("worker replaced or restarted: %+v (was pid %d)", st, first.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A worker that exits before min_uptime never counts as ready.
func TestProcessReadinessNeedsMinUptime(t *testing.T) {
	app := testApp(t, "exit3", 1) // exits after 300 ms
	app.Ready = config.Ready{Process: true}
	app.MinUptime = config.Duration(2 * time.Second)
	app.MaxRestarts = 1
	var ev events
	s, _, _ := run(t, app, ev.hooks())
	st := waitState(t, s, 0, Errored, 10*time.Second)
	if got := ev.list(); len(got) != 0 {
		t.Errorf("hooks %v for a worker that never stayed up min_uptime; want none", got)
	}
	if !strings.Contains(st.LastExit, "3") {
		t.Errorf("last exit %q; want the exit status 3", st.LastExit)
	}
}

// nodeApp writes a Node.js script and returns an app that runs it.
func nodeApp(t *testing.T, script string) *config.App {
	t.Helper()
	node := testenv.Tool(t, "node")
	app := testApp(t, "", 1)
	path := filepath.Join(app.Cwd, "app.js")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	app.Command = config.Command{node, path}
	app.Env = nil
	return app
}

// process.send('ready') over Node's own IPC channel marks the instance
// ready (PM2's wait_ready), and not before; messages after it neither block
// nor crash the app, because the channel stays open.
func TestIPCReadinessFromNode(t *testing.T) {
	app := nodeApp(t, `
setTimeout(() => {
  process.send({ type: 'warming', pid: process.pid });
  process.send('ready');
  // Later messages must go somewhere: a closed channel makes
  // process.send throw, a full one would grow without bound.
  let n = 0;
  const big = 'x'.repeat(10000);
  const t = setInterval(() => {
    process.send({ n: n++, big });
    if (n === 500) { clearInterval(t); require('fs').writeFileSync('sent', String(n)); }
  }, 1);
}, 300);
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
`)
	app.Ready = config.Ready{IPC: true}
	app.ListenTimeout = config.Duration(5 * time.Second)
	var ev events
	s, _, _ := run(t, app, ev.hooks())
	start := time.Now()
	first := waitState(t, s, 0, Ready, 10*time.Second)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("ready after %s; want only after process.send('ready') at 300ms", waited)
	}
	// The 500 later messages (5 MB) go through without the app dying.
	sent := filepath.Join(app.Cwd, "sent")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sent); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not send its 500 messages: %+v", s.Status()[0].Instances[0])
		}
	}
	if st := s.Status()[0].Instances[0]; st.Pid != first.Pid || st.State != Ready || st.Restarts != 0 {
		t.Fatalf("instance after more messages: %+v; want the same ready process", st)
	}
}

// An app given ready: ipc that never sends 'ready' is stopped at
// listen_timeout (PM2 would count it online), and status says why.
func TestIPCNeverReadyExplainsItself(t *testing.T) {
	app := nodeApp(t, `process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);`)
	app.Ready = config.Ready{IPC: true}
	app.ListenTimeout = config.Duration(300 * time.Millisecond)
	app.MaxRestarts = 0
	s, _, _ := run(t, app, Hooks{})
	st := waitState(t, s, 0, Errored, 10*time.Second)
	for _, want := range []string{"listen_timeout 300ms", "process.send('ready')", "raise listen_timeout"} {
		if !strings.Contains(st.LastExit, want) {
			t.Errorf("last exit %q lacks %q", st.LastExit, want)
		}
	}
}

// An app that ignores $PORT is not ready, and status names the port it
// really listens on, from /proc.
func TestIgnoredPortIsNamed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fixed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	app := testApp(t, "fixedport", 1)
	app.Env["FIXED_PORT"] = strconv.Itoa(fixed)
	app.ListenTimeout = config.Duration(300 * time.Millisecond)
	app.MaxRestarts = 0
	s, _, _ := run(t, app, Hooks{})
	st := waitState(t, s, 0, Errored, 10*time.Second)
	want := fmt.Sprintf("web[0] listens on 127.0.0.1:%d, not on $PORT=", fixed)
	if !strings.Contains(st.LastExit, want) || !strings.Contains(st.LastExit, "use process.env.PORT") {
		t.Errorf("last exit %q; want it to hold %q and the fix", st.LastExit, want)
	}
}
