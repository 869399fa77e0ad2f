package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/proc"
)

// Backoff bounds, as the core issue fixes them: start at restart_delay, grow
// x1.5 per consecutive restart up to maxBackoff, start over after a run of
// stableAfter.
const (
	backoffFactor = 1.5
	maxBackoff    = 15 * time.Second
	stableAfter   = 30 * time.Second
)

// instance is one slot of an app (index i): it owns a goroutine (run) that
// spawns, watches and restarts the slot's process.
type instance struct {
	sup   *Supervisor
	app   *config.App
	index int

	cancel context.CancelFunc // stops the instance gracefully
	done   chan struct{}      // closed when run has returned
	first  chan error         // the outcome of the first start: nil once ready
	report sync.Once

	toldWait bool // the log said what readiness waits for; only run touches it

	mu        sync.Mutex
	proc      *proc.Process
	state     State
	id        uint64
	pid       int
	port      int
	restarts  int
	startedAt time.Time
	lastExit  string
	exitCode  int // of the last exit; -1 for a signal or a failed spawn
	cpuPct    float64
	rss       uint64
	cpuPrev   time.Duration
	cpuPrevAt time.Time
	// Sampled with CPU and RSS, reported by the preload, measured at ready.
	threads, fds int
	lag          *Lag
	readyAfter   time.Duration
}

// outcome is how waiting for readiness ended.
type outcome int

const (
	becameReady outcome = iota
	exitedEarly
	notReadyInTime
	canceled
)

func (in *instance) logger() *slog.Logger {
	return in.sup.log.With("app", in.app.Name, "instance", in.index)
}

// run keeps the slot's process running until ctx ends.
func (in *instance) run(ctx context.Context) {
	log := in.logger()
	firstDelay := time.Duration(in.app.RestartDelay)
	if in.app.ExpBackoffRestartDelay > 0 {
		firstDelay = time.Duration(in.app.ExpBackoffRestartDelay)
	}
	delay := firstDelay
	unstable := 0
	for {
		if ctx.Err() != nil {
			in.setState(Stopped)
			return
		}
		started := time.Now()
		stable, stop := in.runOnce(ctx, log)
		if stop {
			return
		}
		if why := in.noRestart(); why != "" {
			in.setState(Stopped)
			log.Info("instance not restarted: "+why, "last_exit", in.status().LastExit)
			return
		}
		uptime := time.Since(started)
		if stable && uptime >= time.Duration(in.app.MinUptime) {
			unstable = 0
		} else {
			unstable++
		}
		if uptime >= stableAfter {
			delay = firstDelay
		}
		if unstable > in.app.MaxRestarts {
			in.setState(Errored)
			log.Error("instance errored: too many unstable restarts; it stays stopped",
				"unstable_restarts", unstable-1, "min_uptime", time.Duration(in.app.MinUptime), "max_restarts", in.app.MaxRestarts)
			return
		}
		wait := jitter(delay)
		delay = min(time.Duration(float64(delay)*backoffFactor), maxBackoff)
		in.mu.Lock()
		in.state, in.restarts = Backoff, in.restarts+1
		in.mu.Unlock()
		log.Info("restarting instance", "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			in.setState(Stopped)
			return
		case <-t.C:
		}
	}
}

