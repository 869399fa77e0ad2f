package app

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/supervisor"
)

// autoscaleEvery paces the autoscaler's samples of the load.
const autoscaleEvery = 250 * time.Millisecond

// scaler decides one app's instance count from samples of its load; it
// holds no clock and does no I/O, so its rules are tested as a table.
//
// The rules: the load is averaged over the last second of samples (so one
// burst does not add instances); the wanted count is the load over the
// target, rounded up, within min and max. More than the current count is
// acted on at once; fewer only once every sample of a whole cooldown
// wanted fewer, and then to the most any of them wanted, as an HPA's
// scale-down stabilization window does.
type scaler struct {
	min, max int
	target   float64 // load one instance should carry
	cooldown time.Duration

	recent []float64 // the last second's loads
	since  time.Time // start of the samples in wants
	wants  []int     // wanted counts since then
}

func newScaler(as *config.Autoscale) *scaler {
	target := float64(as.Inflight)
	if as.CPU > 0 {
		target = as.CPU
	}
	return &scaler{min: as.Min, max: as.Max, target: target, cooldown: time.Duration(as.Cooldown)}
}

// decide takes one sample (the load now, the current count) and returns
// the count to scale to, or current, and why.
func (s *scaler) decide(now time.Time, current int, load float64) (int, string) {
	s.recent = append(s.recent, load)
	if len(s.recent) > int(time.Second/autoscaleEvery) {
		s.recent = s.recent[1:]
	}
	avg := 0.0
	for _, l := range s.recent {
		avg += l
	}
	avg /= float64(len(s.recent))
	want := int(math.Ceil(avg/s.target - 1e-9))
	want = min(max(want, s.min), s.max)
	why := fmt.Sprintf("load %.1f for a target of %g per instance", avg, s.target)
	switch {
	case want > current:
		s.reset(now)
		return want, why
	case want == current || current < s.min:
		s.reset(now)
		return max(current, s.min), why
	}
	if len(s.wants) == 0 {
		s.since = now
	}
	s.wants = append(s.wants, want)
	if now.Sub(s.since) < s.cooldown {
		return current, why
	}
	most := 0
	for _, w := range s.wants {
		most = max(most, w)
	}
	s.reset(now)
	return most, fmt.Sprintf("%s, under it for %s", why, s.cooldown)
}

func (s *scaler) reset(now time.Time) {
	s.wants, s.since = s.wants[:0], now
}

// autoscalers run the autoscale: of every app that has one.
type autoscalers struct {
	sup    *supervisor.Supervisor
	pools  map[string]*balance.Pool
	log    *slog.Logger
	apps   []*config.App
	status func() []supervisor.AppStatus
}

// run samples every app's load until ctx ends, scaling as decide says.
func (a *autoscalers) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, app := range a.apps {
		if app.Autoscale != nil {
			wg.Go(func() { a.runOne(ctx, app) })
		}
	}
	wg.Wait()
}

func (a *autoscalers) runOne(ctx context.Context, app *config.App) {
	s := newScaler(app.Autoscale)
	log := a.log.With("app", app.Name)
	t := time.NewTicker(autoscaleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			current, err := a.sup.Instances(app.Name)
			if err != nil || current == 0 {
				continue // stopped by hand: not the autoscaler's to start
			}
			n, why := s.decide(now, current, a.load(app))
			if n == current {
				continue
			}
			log.Info(fmt.Sprintf("autoscale: %d → %d instances", current, n), "why", why)
			if err := a.sup.Scale(ctx, app.Name, n); err != nil && ctx.Err() == nil {
				log.Warn("autoscale failed; trying again later", "to", n, "err", err)
			}
		}
	}
}

// load is what the app's target measures: requests in flight and queued
// (inflight:), or the ready instances' CPU percent summed (cpu:).
func (a *autoscalers) load(app *config.App) float64 {
	if app.Autoscale.CPU > 0 {
		total := 0.0
		for _, st := range a.status() {
			if st.Name != app.Name {
				continue
			}
			for _, in := range st.Instances {
				if in.State == supervisor.Ready {
					total += in.CPUPercent
				}
			}
		}
		return total
	}
	pool := a.pools[app.Name]
	if pool == nil {
		return 0
	}
	return float64(pool.Inflight() + pool.Waiting())
}
