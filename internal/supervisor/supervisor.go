package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/preload"
	"github.com/herdhq/herd/internal/proc"
)

// State is where an instance is in its lifecycle.
type State string

// The instance states. An instance is shown Ready only after its readiness
// check passed, never merely because it was spawned.
const (
	Starting State = "starting"
	Ready    State = "ready"
	Draining State = "draining"
	Backoff  State = "backoff"
	Errored  State = "errored"
	Stopped  State = "stopped"
)

// Instance identifies one spawned process of an app, as hooks see it. A
// restart is a new Instance with a new ID.
type Instance struct {
	ID    uint64
	App   string
	Index int
	Addr  string // 127.0.0.1:PORT
	Pid   int
}

// Hooks tell the supervisor's owner about lifecycle changes. A nil hook does
// nothing. Hooks are called from instance goroutines, concurrently.
type Hooks struct {
	// Ready is called once an instance passed its readiness check.
	Ready func(Instance)
	// Drain is called before a ready instance is stopped. It must take the
	// instance out of service and return once its in-flight requests are
	// done or ctx (bounded by drain_timeout) ends.
	Drain func(ctx context.Context, inst Instance)
	// Gone is called when a ready instance exited or was stopped. It must
	// take the instance out of service at once.
	Gone func(Instance)
}

// Errors callers branch on.
var (
	ErrUnknownApp = errors.New("supervisor: no such app")
	ErrStopping   = errors.New("supervisor: herd is stopping")
	ErrNotRunning = errors.New("supervisor: not running yet")
)

// Output returns the writer that receives the output lines of instance
// index of app, one prefixed line per Write.
type Output func(app string, index int) io.Writer

// Supervisor runs the apps of one config. Create it with New and call Run
// once; the operations (Reload, Restart, Stop, Start, Scale, Signal) may be
// called while Run runs, from any goroutine.
type Supervisor struct {
	hooks  Hooks
	log    *slog.Logger
	output Output
	runDir string
	cgroup *proc.Cgroup // nil where herd cannot make cgroups
	nextID atomic.Uint64
	ports  portSet

	// SampleEvery is how often CPU and RSS are read from /proc. Default 5s.
	SampleEvery time.Duration
	// Listeners are the bound sockets of shared_socket apps, by app name,
	// passed to their instances as fd 3. Set before Run; the owner closes them.
	Listeners map[string]*os.File
	// Env is added to every instance's environment before its app's env:,
	// which may override it (herd's HERD_GATEWAY_URL and HERD_ADMIN_URL).
	// Set before Run.
	Env []string

	preload string // path of the Node preload, written at Run

	mu         sync.Mutex
	apps       []*appRunner
	ctx        context.Context // Run's; every instance's context derives from it
	closing    bool
	running    sync.WaitGroup // every instance goroutine
	background sync.WaitGroup // memory replacements, cron reloads, watchers
}

// appRunner is one app: its current config and an instance per slot.
type appRunner struct {
	name string
	ops  sync.Mutex // one operation at a time per app

	mu       sync.Mutex
	cfg      *config.App
	slots    []*instance // slots[i].index == i
	retiring []*instance // replaced or scaled away, still stopping
}

// New returns a supervisor for cfg's apps. Instance output goes to
// output(app, index); herd's own messages go to log.
func New(cfg *config.Config, hooks Hooks, log *slog.Logger, output Output) *Supervisor {
	s := &Supervisor{hooks: hooks, log: log, output: output, SampleEvery: 5 * time.Second}
	for _, a := range cfg.Apps {
		s.apps = append(s.apps, &appRunner{name: a.Name, cfg: a})
	}
	return s
}

// Run starts every instance and keeps them running until ctx ends, then
// stops them all gracefully (in parallel) and returns once every instance
// process is gone.
func (s *Supervisor) Run(ctx context.Context) error {
	if killed := sweepRunDirs(os.TempDir()); len(killed) > 0 {
		s.log.Warn("killed processes left by a herd that was killed with its shims", "pids", killed)
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("herd-run-%d-", os.Getpid()))
	if err != nil {
		return fmt.Errorf("supervisor: creating run folder: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := recordSelf(dir); err != nil {
		return fmt.Errorf("supervisor: recording herd's start time in the run folder: %w", err)
	}
	// A cgroup per instance where the machine lets herd make them; the
	// supervisor shim keeps the descendants either way.
	if cg, err := proc.NewCgroup(filepath.Base(dir)); err == nil {
		s.cgroup = cg
		defer cg.Remove()
		if killed := sweepCgroups(cg); len(killed) > 0 {
			s.log.Warn("killed processes left in the cgroup of a herd that was killed with its shims", "pids", killed)
		}
		if err := writeFileAtomic(filepath.Join(dir, cgroupRecord), []byte(cg.Dir()+"\n")); err != nil {
			return fmt.Errorf("supervisor: recording the cgroup in the run folder: %w", err)
		}
	} else {
		s.log.Debug("instances get no cgroup; the supervisor shim keeps their descendants", "why", err)
	}

	// The preload serves shared_socket apps and measures Node apps' lag.
	if s.preload, err = preload.Write(dir); err != nil {
		return err
	}
	s.mu.Lock()
	s.runDir, s.ctx = dir, ctx
	for _, a := range s.apps {
		a.mu.Lock()
		for i := range int(a.cfg.Instances) {
			a.slots = append(a.slots, s.spawnLocked(a, a.cfg, i, 0))
		}
		a.mu.Unlock()
	}
	s.mu.Unlock()

	sampleCtx, stopSampling := context.WithCancel(context.Background())
	var sampler sync.WaitGroup
	sampler.Go(func() { s.sample(sampleCtx) })
	for _, a := range s.apps {
		if spec := a.config().CronRestart; spec != "" {
			s.background.Go(func() { s.cronRestarts(ctx, a, spec) })
		}
		if len(a.config().Watch) > 0 {
			s.background.Go(func() { s.watch(ctx, a) })
		}
	}

	<-ctx.Done()
	stopSampling()
	sampler.Wait()
	s.background.Wait() // an operation in flight ends: its spawns fail with ErrStopping
	s.mu.Lock()
	s.closing = true // no spawn after this, so the wait below is final
	s.mu.Unlock()
	s.running.Wait()
	return nil
}

// spawn starts a new instance for slot index of a, with cfg. It returns
// ErrStopping once herd is stopping.
func (s *Supervisor) spawn(a *appRunner, cfg *config.App, index, restarts int) (*instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return nil, ErrNotRunning
	}
	if s.closing || s.ctx.Err() != nil {
		return nil, ErrStopping
	}
	return s.spawnLocked(a, cfg, index, restarts), nil
}