// runOnce spawns the process and follows it until it exits (stop=false) or
// ctx ends and it has been stopped (stop=true). stable is false when the
// process never became ready.
func (in *instance) runOnce(ctx context.Context, log *slog.Logger) (stable, stop bool) {
	in.setState(Starting)
	sp, err := in.spawn()
	if err != nil {
		in.mu.Lock()
		in.lastExit, in.exitCode = err.Error(), -1
		in.mu.Unlock()
		log.Error("cannot start instance", "err", err)
		in.reportFirst(err)
		return false, false
	}
	defer sp.close()
	p, inst := sp.p, sp.inst
	log = log.With("pid", inst.Pid, "addr", inst.Addr)
	if !in.toldWait {
		in.toldWait = true
		log.Info("waiting for the instance to be ready", "for", in.awaiting(), "listen_timeout", time.Duration(in.app.ListenTimeout))
	}
	started := time.Now()
	switch in.awaitReady(ctx, sp) {
	case canceled:
		in.reportFirst(errors.New("stopped before it was ready"))
		in.setState(Draining)
		_ = p.Stop(syscall.Signal(in.app.StopSignal), time.Duration(in.app.KillTimeout))
		in.exited(p, log, "stopped before ready")
		in.setState(Stopped)
		return false, true
	case exitedEarly:
		in.exited(p, log, "exited before ready")
		in.reportFirst(fmt.Errorf("exited before it was ready (%s)", p.Describe()))
		return false, false
	case notReadyInTime:
		why := fmt.Sprintf("not ready within listen_timeout %s, waiting for %s: raise listen_timeout?",
			time.Duration(in.app.ListenTimeout), in.awaiting())
		if hint := in.portHint(inst); hint != "" {
			why = hint
		}
		log.Error("instance " + why + "; stopping it")
		_ = p.Stop(syscall.Signal(in.app.StopSignal), time.Duration(in.app.KillTimeout))
		in.exited(p, log, "not ready in time")
		in.mu.Lock()
		in.lastExit = why + " (then " + in.lastExit + ")"
		in.mu.Unlock()
		in.reportFirst(errors.New(why))
		return false, false
	}

	in.setState(Ready)
	in.mu.Lock()
	in.readyAfter = time.Since(started)
	in.mu.Unlock()
	in.sampleUsage(time.Now()) // RSS right away; CPU % from the next sample
	log.Info("instance ready", "after", time.Since(started).Round(time.Millisecond))
	if h := in.sup.hooks.Ready; h != nil {
		h(inst)
	}
	in.reportFirst(nil)
	select {
	case <-p.Done():
		if h := in.sup.hooks.Gone; h != nil {
			h(inst)
		}
		in.exited(p, log, "crashed")
		return true, false
	case <-ctx.Done():
	}

	// Graceful stop: out of the pool, in-flight done, signal, kill.
	in.setState(Draining)
	if h := in.sup.hooks.Drain; h != nil {
		dctx, cancel := context.WithTimeout(context.Background(), time.Duration(in.app.DrainTimeout))
		h(dctx, inst)
		cancel()
	}
	if err := p.Stop(syscall.Signal(in.app.StopSignal), time.Duration(in.app.KillTimeout)); err != nil {
		log.Warn("stopping instance", "err", err)
	}
	if h := in.sup.hooks.Gone; h != nil {
		h(inst)
	}
	in.exited(p, log, "stopped")
	in.setState(Stopped)
	return true, true
}

// noRestart says why the process that just exited must not be restarted
// (autorestart: false, or an exit code listed in stop_exit_codes), or "".
func (in *instance) noRestart() string {
	if in.app.Autorestart != nil && !*in.app.Autorestart {
		return "autorestart is false"
	}
	in.mu.Lock()
	code := in.exitCode
	in.mu.Unlock()
	if code >= 0 && slices.Contains(in.app.StopExitCodes, code) {
		return fmt.Sprintf("exit code %d is in stop_exit_codes", code)
	}
	return ""
}

// exited records and logs how the process ended.
func (in *instance) exited(p *proc.Process, log *slog.Logger, why string) {
	p.WaitOutput()
	desc := p.Describe()
	in.mu.Lock()
	os.Remove(recordPath(in.sup.runDir, in.id))
	in.lastExit, in.exitCode = desc, p.ExitCode()
	in.pid, in.proc = 0, nil
	in.mu.Unlock()
	if in.app.Mode != config.SharedMode {
		in.sup.ports.release(in.portNow())
	}
	level := slog.LevelWarn
	if why == "stopped" || why == "stopped before ready" {
		level = slog.LevelInfo
	}
	log.Log(context.Background(), level, "instance "+why, "exit", desc)
}

func (in *instance) portNow() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.port
}

// spawned is one process of the slot and the channels its readiness
// arrives on (nil when its ready: check does not use them).
type spawned struct {
	p      *proc.Process
	inst   Instance
	notify *notifier   // READY=1 on NOTIFY_SOCKET or the shared mode's pipe
	ipc    *ipcChannel // process.send('ready'); open until the process ends
}

// close releases the readiness channels once the process has exited.
func (s *spawned) close() {
	s.notify.Close()
	s.ipc.Close()
}

