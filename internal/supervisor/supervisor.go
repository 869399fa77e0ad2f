package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdhq/herd/internal/config"
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

// Supervisor runs the apps of one config. Create it with New and call Run once.
type Supervisor struct {
	hooks  Hooks
	log    *slog.Logger
	output io.Writer
	apps   []*appRunner
	runDir string
	nextID atomic.Uint64
	ports  portSet

	// SampleEvery is how often CPU and RSS are read from /proc. Default 5s.
	SampleEvery time.Duration
}

type appRunner struct {
	cfg       *config.App
	instances []*instance
}

// New returns a supervisor for cfg's apps. Instance output goes to output,
// one prefixed line per Write; herd's own messages go to log.
func New(cfg *config.Config, hooks Hooks, log *slog.Logger, output io.Writer) *Supervisor {
	s := &Supervisor{hooks: hooks, log: log, output: output, SampleEvery: 5 * time.Second}
	for _, a := range cfg.Apps {
		ar := &appRunner{cfg: a}
		for i := 0; i < int(a.Instances); i++ {
			ar.instances = append(ar.instances, &instance{sup: s, app: a, index: i, state: Starting})
		}
		s.apps = append(s.apps, ar)
	}
	return s
}

// Run starts every instance and keeps them running until ctx ends, then
// stops them all gracefully (in parallel) and returns once every instance
// process is gone.
func (s *Supervisor) Run(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "herd-run-")
	if err != nil {
		return fmt.Errorf("supervisor: creating run folder: %w", err)
	}
	s.runDir = dir
	defer os.RemoveAll(dir)

	var wg sync.WaitGroup
	for _, a := range s.apps {
		for _, in := range a.instances {
			wg.Go(func() { in.run(ctx) })
		}
	}
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	var sampler sync.WaitGroup
	sampler.Go(func() { s.sample(sampleCtx) })
	wg.Wait()
	stopSampling()
	sampler.Wait()
	return nil
}

// AppStatus is the state of one app's instances.
type AppStatus struct {
	Name      string           `json:"name"`
	Instances []InstanceStatus `json:"instances"`
}

// InstanceStatus is a snapshot of one instance slot.
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
}

// Status returns a snapshot of every app, in config order.
func (s *Supervisor) Status() []AppStatus {
	out := make([]AppStatus, 0, len(s.apps))
	for _, a := range s.apps {
		as := AppStatus{Name: a.cfg.Name}
		for _, in := range a.instances {
			as.Instances = append(as.Instances, in.status())
		}
		out = append(out, as)
	}
	return out
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
			for _, in := range a.instances {
				in.sampleUsage(time.Now())
			}
		}
	}
}