func (s *Supervisor) spawnLocked(a *appRunner, cfg *config.App, index, restarts int) *instance {
	ctx, cancel := context.WithCancel(s.ctx)
	in := &instance{
		sup: s, app: cfg, index: index, state: Starting, restarts: restarts,
		cancel: cancel, done: make(chan struct{}), first: make(chan error, 1),
	}
	s.running.Go(func() {
		defer close(in.done)
		in.run(ctx)
	})
	return in
}

// sharedPort is the port of a shared_socket app's socket, which its
// instances get as PORT (the preload matches listen(PORT) with it).
func (s *Supervisor) sharedPort(app string) int {
	f := s.Listeners[app]
	if f == nil {
		return 0
	}
	l, err := net.FileListener(f)
	if err != nil {
		return 0
	}
	defer l.Close()
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func (s *Supervisor) app(name string) (*appRunner, error) {
	for _, a := range s.apps {
		if a.name == name {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownApp, name)
}

// Apps returns the names of the apps, in config order.
func (s *Supervisor) Apps() []string {
	names := make([]string, len(s.apps))
	for i, a := range s.apps {
		names[i] = a.name
	}
	return names
}

// AppStatus is the state of one app's instances.
type AppStatus struct {
	Name      string           `json:"name"`
	Instances []InstanceStatus `json:"instances"`
}

// InstanceStatus is a snapshot of one instance.
type InstanceStatus struct {
	ID         uint64    `json:"-"`
	Index      int       `json:"index"`
	State      State     `json:"state"`
	Pid        int       `json:"pid,omitempty"`
	Port       int       `json:"port,omitempty"`
	Restarts   int       `json:"restarts"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	LastExit   string    `json:"last_exit,omitempty"`
	CPUPercent float64   `json:"cpu_percent"`
	RSSBytes   uint64    `json:"rss_bytes"`
	// Inflight is filled in by the owner, who knows the balancer; the
	// supervisor leaves it zero.
	Inflight int64 `json:"inflight"`
	// Requests counts the responses of the instance's slot (so two
	// processes of one slot during a reload show the same counters); filled
	// in by the owner, nil where nothing was ever sent to it.
	Requests *balance.StatsSnapshot `json:"requests,omitempty"`
	// LastExitCode is the exit code of the last exit (-1: ended by a
	// signal, or it could not start); nil before any exit.
	LastExitCode *int `json:"last_exit_code,omitempty"`
	// Threads and OpenFiles are sampled from /proc with CPU and RSS (0
	// until the first sample).
	Threads   int `json:"threads,omitempty"`
	OpenFiles int `json:"open_files,omitempty"`
	// ReadyAfterSeconds is how long the readiness check took, from spawn
	// to ready (0 while starting).
	ReadyAfterSeconds float64 `json:"ready_after_seconds,omitempty"`
	// Lag is the event-loop lag of a Node instance, as herd's preload
	// measures it inside the app; nil for other apps and until the first
	// report. LagMs is its p99, for displays.
	Lag   *Lag     `json:"lag,omitempty"`
	LagMs *float64 `json:"lag_ms,omitempty"`
}

// Status returns a snapshot of every app, in config order. During a reload
// an index may appear twice: the new instance and the old one draining.
func (s *Supervisor) Status() []AppStatus {
	out := make([]AppStatus, 0, len(s.apps))
	for _, a := range s.apps {
		as := AppStatus{Name: a.name}
		for _, in := range a.instances() {
			as.Instances = append(as.Instances, in.status())
		}
		sort.SliceStable(as.Instances, func(i, j int) bool { return as.Instances[i].Index < as.Instances[j].Index })
		out = append(out, as)
	}
	return out
}

// instances returns the app's slots and its retiring instances.
func (a *appRunner) instances() []*instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append(append([]*instance(nil), a.slots...), a.retiring...)
}

// sample reads CPU and RSS of every live instance every SampleEvery.
func (s *Supervisor) sample(ctx context.Context) {
	t := time.NewTicker(s.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, a := range s.apps {
			for _, in := range a.instances() {
				in.sampleUsage(time.Now())
				s.checkMemory(a, in)
			}
		}
	}
}