// spawn starts a new process for the slot. In shared_socket mode the
// process gets the app's socket as fd 3 and, with ready: notify, a pipe to
// say READY=1 on as fd 4; with ready: ipc, a Node IPC channel follows.
func (in *instance) spawn() (*spawned, error) {
	shared := in.app.Mode == config.SharedMode
	var port int
	var err error
	if shared {
		port = in.sup.sharedPort(in.app.Name)
	} else if port, err = in.sup.ports.take(); err != nil {
		return nil, err
	}
	s := &spawned{}
	fail := func(err error) (*spawned, error) {
		if !shared {
			in.sup.ports.release(port)
		}
		s.close()
		return nil, err
	}
	id := in.sup.nextID.Add(1)
	env := in.environ(port)
	spec := proc.Spec{
		Cgroup: in.sup.cgroup,
		Dir:    in.app.Cwd,
		Output: in.sup.output(in.app.Name, in.index),
		Prefix: fmt.Sprintf("%s[%d] ", in.app.Name, in.index),
	}
	if in.app.Ready.Notify {
		s.notify = &notifier{}
		// Short: a unix socket path must fit in 108 bytes.
		path := fmt.Sprintf("%s/n%d.sock", in.sup.runDir, id)
		if s.notify.sock, err = listenNotify(path); err != nil {
			return fail(err)
		}
		env = append(env, "NOTIFY_SOCKET="+path)
	}
	var readyWriter *os.File
	if shared {
		f := in.sup.Listeners[in.app.Name]
		if f == nil {
			return fail(fmt.Errorf("supervisor: no shared socket for app %s", in.app.Name))
		}
		spec.ExtraFiles = append(spec.ExtraFiles, f)
		spec.SetListenPID = true
		env = append(env, "LISTEN_FDS=1", "LISTEN_FDNAMES="+in.app.Name)
		if s.notify != nil {
			if s.notify.pipe, readyWriter, err = os.Pipe(); err != nil {
				return fail(fmt.Errorf("supervisor: creating the ready pipe: %w", err))
			}
			spec.ExtraFiles = append(spec.ExtraFiles, readyWriter)
			env = append(env, "HERD_READY_FD="+strconv.Itoa(2+len(spec.ExtraFiles)))
		}
	}
	// Node apps get the preload in both modes: it measures event-loop lag
	// and reports it on the IPC channel, which herd opens for them as PM2
	// does for every Node app (see ipcChannel).
	node := in.sup.preload != "" && isNode(in.app.Argv())
	if in.sup.preload != "" && (shared || node) {
		env = append(env, "NODE_OPTIONS="+strings.TrimSpace(os.Getenv("NODE_OPTIONS")+" "+in.app.Env["NODE_OPTIONS"]+" --require "+in.sup.preload))
	}
	if in.app.Ready.IPC || node {
		if s.ipc, err = newIPCChannel(); err != nil {
			return fail(err)
		}
		s.ipc.onLag = in.setLag
		if node {
			env = append(env, "HERD_LAG_IPC=1")
		}
		spec.ExtraFiles = append(spec.ExtraFiles, s.ipc.child)
		env = append(env, "NODE_CHANNEL_FD="+strconv.Itoa(2+len(spec.ExtraFiles)), "NODE_CHANNEL_SERIALIZATION_MODE=json")
	}
	argv := expandArgs(in.app.Argv(), env)
	spec.Path, spec.Args, spec.Env = argv[0], argv[1:], env
	p, err := proc.Start(spec)
	if readyWriter != nil {
		readyWriter.Close() // the child has its copy; EOF then means it exited
	}
	if err != nil {
		return fail(err)
	}
	if s.ipc != nil {
		s.ipc.started()
	}
	if err := recordInstance(in.sup.runDir, id, p); err != nil {
		in.logger().Warn("a herd killed with its shims may leave this instance's processes to the next herd's sweep", "err", err)
	}
	s.p = p
	s.inst = Instance{ID: id, App: in.app.Name, Index: in.index, Addr: "127.0.0.1:" + strconv.Itoa(port), Pid: p.Pid()}
	in.mu.Lock()
	in.proc = p
	in.id, in.pid, in.port, in.startedAt = id, p.Pid(), port, time.Now()
	in.cpuPct, in.rss, in.cpuPrev, in.cpuPrevAt = 0, 0, 0, time.Time{}
	in.threads, in.fds, in.lag, in.readyAfter = 0, 0, nil, 0
	in.mu.Unlock()
	return s, nil
}

