package supervisor

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"
)

// checkMemory replaces, gracefully, a ready instance whose RSS went over its
// app's max_memory_restart: a new instance starts, becomes ready, joins the
// pool, and only then the old one drains and stops. If an operation already
// runs on the app, the check waits for the next sample.
func (s *Supervisor) checkMemory(a *appRunner, in *instance) {
	cfg := in.app
	st := in.status()
	if cfg.MaxMemoryRestart <= 0 || st.State != Ready || st.RSSBytes <= uint64(cfg.MaxMemoryRestart) {
		return
	}
	if !a.ops.TryLock() {
		return
	}
	s.background.Go(func() {
		defer a.ops.Unlock()
		s.log.Warn("instance over max_memory_restart; replacing it gracefully",
			"app", a.name, "instance", in.index, "rss", st.RSSBytes, "max_memory_restart", cfg.MaxMemoryRestart.String())
		if err := s.replace(a, in); err != nil {
			s.log.Error("replacing instance over max_memory_restart failed; it keeps serving", "app", a.name, "instance", in.index, "err", err)
		}
	})
}

// replace swaps old for a new instance of the same slot, new first. The
// caller holds a.ops.
func (s *Supervisor) replace(a *appRunner, old *instance) error {
	a.mu.Lock()
	current := old.index < len(a.slots) && a.slots[old.index] == old
	a.mu.Unlock()
	if !current {
		return nil // replaced or scaled away meanwhile
	}
	in, err := s.spawn(a, a.config(), old.index, old.restartCount()+1)
	if err != nil {
		return err
	}
	if err := waitFirst(s.runContext(), []*instance{in}); err != nil {
		in.stop()
		return err
	}
	a.mu.Lock()
	a.slots[old.index] = in
	a.retiring = append(a.retiring, old)
	a.mu.Unlock()
	a.retire([]*instance{old})
	return nil
}

// cronRestarts reloads app gracefully at every time of its cron_restart
// spec, until ctx ends.
func (s *Supervisor) cronRestarts(ctx context.Context, a *appRunner, spec string) {
	sched, err := cron.ParseStandard(spec) // Validate checked it
	if err != nil {
		s.log.Error("bad cron_restart", "app", a.name, "err", err)
		return
	}
	for {
		next := sched.Next(time.Now())
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.log.Info("cron_restart: reloading", "app", a.name, "spec", spec)
		cfg := a.config()
		if err := s.Reload(ctx, a.name, nil, cfg.Reload.Parallel); err != nil {
			s.log.Error("cron_restart reload failed; the old instances keep serving", "app", a.name, "err", err)
		}
	}
}

func (s *Supervisor) runContext() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}
