package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/proc"
)

// The test binary doubles as the instance: with HERD_TEST_CHILD set it acts
// as the mode names and never runs the tests.
func TestMain(m *testing.M) {
	proc.RunShim() // every instance starts below a shim of this binary
	switch os.Getenv("HERD_TEST_CHILD") {
	case "":
		os.Exit(m.Run())
	case "listen": // listen on $PORT until SIGTERM
		l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			os.Exit(2)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		waitTerm()
	case "notify": // READY=1 after 300 ms, never listens
		time.Sleep(300 * time.Millisecond)
		c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
		if err != nil {
			os.Exit(2)
		}
		c.Write([]byte("STATUS=warming up\nREADY=1\n"))
		c.Close()
		waitTerm()
	case "env": // write the environment herd gave us, then act ready via notify
		var sb strings.Builder
		for _, k := range []string{"PORT", "HERD_INSTANCE", "HERD_APP", "WORKER_ID", "NODE_APP_INSTANCE", "GREETING", "GOMEMLIMIT", "HERD_KILL_TIMEOUT"} {
			fmt.Fprintf(&sb, "%s=%s\n", k, os.Getenv(k))
		}
		os.WriteFile(filepath.Join(os.Getenv("OUT_DIR"), "env-"+os.Getenv("HERD_INSTANCE")), []byte(sb.String()), 0o644)
		c, _ := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
		c.Write([]byte("READY=1"))
		waitTerm()
	case "fixedport": // listen on $FIXED_PORT, ignoring $PORT, as many PM2 apps do
		l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("FIXED_PORT"))
		if err != nil {
			os.Exit(2)
		}
		defer l.Close()
		waitTerm()
	case "idle": // never ready
		waitTerm()
	case "exit3": // listen, then exit with status 3
		l, _ := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		time.Sleep(300 * time.Millisecond)
		l.Close()
		os.Exit(3)
	case "hog": // hold 64 MiB, then listen
		hog := make([]byte, 64<<20)
		for i := range hog {
			hog[i] = 1
		}
		l, _ := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		waitTerm()
		runtime.KeepAlive(hog) // live until the end, whatever the compiler sees
	}
	os.Exit(0)
}

func waitTerm() {
	ch := make(chan os.Signal, 1)
	signalNotify(ch)
	<-ch
	os.Exit(0)
}

// testApp returns an app config that runs this test binary in mode.
func testApp(t *testing.T, mode string, instances int) *config.App {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &config.App{
		Name: "web", Command: config.Command{exe}, Cwd: t.TempDir(),
		Env:       map[string]string{"HERD_TEST_CHILD": mode},
		Instances: config.Instances(instances), InstanceVar: "NODE_APP_INSTANCE",
		Ready:         config.Ready{TCP: true},
		ListenTimeout: config.Duration(5 * time.Second), RestartDelay: config.Duration(10 * time.Millisecond),
		MinUptime: config.Duration(time.Second), MaxRestarts: 16,
		DrainTimeout: config.Duration(time.Second), KillTimeout: config.Duration(time.Second),
		StopSignal: config.Signal(syscall.SIGTERM), MaxFails: 1, FailTimeout: config.Duration(time.Second),
	}
}

// events records hook calls in order.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

func (e *events) hooks() Hooks {
	return Hooks{
		Ready: func(in Instance) { e.add(fmt.Sprintf("ready %d", in.Index)) },
		Drain: func(_ context.Context, in Instance) { e.add(fmt.Sprintf("drain %d", in.Index)) },
		Gone:  func(in Instance) { e.add(fmt.Sprintf("gone %d", in.Index)) },
	}
}

func run(t *testing.T, app *config.App, hooks Hooks, opts ...func(*Supervisor)) (*Supervisor, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	s := New(&config.Config{Apps: []*config.App{app}}, hooks, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string, int) io.Writer { return io.Discard })
	for _, o := range opts {
		o(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, cancel, done
}

func waitState(t *testing.T, s *Supervisor, idx int, want State, timeout time.Duration) InstanceStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var st InstanceStatus
		if ins := s.Status()[0].Instances; idx < len(ins) { // empty until Run spawned them
			st = ins[idx]
		}
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %d is %s (last exit %q) after %s; want %s", idx, st.State, st.LastExit, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLifecycleHooksInOrder(t *testing.T) {
	var ev events
	s, cancel, done := run(t, testApp(t, "listen", 1), ev.hooks())
	st := waitState(t, s, 0, Ready, 5*time.Second)
	if st.Pid == 0 || st.Port == 0 {
		t.Fatalf("ready instance without pid or port: %+v", st)
	}
	cancel()
	<-done
	if got, want := strings.Join(ev.list(), ","), "ready 0,drain 0,gone 0"; got != want {
		t.Errorf("hooks: %s; want %s", got, want)
	}
	if alive := syscall.Kill(st.Pid, 0) == nil; alive {
		t.Errorf("pid %d still alive after Run returned", st.Pid)
	}
	if s.Status()[0].Instances[0].State != Stopped {
		t.Errorf("state after stop = %s; want stopped", s.Status()[0].Instances[0].State)
	}
}