// environ is herd's environment, then the app's env:, then herd's own
// variables. A later entry wins, as exec takes the last of duplicates.
func (in *instance) environ(port int) []string {
	// systemd's variables are herd's own, not its instances'.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "LISTEN_FDS=") ||
			strings.HasPrefix(kv, "LISTEN_PID=") || strings.HasPrefix(kv, "LISTEN_FDNAMES=")
	})
	env = append(env, in.sup.Env...)
	for k, v := range in.app.Env {
		if k == in.app.IncrementVar {
			n, _ := strconv.Atoi(v) // Validate checked it is a number
			v = strconv.Itoa(n + in.index)
		}
		env = append(env, k+"="+v)
	}
	if limit := in.app.MaxMemoryRestart; limit > 0 && in.app.Env["GOMEMLIMIT"] == "" {
		// A Go instance collects harder before it reaches the restart limit.
		env = append(env, "GOMEMLIMIT="+strconv.FormatInt(int64(limit)*9/10, 10))
	}
	idx := strconv.Itoa(in.index)
	env = append(env,
		"PORT="+strconv.Itoa(port),
		"HERD_APP="+in.app.Name,
		"HERD_INSTANCE="+idx,
		// How long the instance has between the stop signal and SIGKILL,
		// so it can bound its own drain (package worker reads it).
		"HERD_KILL_TIMEOUT="+time.Duration(in.app.KillTimeout).String(),
		in.app.InstanceVar+"="+idx,
		proc.MarkEnv+"="+filepath.Base(in.sup.runDir),
	)
	return env
}

// awaitReady waits for the readiness check, the process's exit, the
// listen_timeout, or ctx, whichever comes first. The probe goroutine it
// starts has returned when it returns.
func (in *instance) awaitReady(ctx context.Context, s *spawned) outcome {
	probeCtx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		if in.probe(probeCtx, s) == nil {
			close(ready)
		}
	}()
	defer func() {
		cancel()
		<-probed
	}()
	var timeout <-chan time.Time
	if !in.app.Ready.Process { // min_uptime is the whole check there
		t := time.NewTimer(time.Duration(in.app.ListenTimeout))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ready:
		return becameReady
	case <-s.p.Done():
		return exitedEarly
	case <-timeout:
		return notReadyInTime
	case <-ctx.Done():
		return canceled
	}
}

// probe runs the app's ready: check once; nil means ready.
func (in *instance) probe(ctx context.Context, s *spawned) error {
	switch r := in.app.Ready; {
	case r.Process:
		return sleepCtx(ctx, time.Duration(in.app.MinUptime))
	case r.IPC:
		select {
		case <-s.ipc.ready:
			return nil
		case <-ctx.Done():
			return errProbeCanceled
		}
	case r.Notify:
		defer s.notify.Close()
		return s.notify.waitReady(ctx)
	case r.HTTP != "":
		return probeHTTP(ctx, "http://"+s.inst.Addr+r.HTTP)
	default:
		return probeTCP(ctx, s.inst.Addr)
	}
}

// awaiting says what the app's ready: check waits for, for logs and status.
func (in *instance) awaiting() string {
	switch r := in.app.Ready; {
	case r.Process:
		return fmt.Sprintf("the process to stay up min_uptime %s (ready: process)", time.Duration(in.app.MinUptime))
	case r.IPC:
		return "process.send('ready') on the Node IPC channel (ready: ipc, PM2's wait_ready)"
	case r.Notify:
		return "READY=1 on $NOTIFY_SOCKET (ready: notify)"
	case r.HTTP != "":
		return fmt.Sprintf("GET %s on $PORT to answer 2xx or 3xx (ready: %s)", r.HTTP, r.HTTP)
	case in.app.Mode == config.SharedMode:
		return "the shared socket to be listened on (ready: tcp)"
	default:
		return "a connection to be accepted on $PORT (ready: tcp)"
	}
}

// portHint explains a port-probed instance that is not ready by what its
// process group really listens on (from /proc), or returns "" when that
// does not explain it: it listens on $PORT, or the check is not a port's.
func (in *instance) portHint(inst Instance) string {
	r := in.app.Ready
	if in.app.Mode == config.SharedMode || r.Process || r.IPC || r.Notify {
		return ""
	}
	addrs, err := proc.ListeningAddrs(inst.Pid)
	if err != nil {
		return ""
	}
	_, port, _ := net.SplitHostPort(inst.Addr)
	name := fmt.Sprintf("%s[%d]", in.app.Name, in.index)
	if len(addrs) == 0 {
		return fmt.Sprintf("%s listens on no TCP port (herd waited for %s within listen_timeout %s); "+
			"an app that serves nothing takes ready: none", name, in.awaiting(), time.Duration(in.app.ListenTimeout))
	}
	for _, a := range addrs {
		host, p, _ := net.SplitHostPort(a)
		if p != port {
			continue
		}
		if host == "" || host == "127.0.0.1" {
			return "" // on $PORT: the probe itself is what fails
		}
		return fmt.Sprintf("%s listens on %s, which herd cannot reach at %s; listen on 127.0.0.1 or on every address", name, a, inst.Addr)
	}
	return fmt.Sprintf("%s listens on %s, not on $PORT=%s; use process.env.PORT (or $PORT), or mode: shared_socket with listen: %s",
		name, strings.Join(addrs, ", "), port, addrs[0])
}

