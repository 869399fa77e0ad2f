package monitor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder collects the callbacks as "warn heap 2" (kind, metric, samples).
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(kind string) func(Alert) {
	return func(a Alert) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, fmt.Sprintf("%s %s %d", kind, a.Metric, a.Consecutive))
	}
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func newRecorded(th Thresholds, actAfter int) (*Monitor, *recorder) {
	r := &recorder{}
	m := New(Options{Thresholds: th, ActAfter: actAfter, Logger: quiet,
		OnWarn: r.add("warn"), OnAction: r.add("act"), OnRecover: r.add("recover")})
	return m, r
}

func TestObserveEpisodes(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		th       Thresholds
		actAfter int
		samples  []Sample
		want     []string
	}{
		{
			name: "once per episode, act at the 4th in a row (the seed's > 3)",
			th:   Thresholds{HeapBytes: 100},
			samples: []Sample{{HeapBytes: 50}, {HeapBytes: 150}, {HeapBytes: 160}, {HeapBytes: 170},
				{HeapBytes: 180}, {HeapBytes: 190}, {HeapBytes: 200}, {HeapBytes: 100}, {HeapBytes: 150}},
			want: []string{"warn heap 1", "act heap 4", "recover heap 6", "warn heap 1"},
		},
		{
			name:    "a dip resets the count",
			th:      Thresholds{CPUPercent: 80},
			samples: []Sample{{CPUPercent: 90}, {CPUPercent: 95}, {CPUPercent: 10}, {CPUPercent: 90}, {CPUPercent: 90}, {CPUPercent: 90}},
			want:    []string{"warn cpu 1", "recover cpu 2", "warn cpu 1"},
		},
		{
			name: "ActAfter 1: warn and act on the first", th: Thresholds{Goroutines: 1000}, actAfter: 1,
			samples: []Sample{{Goroutines: 5000}, {Goroutines: 5000}},
			want:    []string{"warn goroutines 1", "act goroutines 1"},
		},
		{
			name: "ActAfter negative: never act", th: Thresholds{RSSBytes: 10}, actAfter: -1,
			samples: []Sample{{RSSBytes: 11}, {RSSBytes: 11}, {RSSBytes: 11}, {RSSBytes: 11}, {RSSBytes: 11}},
			want:    []string{"warn rss 1"},
		},
		{
			name: "scheduler latency is the event-loop lag", th: Thresholds{SchedLatency: 100 * ms}, actAfter: 2,
			samples: []Sample{{SchedLatencyP99: 50 * ms}, {SchedLatencyP99: 150 * ms}, {SchedLatencyP99: 101 * ms}, {SchedLatencyP99: 100 * ms}},
			want:    []string{"warn sched_latency 1", "act sched_latency 2", "recover sched_latency 2"},
		},
		{
			name: "GC pause by the worst one", th: Thresholds{GCPause: 10 * ms},
			samples: []Sample{{GCPauseP99: 5 * ms, GCPauseMax: 20 * ms}},
			want:    []string{"warn gc_pause 1"},
		},
		{
			name: "each metric its own episode", th: Thresholds{HeapBytes: 100, CPUPercent: 50}, actAfter: 2,
			samples: []Sample{{HeapBytes: 200}, {HeapBytes: 200, CPUPercent: 60}, {CPUPercent: 60}},
			want:    []string{"warn heap 1", "act heap 2", "warn cpu 1", "recover heap 2", "act cpu 2"},
		},
		{
			name:    "no thresholds: nothing",
			samples: []Sample{{HeapBytes: math.MaxUint32, CPUPercent: 800, Goroutines: 1 << 20, SchedLatencyP99: time.Hour}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, r := newRecorded(tt.th, tt.actAfter)
			for _, s := range tt.samples {
				m.Observe(s)
			}
			if got := r.got(); !slices.Equal(got, tt.want) {
				t.Errorf("events %q; want %q", got, tt.want)
			}
		})
	}
}

// Run samples on its ticker, and stops when ctx is done.
func TestRunTicks(t *testing.T) {
	ticks := make(chan time.Time)
	stopped := make(chan struct{})
	acted := make(chan Alert, 1)
	m := New(Options{
		Interval:   time.Minute,
		Thresholds: Thresholds{HeapBytes: 1000},
		ActAfter:   3,
		Logger:     quiet,
		OnAction:   func(a Alert) { acted <- a },
		NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
			if d != time.Minute {
				t.Errorf("ticker interval %s; want the Interval", d)
			}
			return ticks, func() { close(stopped) }
		},
	})
	heaps := []uint64{2000, 3000, 4000}
	var n int
	m.read = func(now time.Time) Sample {
		s := Sample{Time: now, HeapBytes: heaps[n]}
		n++
		return s
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	for range 3 {
		ticks <- time.Now()
	}
	a := <-acted
	if a.Metric != MetricHeap || a.Value != 4000 || a.Consecutive != 3 {
		t.Errorf("action %+v; want heap 4000 after 3 samples", a)
	}
	if got := m.Last().HeapBytes; got != 4000 {
		t.Errorf("Last().HeapBytes = %d; want 4000", got)
	}
	cancel()
	<-done
	<-stopped
}

