package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/herdhq/herd/internal/config"
)

// Reload replaces every instance of app with one running cfg (nil: the
// current config), without dropping a request: for each batch of parallel
// slots it starts the new instances, waits until they are ready (they join
// the pool then), and only then drains and stops the old ones. If a new
// instance is not ready within its listen_timeout, the reload stops there:
// the new instance is stopped, the old ones keep serving, and the error says
// why. cfg's instance count is applied after the roll. ctx aborts waiting
// (the old instances stay).
func (s *Supervisor) Reload(ctx context.Context, app string, cfg *config.App, parallel int) error {
	a, err := s.app(app)
	if err != nil {
		return err
	}
	a.ops.Lock()
	defer a.ops.Unlock()
	if cfg == nil {
		cfg = a.config()
	}
	parallel = max(parallel, 1)
	old := a.slotList()
	for start := 0; start < len(old); start += parallel {
		batch := old[start:min(start+parallel, len(old))]
		fresh := make([]*instance, 0, len(batch))
		for _, o := range batch {
			in, err := s.spawn(a, cfg, o.index, o.restartCount()+1)
			if err != nil {
				stopAll(fresh)
				return err
			}
			fresh = append(fresh, in)
		}
		if err := waitFirst(ctx, fresh); err != nil {
			stopAll(fresh)
			return fmt.Errorf("supervisor: reload of %s stopped at instance %d, old instances kept serving: %w", app, batch[0].index, err)
		}
		a.mu.Lock()
		for i, o := range batch {
			a.slots[o.index] = fresh[i]
			a.retiring = append(a.retiring, o)
		}
		a.mu.Unlock()
		a.retire(batch)
	}
	a.setConfig(cfg)
	return s.scaleLocked(ctx, a, int(cfg.Instances))
}

// Restart stops every instance of app (gracefully), then starts them again
// with cfg (nil: the current config). Unlike Reload it does not keep the app
// serving meanwhile. It waits until the new instances are ready.
func (s *Supervisor) Restart(ctx context.Context, app string, cfg *config.App) error {
	a, err := s.app(app)
	if err != nil {
		return err
	}
	a.ops.Lock()
	defer a.ops.Unlock()
	if cfg != nil {
		a.setConfig(cfg)
	}
	old := a.slotList()
	stopAll(old)
	return s.startSlots(ctx, a, old, true)
}

// Stop stops every instance of app gracefully; they stay listed as stopped.
func (s *Supervisor) Stop(ctx context.Context, app string) error {
	a, err := s.app(app)
	if err != nil {
		return err
	}
	a.ops.Lock()
	defer a.ops.Unlock()
	stopAll(a.slotList())
	return nil
}

// Start starts the instances of app that are stopped or errored and waits
// until they are ready; instances already running are left alone.
func (s *Supervisor) Start(ctx context.Context, app string) error {
	a, err := s.app(app)
	if err != nil {
		return err
	}
	a.ops.Lock()
	defer a.ops.Unlock()
	return s.startSlots(ctx, a, a.slotList(), false)
}

// startSlots replaces the instances in slots that are not running (all of
// them if all is set, which the caller has stopped) with new ones, and waits
// for them to be ready.
func (s *Supervisor) startSlots(ctx context.Context, a *appRunner, slots []*instance, all bool) error {
	cfg := a.config()
	var fresh []*instance
	for _, o := range slots {
		if !all && o.running() {
			continue
		}
		in, err := s.spawn(a, cfg, o.index, o.restartCount()+1)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.slots[o.index] = in
		a.mu.Unlock()
		fresh = append(fresh, in)
	}
	if err := waitFirst(ctx, fresh); err != nil {
		return fmt.Errorf("supervisor: starting %s: %w (herd keeps restarting it)", a.name, err)
	}
	return nil
}

// Scale sets the number of instances of app to n: new slots are started and
// waited for; surplus slots (the highest indexes) are drained and stopped.
func (s *Supervisor) Scale(ctx context.Context, app string, n int) error {
	if n < 0 {
		return fmt.Errorf("supervisor: cannot scale %s to %d instances", app, n)
	}
	a, err := s.app(app)
	if err != nil {
		return err
	}
	a.ops.Lock()
	defer a.ops.Unlock()
	cfg := *a.config()
	cfg.Instances = config.Instances(n)
	a.setConfig(&cfg)
	return s.scaleLocked(ctx, a, n)
}

// Instances returns how many slots app has now.
func (s *Supervisor) Instances(app string) (int, error) {
	a, err := s.app(app)
	if err != nil {
		return 0, err
	}
	return len(a.slotList()), nil
}

func (s *Supervisor) scaleLocked(ctx context.Context, a *appRunner, n int) error {
	slots := a.slotList()
	switch {
	case n > len(slots):
		cfg := a.config()
		var fresh []*instance
		for i := len(slots); i < n; i++ {
			in, err := s.spawn(a, cfg, i, 0)
			if err != nil {
				return err
			}
			a.mu.Lock()
			a.slots = append(a.slots, in)
			a.mu.Unlock()
			fresh = append(fresh, in)
		}
		if err := waitFirst(ctx, fresh); err != nil {
			return fmt.Errorf("supervisor: scaling %s up: %w (herd keeps restarting it)", a.name, err)
		}
	case n < len(slots):
		surplus := slots[n:]
		a.mu.Lock()
		a.slots = a.slots[:n]
		a.retiring = append(a.retiring, surplus...)
		a.mu.Unlock()
		a.retire(surplus)
	}
	return nil
}

// Signal sends sig to the process group of every instance of app.
func (s *Supervisor) Signal(app string, sig syscall.Signal) error {
	a, err := s.app(app)
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range a.slotList() {
		errs = append(errs, in.signal(sig))
	}
	return errors.Join(errs...)
}

// retire stops instances that left a's slots and forgets them.
func (a *appRunner) retire(old []*instance) {
	stopAll(old)
	a.mu.Lock()
	defer a.mu.Unlock()
	kept := a.retiring[:0]
	for _, r := range a.retiring {
		gone := false
		for _, o := range old {
			gone = gone || r == o
		}
		if !gone {
			kept = append(kept, r)
		}
	}
	a.retiring = kept
}

func (a *appRunner) slotList() []*instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*instance(nil), a.slots...)
}

func (a *appRunner) config() *config.App {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

func (a *appRunner) setConfig(cfg *config.App) {
	a.mu.Lock()
	a.cfg = cfg
	a.mu.Unlock()
}

// stopAll stops instances in parallel and waits for all of them.
func stopAll(ins []*instance) {
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Go(in.stop)
	}
	wg.Wait()
}

// waitFirst waits for the first start of each instance; the first failure
// (or ctx's end) is returned.
func waitFirst(ctx context.Context, ins []*instance) error {
	for _, in := range ins {
		select {
		case err := <-in.first:
			in.first <- err // keep it for anyone else asking
			if err != nil {
				return fmt.Errorf("instance %d: %w", in.index, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Config returns the config app's new instances start with: the one of the
// last reload, restart or scale.
func (s *Supervisor) Config(app string) (*config.App, error) {
	a, err := s.app(app)
	if err != nil {
		return nil, err
	}
	return a.config(), nil
}