// expandArgs replaces $NAME and ${NAME} in each word with its value in env
// (the last one wins, as for exec), so `--port $PORT` works as in a shell;
// $$ is a literal $.
func expandArgs(argv, env []string) []string {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	out := make([]string, len(argv))
	for i, w := range argv {
		if !strings.Contains(w, "$") {
			out[i] = w
			continue
		}
		out[i] = os.Expand(w, func(name string) string {
			if name == "$" {
				return "$"
			}
			return vars[name]
		})
	}
	return out
}

// reportFirst delivers the outcome of the first start to whoever waits on
// in.first (a reload, scale or start); later outcomes are not reported.
func (in *instance) reportFirst(err error) {
	in.report.Do(func() { in.first <- err })
}

// stop stops the instance gracefully and waits until it is gone. Safe to
// call more than once.
func (in *instance) stop() {
	in.cancel()
	<-in.done
}

// running reports whether the instance's goroutine still runs (it may be in
// backoff), as opposed to stopped or errored for good.
func (in *instance) running() bool {
	select {
	case <-in.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the instance's process group, if it has a process.
func (in *instance) signal(sig syscall.Signal) error {
	in.mu.Lock()
	p := in.proc
	in.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Signal(sig)
}

func (in *instance) restartCount() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.restarts
}

func (in *instance) setState(s State) {
	in.mu.Lock()
	in.state = s
	in.mu.Unlock()
}

func (in *instance) status() InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := InstanceStatus{
		ID: in.id, Index: in.index, State: in.state, Restarts: in.restarts,
		LastExit: in.lastExit, CPUPercent: in.cpuPct, RSSBytes: in.rss,
	}
	if in.lastExit != "" {
		code := in.exitCode
		st.LastExitCode = &code
	}
	if in.pid != 0 {
		st.Pid, st.Port, st.StartedAt = in.pid, in.port, in.startedAt
		st.Threads, st.OpenFiles, st.ReadyAfterSeconds = in.threads, in.fds, in.readyAfter.Seconds()
		if in.lag != nil {
			st.Lag = in.lag.aged(time.Now())
			st.LagMs = &st.Lag.P99Ms
		}
	}
	return st
}

// setLag records the event-loop lag the instance's preload reported.
func (in *instance) setLag(l Lag) {
	in.mu.Lock()
	in.lag = &l
	in.mu.Unlock()
}

// isNode reports whether argv runs Node.js directly (node or nodejs, the
// program or the interpreter:), so that the preload runs in the app's own
// process, not in a wrapper such as npm.
func isNode(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	base := filepath.Base(argv[0])
	return base == "node" || base == "nodejs"
}

// sampleUsage updates CPU % (since the previous sample) and RSS from /proc.
func (in *instance) sampleUsage(now time.Time) {
	in.mu.Lock()
	pid := in.pid
	in.mu.Unlock()
	if pid == 0 {
		return
	}
	u, err := proc.ReadUsage(pid)
	if err != nil {
		return // exited meanwhile
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.pid != pid {
		return
	}
	if !in.cpuPrevAt.IsZero() {
		if wall := now.Sub(in.cpuPrevAt); wall > 0 {
			in.cpuPct = 100 * float64(u.CPU-in.cpuPrev) / float64(wall)
		}
	}
	in.cpuPrev, in.cpuPrevAt, in.rss = u.CPU, now, u.RSS
	in.threads = u.Threads
	if n, err := proc.CountFDs(pid); err == nil {
		in.fds = n
	}
}

// jitter spreads d by up to +20 %, so that instances that crashed together
// do not restart in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

var errProbeCanceled = errors.New("supervisor: readiness probe canceled")