// The warnings reach the log once per episode, not once per sample.
func TestLogOncePerEpisode(t *testing.T) {
	var buf strings.Builder
	m := New(Options{Thresholds: Thresholds{HeapBytes: 100}, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	for range 10 {
		m.Observe(Sample{HeapBytes: 500})
	}
	m.Observe(Sample{HeapBytes: 5})
	out := buf.String()
	for line, want := range map[string]int{"over threshold\" metric=heap": 1, "consider scaling": 1, "back under threshold": 1} {
		if got := strings.Count(out, line); got != want {
			t.Errorf("%q logged %d times; want %d:\n%s", line, got, want, out)
		}
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	buckets := []float64{math.Inf(-1), 0.001, 0.01, 0.1, inf}
	tests := []struct {
		name         string
		prev, now    []uint64
		q            float64
		wantQ, wantL float64
	}{
		{"nothing new", []uint64{1, 2, 3, 4}, []uint64{1, 2, 3, 4}, 0.99, 0, 0},
		{"all in one bucket", []uint64{0, 0, 0, 0}, []uint64{0, 100, 0, 0}, 0.99, 0.01, 0.01},
		{"p99 in the tail", []uint64{0, 0, 0, 0}, []uint64{0, 98, 1, 1}, 0.99, 0.1, 0.1},
		{"p50", []uint64{0, 0, 0, 0}, []uint64{0, 60, 40, 0}, 0.5, 0.01, 0.1},
		{"only since prev", []uint64{0, 0, 500, 0}, []uint64{0, 10, 500, 0}, 0.99, 0.01, 0.01},
		{"the +Inf bucket gives its lower bound", []uint64{0, 0, 0, 0}, []uint64{0, 0, 0, 3}, 0.99, 0.1, 0.1},
		{"below zero is 0", []uint64{0, 0, 0, 0}, []uint64{5, 0, 0, 0}, 0.99, 0.001, 0.001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			delta := make([]uint64, len(tt.now))
			var total uint64
			for i := range tt.now {
				delta[i] = tt.now[i] - tt.prev[i]
				total += delta[i]
			}
			if got := quantileOf(buckets, delta, total, tt.q); got != tt.wantQ {
				t.Errorf("quantile %g; want %g", got, tt.wantQ)
			}
			if got := largestOf(buckets, delta); got != tt.wantL {
				t.Errorf("largest %g; want %g", got, tt.wantL)
			}
		})
	}
}

// The sampler against the real runtime: each figure moves when the
// process does what it measures.
func TestSamplerReal(t *testing.T) {
	s := newSampler(time.Now())
	base := s.read(time.Now())
	if base.RSSBytes == 0 && runtime.GOOS == "linux" {
		t.Errorf("RSS 0 on Linux")
	}

	t.Run("heap", func(t *testing.T) {
		keep := make([][]byte, 64)
		for i := range keep {
			keep[i] = make([]byte, 1<<20)
		}
		got := s.read(time.Now())
		runtime.KeepAlive(keep)
		if got.HeapBytes < base.HeapBytes+60<<20 {
			t.Errorf("heap %d after 64 MiB more; want at least %d", got.HeapBytes, base.HeapBytes+60<<20)
		}
	})
	t.Run("goroutines", func(t *testing.T) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() { <-stop })
		}
		got := s.read(time.Now())
		close(stop)
		wg.Wait()
		if got.Goroutines < 100 {
			t.Errorf("goroutines %d with 100 parked; want 100 or more", got.Goroutines)
		}
	})
	t.Run("gc", func(t *testing.T) {
		before := s.read(time.Now())
		for range 3 {
			runtime.GC()
		}
		got := s.read(time.Now())
		if got.GCCycles < before.GCCycles+3 {
			t.Errorf("GC cycles %d → %d after 3 runtime.GC; want +3", before.GCCycles, got.GCCycles)
		}
		if got.GCPauseMax <= 0 || got.GCPauseP99 <= 0 || got.GCPauseP99 > got.GCPauseMax {
			t.Errorf("GC pauses p99 %s max %s after 3 GCs; want 0 < p99 <= max", got.GCPauseP99, got.GCPauseMax)
		}
		if after := s.read(time.Now()); after.GCPauseMax != 0 && after.GCCycles == got.GCCycles {
			t.Errorf("pause max %s in an interval without GC; want 0", after.GCPauseMax)
		}
	})
	t.Run("cpu", func(t *testing.T) {
		// Busy for 200 ms of CPU, then read as if 200 ms of wall time had
		// passed: one core's worth, 100 %.
		s.read(time.Now())
		start, cpu0 := s.prevTime, cpuTime()
		for cpuTime()-cpu0 < 200*time.Millisecond {
		}
		got := s.read(start.Add(cpuTime() - cpu0))
		if got.CPUPercent < 85 || got.CPUPercent > 130 {
			t.Errorf("CPU %.1f%% for 200 ms busy in 200 ms; want about 100", got.CPUPercent)
		}
	})
	t.Run("scheduler latency", func(t *testing.T) {
		// Four goroutines spinning on one P wait their turn for the 10 ms
		// preemption slice of the others. The runtime tracks one transition
		// in eight, so the spinners go on until each has been switched out
		// (a gap of 5 ms or more between two of its clock reads) 25 times;
		// a wall-clock deadline alone is eaten by a busy machine.
		prev := runtime.GOMAXPROCS(1)
		defer runtime.GOMAXPROCS(prev)
		s.read(time.Now())
		const spinners, switchesEach = 4, 25
		var done atomic.Int32
		var wg sync.WaitGroup
		giveUp := time.Now().Add(20 * time.Second)
		for range spinners {
			wg.Go(func() {
				switches, last := 0, time.Now()
				for {
					now := time.Now()
					if now.Sub(last) >= 5*time.Millisecond {
						if switches++; switches == switchesEach {
							done.Add(1)
						}
					}
					last = now
					if done.Load() == spinners || now.After(giveUp) {
						return
					}
				}
			})
		}
		wg.Wait()
		got := s.read(time.Now())
		if done.Load() != spinners {
			t.Fatalf("only %d of %d spinners were switched out %d times in 20 s", done.Load(), spinners, switchesEach)
		}
		if got.SchedLatencyP99 < 5*time.Millisecond {
			t.Errorf("scheduler latency p99 %s with 4 spinners on 1 P; want 5 ms or more", got.SchedLatencyP99)
		}
	})
}

