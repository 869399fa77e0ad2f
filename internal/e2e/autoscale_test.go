package e2e

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAutoscaleFollowsALoadStep: a step of 8 clients on an app whose
// instances serve one request at a time raises the instances to max, the
// latency recovers, and after the load the instances fall back to min
// after the cooldown, without a failed request.
func TestAutoscaleFollowsALoadStep(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
    autoscale: {min: 1, max: 4, inflight: 2, cooldown: 2s}
routes:
  - path: /
    to: web
`)
	if n := len(h.status()["web"]); n != 1 {
		t.Fatalf("starts with %d instances; want min, 1", n)
	}
	var failed, ok atomic.Int64
	var mu sync.Mutex
	var lat []struct {
		at time.Time
		d  time.Duration
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := newRawClient(h.public)
			defer c.close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				code, body, err := c.do("GET", "/work?ms=40", "")
				if err != nil || code != 200 || !strings.Contains(string(body), `"pid"`) {
					failed.Add(1)
					t.Logf("failed: %d %s %v", code, body, err)
					continue
				}
				ok.Add(1)
				mu.Lock()
				lat = append(lat, struct {
					at time.Time
					d  time.Duration
				}{start, time.Since(start)})
				mu.Unlock()
			}
		})
	}
	loadStart := time.Now()
	var firstScale time.Time // when a second instance first appeared
	waitFor(t, 20*time.Second, "the instances to rise to max (4)", func() bool {
		if firstScale.IsZero() && len(h.status()["web"]) > 1 {
			firstScale = time.Now()
		}
		n := 0
		for _, in := range h.status()["web"] {
			if in.State == "ready" {
				n++
			}
		}
		return n == 4
	})
	scaled := time.Now()
	time.Sleep(2 * time.Second) // a stretch of load on 4 instances to measure
	close(stop)
	wg.Wait()

	median := func(from, to time.Time) time.Duration {
		var ds []time.Duration
		for _, l := range lat {
			if !l.at.Before(from) && l.at.Before(to) {
				ds = append(ds, l.d)
			}
		}
		if len(ds) == 0 {
			return 0
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	// Requests sent while one instance served them all, against those sent
	// once four did.
	first := median(loadStart, firstScale)
	last := median(scaled.Add(500*time.Millisecond), scaled.Add(2*time.Second))
	t.Logf("rose to 4 in %s; median latency %s on 1 instance, %s on 4", scaled.Sub(loadStart).Round(time.Millisecond), first, last)
	if last == 0 || first == 0 || last > first*2/3 {
		t.Errorf("median latency %s at the start, %s on 4 instances; want it to recover", first, last)
	}
	waitFor(t, 20*time.Second, "the instances to fall back to min (1) after the cooldown", func() bool {
		return len(h.status()["web"]) == 1
	})
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the step; want none", failed.Load(), failed.Load()+ok.Load())
	}
	if !strings.Contains(h.out.String(), "autoscale: 1 → ") {
		t.Errorf("herd's log does not say what the autoscaler did:\n%s", h.out.String())
	}
}