func TestCrashIsGoneAtOnceThenRestarted(t *testing.T) {
	var ev events
	s, _, _ := run(t, testApp(t, "listen", 1), ev.hooks())
	first := waitState(t, s, 0, Ready, 5*time.Second)
	syscall.Kill(first.Pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Status()[0].Instances[0]
		if st.State == Ready && st.Pid != first.Pid {
			if st.Restarts != 1 {
				t.Errorf("restarts = %d; want 1", st.Restarts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := strings.Join(ev.list(), ","); got != "ready 0,gone 0,ready 0" {
		t.Errorf("hooks: %s; want ready 0,gone 0,ready 0 (no drain for a crash)", got)
	}
}

func TestNotifyReadiness(t *testing.T) {
	app := testApp(t, "notify", 1)
	app.Ready = config.Ready{Notify: true}
	s, _, _ := run(t, app, Hooks{})
	start := time.Now()
	waitState(t, s, 0, Ready, 5*time.Second)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("ready after %s; want only after READY=1 (sent at 300ms)", waited)
	}
}

func TestNotReadyInTimeEndsErrored(t *testing.T) {
	app := testApp(t, "idle", 1)
	app.ListenTimeout = config.Duration(200 * time.Millisecond)
	app.MaxRestarts = 1
	s, _, _ := run(t, app, Hooks{})
	st := waitState(t, s, 0, Errored, 10*time.Second)
	if st.Restarts != 1 || st.Pid != 0 {
		t.Errorf("errored instance %+v; want 1 restart and no process", st)
	}
}

func TestInstanceEnvironment(t *testing.T) {
	app := testApp(t, "env", 2)
	out := t.TempDir()
	app.Env["OUT_DIR"] = out
	app.Env["GREETING"] = "hi"
	app.InstanceVar = "WORKER_ID"
	app.Ready = config.Ready{Notify: true}
	s, _, _ := run(t, app, Hooks{})
	for i := range 2 {
		st := waitState(t, s, i, Ready, 5*time.Second)
		data, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("env-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("PORT=%d\nHERD_INSTANCE=%d\nHERD_APP=web\nWORKER_ID=%d\nNODE_APP_INSTANCE=\nGREETING=hi\nGOMEMLIMIT=\nHERD_KILL_TIMEOUT=1s\n", st.Port, i, i)
		if string(data) != want {
			t.Errorf("instance %d env:\n%s\nwant:\n%s", i, data, want)
		}
	}
}

func TestBackoffJitter(t *testing.T) {
	for range 1000 {
		d := jitter(time.Second)
		if d < time.Second || d > 1200*time.Millisecond {
			t.Fatalf("jitter(1s) = %s; want within [1s, 1.2s]", d)
		}
	}
	if jitter(0) != 0 {
		t.Error("jitter(0) != 0")
	}
}

func TestExpandArgs(t *testing.T) {
	env := []string{"PORT=1", "PORT=3001", "NAME=web"}
	got := expandArgs([]string{"./server", "--port", "$PORT", "--name=${NAME}-x", "cost $$5", "$MISSING"}, env)
	want := []string{"./server", "--port", "3001", "--name=web-x", "cost $5", ""}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("expandArgs = %q; want %q", got, want)
	}
}

// TestSweepRunDirs: the run folders of herd processes that are gone are
// removed, with the processes they recorded or marked; those of live ones
// and other folders are kept.
func TestSweepRunDirs(t *testing.T) {
	tmp := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(tmp, fmt.Sprintf("herd-run-%d-123", gone.Process.Pid))
	live := filepath.Join(tmp, fmt.Sprintf("herd-run-%d-456", os.Getppid()))
	// A live pid whose start time is not the recorded one: a reused pid.
	reused := filepath.Join(tmp, fmt.Sprintf("herd-run-%d-789", os.Getppid()))
	other := filepath.Join(tmp, "herd-run-notapid-789")
	for _, d := range []string{dead, live, reused, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	parentStart, err := proc.StartTime(os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(live, herdRecord), []byte(fmt.Sprintln(parentStart)), 0o600)
	os.WriteFile(filepath.Join(reused, herdRecord), []byte(fmt.Sprintln(parentStart+1)), 0o600)

	// What the dead herd left: a recorded process, and a marked one.
	recorded := exec.Command("sleep", "300")
	marked := exec.Command("sleep", "300")
	marked.Env = append(os.Environ(), proc.MarkEnv+"="+filepath.Base(dead))
	for _, c := range []*exec.Cmd{recorded, marked} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	start, _ := proc.StartTime(recorded.Process.Pid)
	os.WriteFile(filepath.Join(dead, "i1.rec"), fmt.Appendf(nil, `{"pid": %d, "start": %d}`, recorded.Process.Pid, start), 0o600)

	killed := sweepRunDirs(tmp)
	for d, want := range map[string]bool{dead: false, live: true, reused: false, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists: %v; want %v", filepath.Base(d), err == nil, want)
		}
	}
	for _, c := range []*exec.Cmd{recorded, marked} {
		exited := make(chan error, 1)
		go func() { exited <- c.Wait() }()
		select {
		case err := <-exited:
			if err == nil || !strings.Contains(err.Error(), "killed") {
				t.Errorf("%s left by the dead herd ended with %v; want killed", c.Args, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s left by the dead herd still runs 5s after the sweep", c.Args)
			c.Process.Kill()
			<-exited
		}
	}
	if len(killed) != 2 {
		t.Errorf("sweepRunDirs killed %v; want the 2 leftovers", killed)
	}
}