func TestCollector(t *testing.T) {
	m := New(Options{Thresholds: Thresholds{HeapBytes: 1}, Logger: quiet, Labels: prometheus.Labels{"app": "shop", "instance": "2"}})
	m.Observe(m.Sample()) // heap over 1 byte: an episode
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"herd_monitor_actions_total", "herd_monitor_cpu_percent", "herd_monitor_gc_cycles_total",
		"herd_monitor_gc_pause_max_seconds", "herd_monitor_gc_pause_p99_seconds", "herd_monitor_goroutines",
		"herd_monitor_heap_bytes", "herd_monitor_over_threshold", "herd_monitor_rss_bytes",
		"herd_monitor_sched_latency_p99_seconds", "herd_monitor_warnings_total",
	}
	var names []string
	values := map[string]float64{}
	for _, f := range families {
		names = append(names, f.GetName())
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["app"] != "shop" || labels["instance"] != "2" {
				t.Errorf("%s labels %v; want app=shop instance=2", f.GetName(), labels)
			}
			key := f.GetName()
			if metric := labels["metric"]; metric != "" {
				key += "{" + metric + "}"
			}
			switch {
			case mt.GetGauge() != nil:
				values[key] = mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				values[key] = mt.GetCounter().GetValue()
			}
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("metric names %q;\nwant the documented %q", names, want)
	}
	for key, want := range map[string]float64{
		"herd_monitor_over_threshold{heap}": 1, "herd_monitor_warnings_total{heap}": 1,
		"herd_monitor_over_threshold{cpu}": 0, "herd_monitor_actions_total{heap}": 0,
	} {
		if got, ok := values[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v); want %v", key, got, ok, want)
		}
	}
	if values["herd_monitor_heap_bytes"] <= 0 || values["herd_monitor_goroutines"] <= 0 {
		t.Errorf("heap %v goroutines %v; want the real figures", values["herd_monitor_heap_bytes"], values["herd_monitor_goroutines"])
	}
}

// The runtime/metrics names the sampler reads exist in this Go.
func TestMetricNamesSupported(t *testing.T) {
	have := map[string]bool{}
	for _, d := range metrics.All() {
		have[d.Name] = true
	}
	for _, name := range []string{nameHeap, nameGoroutines, nameGCCycles, nameGCPauses, nameSched} {
		if !have[name] {
			t.Errorf("runtime/metrics has no %s", name)
		}
	}
}
