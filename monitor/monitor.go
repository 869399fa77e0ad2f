package monitor

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics a threshold can be set on, as Alert.Metric and the metric
// label of the Prometheus series.
const (
	MetricHeap         = "heap"
	MetricRSS          = "rss"
	MetricCPU          = "cpu"
	MetricGoroutines   = "goroutines"
	MetricGCPause      = "gc_pause"
	MetricSchedLatency = "sched_latency"
)

var allMetrics = []string{MetricHeap, MetricRSS, MetricCPU, MetricGoroutines, MetricGCPause, MetricSchedLatency}

// Sample is one look at the process.
type Sample struct {
	Time       time.Time
	HeapBytes  uint64
	RSSBytes   uint64  // 0 where /proc/self/statm cannot be read
	CPUPercent float64 // of one core, since the previous sample
	Goroutines int
	GCCycles   uint64
	// GCPauseP99 and GCPauseMax are over the GC pauses since the previous
	// sample; 0 when there were none. They are bucket bounds of the
	// runtime's histogram, so exact to within its resolution (a few %).
	GCPauseP99 time.Duration
	GCPauseMax time.Duration
	// SchedLatencyP99 is the p99 of the time goroutines waited to run
	// since the previous sample.
	SchedLatencyP99 time.Duration
}

// Thresholds are the values over which a sample starts an episode. Zero
// turns a threshold off.
type Thresholds struct {
	HeapBytes    uint64
	RSSBytes     uint64
	CPUPercent   float64 // of one core, e.g. 80 as in the seed
	Goroutines   int
	GCPause      time.Duration // compared with GCPauseMax
	SchedLatency time.Duration // compared with SchedLatencyP99, like the seed's event-loop lag
}

// Alert tells a callback which threshold was crossed.
type Alert struct {
	Metric      string  // one of the Metric* constants
	Value       float64 // in base units: bytes, percent, goroutines, seconds
	Threshold   float64 // the same units
	Consecutive int     // samples over the threshold in a row, this one included
	Time        time.Time
}

func (a Alert) String() string {
	return fmt.Sprintf("%s %g over %g for %d samples", a.Metric, a.Value, a.Threshold, a.Consecutive)
}

// Options configure a Monitor. The zero value samples every 5 s with no
// thresholds.
type Options struct {
	// Interval between samples. Default 5s (the seed's event-loop check;
	// its memory and CPU checks use 30s).
	Interval time.Duration
	// Thresholds that start episodes. Default: none.
	Thresholds Thresholds
	// ActAfter is the number of samples in a row over a threshold after
	// which OnAction is called, once per episode. Default 4, the seed's
	// "warningCount > 3"; negative: never.
	ActAfter int
	// OnWarn is called when an episode starts; OnAction when it reaches
	// ActAfter samples; OnRecover when a sample is back under the
	// threshold. Each is called from Run's goroutine (or Observe's caller);
	// nil means none. Default: none, but the logger logs each.
	OnWarn, OnAction, OnRecover func(Alert)
	// Logger gets one line per warning (Warn), action (Error) and recovery
	// (Info). Default slog.Default(); use a discarding logger for none.
	Logger *slog.Logger
	// Labels are constant labels on every Prometheus series. Default: app
	// and instance from HERD_APP and HERD_INSTANCE, when set.
	Labels prometheus.Labels
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// NewTicker makes the ticker Run samples on; stop stops it. Default
	// time.NewTicker. Tests pass a channel they send on.
	NewTicker func(d time.Duration) (c <-chan time.Time, stop func())
}

// Monitor samples the process and keeps episode state. Its methods are
// safe for concurrent use. Make one with New.
type Monitor struct {
	opts Options
	log  *slog.Logger
	read func(now time.Time) Sample // the process seam; tests replace it

	mu       sync.Mutex
	last     Sample
	episodes map[string]*episode
	warnings map[string]uint64
	actions  map[string]uint64

	sampler *sampler
	descs   descs
}

type episode struct {
	consecutive int
}

// New returns a Monitor with opts' defaults applied; nothing runs until Run.
func New(opts Options) *Monitor {
	opts.Interval = cmp.Or(opts.Interval, 5*time.Second)
	opts.ActAfter = cmp.Or(opts.ActAfter, 4)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewTicker == nil {
		opts.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if opts.Labels == nil {
		opts.Labels = prometheus.Labels{}
		if app := os.Getenv("HERD_APP"); app != "" {
			opts.Labels["app"] = app
			opts.Labels["instance"] = os.Getenv("HERD_INSTANCE")
		}
	}
	m := &Monitor{
		opts:     opts,
		log:      cmp.Or(opts.Logger, slog.Default()),
		episodes: map[string]*episode{},
		warnings: map[string]uint64{},
		actions:  map[string]uint64{},
		sampler:  newSampler(opts.Now()),
		descs:    newDescs(opts.Labels),
	}
	m.read = m.sampler.read
	return m
}

// Run samples every Interval and checks each sample against the
// thresholds, until ctx is done.
func (m *Monitor) Run(ctx context.Context) {
	c, stop := m.opts.NewTicker(m.opts.Interval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
			m.Observe(m.Sample())
		}
	}
}

// Sample takes a sample now, without checking thresholds. Rates and
// percentiles in it are over the time since the previous Sample.
func (m *Monitor) Sample() Sample {
	s := m.read(m.opts.Now())
	m.mu.Lock()
	m.last = s
	m.mu.Unlock()
	return s
}

// Last returns the latest sample, or the zero Sample before the first.
func (m *Monitor) Last() Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// Observe checks s against the thresholds and calls the callbacks; Run
// does this for every sample it takes.
func (m *Monitor) Observe(s Sample) {
	th := m.opts.Thresholds
	type check struct {
		metric       string
		value, limit float64
	}
	checks := []check{
		{MetricHeap, float64(s.HeapBytes), float64(th.HeapBytes)},
		{MetricRSS, float64(s.RSSBytes), float64(th.RSSBytes)},
		{MetricCPU, s.CPUPercent, th.CPUPercent},
		{MetricGoroutines, float64(s.Goroutines), float64(th.Goroutines)},
		{MetricGCPause, s.GCPauseMax.Seconds(), th.GCPause.Seconds()},
		{MetricSchedLatency, s.SchedLatencyP99.Seconds(), th.SchedLatency.Seconds()},
	}
	var calls []func()
	m.mu.Lock()
	for _, c := range checks {
		if c.limit <= 0 {
			continue
		}
		ep := m.episodes[c.metric]
		if c.value <= c.limit {
			if ep != nil {
				delete(m.episodes, c.metric)
				a := Alert{Metric: c.metric, Value: c.value, Threshold: c.limit, Consecutive: ep.consecutive, Time: s.Time}
				calls = append(calls, func() { m.recovered(a) })
			}
			continue
		}
		if ep == nil {
			ep = &episode{}
			m.episodes[c.metric] = ep
			m.warnings[c.metric]++
		}
		ep.consecutive++
		a := Alert{Metric: c.metric, Value: c.value, Threshold: c.limit, Consecutive: ep.consecutive, Time: s.Time}
		if ep.consecutive == 1 {
			calls = append(calls, func() { m.warn(a) })
		}
		if ep.consecutive == m.opts.ActAfter {
			m.actions[c.metric]++
			calls = append(calls, func() { m.act(a) })
		}
	}
	m.mu.Unlock()
	// Callbacks run without the lock, so they may call Last or Sample.
	for _, f := range calls {
		f()
	}
}

func (m *Monitor) warn(a Alert) {
	m.log.Warn("monitor: over threshold", alertAttrs(a)...)
	if m.opts.OnWarn != nil {
		m.opts.OnWarn(a)
	}
}

func (m *Monitor) act(a Alert) {
	m.log.Error("monitor: over threshold for too long; consider scaling", alertAttrs(a)...)
	if m.opts.OnAction != nil {
		m.opts.OnAction(a)
	}
}

func (m *Monitor) recovered(a Alert) {
	m.log.Info("monitor: back under threshold", alertAttrs(a)...)
	if m.opts.OnRecover != nil {
		m.opts.OnRecover(a)
	}
}

func alertAttrs(a Alert) []any {
	return []any{"metric", a.Metric, "value", a.Value, "threshold", a.Threshold, "samples", a.Consecutive}
}

// sampler reads the process; it keeps the previous cumulative figures to
// turn them into rates and per-interval percentiles.
type sampler struct {
	mu        sync.Mutex
	metrics   []metrics.Sample
	prevTime  time.Time
	prevCPU   time.Duration
	prevPause []uint64
	prevSched []uint64
}

const (
	nameHeap       = "/memory/classes/heap/objects:bytes"
	nameGoroutines = "/sched/goroutines:goroutines"
	nameGCCycles   = "/gc/cycles/total:gc-cycles"
	nameGCPauses   = "/sched/pauses/total/gc:seconds"
	nameSched      = "/sched/latencies:seconds"
)

func newSampler(now time.Time) *sampler {
	s := &sampler{metrics: []metrics.Sample{{Name: nameHeap}, {Name: nameGoroutines}, {Name: nameGCCycles}, {Name: nameGCPauses}, {Name: nameSched}}}
	s.prevTime, s.prevCPU = now, cpuTime()
	metrics.Read(s.metrics)
	s.prevPause = counts(s.metrics[3].Value)
	s.prevSched = counts(s.metrics[4].Value)
	return s
}

func (s *sampler) read(now time.Time) Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	metrics.Read(s.metrics)
	out := Sample{
		Time:       now,
		HeapBytes:  uint64Value(s.metrics[0].Value),
		Goroutines: int(uint64Value(s.metrics[1].Value)),
		GCCycles:   uint64Value(s.metrics[2].Value),
		RSSBytes:   rss(),
	}
	cpu := cpuTime()
	if wall := now.Sub(s.prevTime); wall > 0 {
		out.CPUPercent = float64(cpu-s.prevCPU) / float64(wall) * 100
	}
	s.prevTime, s.prevCPU = now, cpu
	var p99, maxPause float64
	p99, maxPause, s.prevPause = intervalQuantile(s.metrics[3].Value, s.prevPause, 0.99)
	out.GCPauseP99, out.GCPauseMax = seconds(p99), seconds(maxPause)
	p99, _, s.prevSched = intervalQuantile(s.metrics[4].Value, s.prevSched, 0.99)
	out.SchedLatencyP99 = seconds(p99)
	return out
}

func uint64Value(v metrics.Value) uint64 {
	if v.Kind() == metrics.KindUint64 {
		return v.Uint64()
	}
	return 0
}

func counts(v metrics.Value) []uint64 {
	if v.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return append([]uint64(nil), v.Float64Histogram().Counts...)
}

// intervalQuantile returns the q-quantile and the largest value among the
// observations a cumulative histogram gained since prev, and its counts to
// keep as the next prev.
func intervalQuantile(v metrics.Value, prev []uint64, q float64) (quantile, largest float64, now []uint64) {
	if v.Kind() != metrics.KindFloat64Histogram {
		return 0, 0, prev
	}
	h := v.Float64Histogram()
	delta := make([]uint64, len(h.Counts))
	var total uint64
	for i, c := range h.Counts {
		if i < len(prev) && c >= prev[i] {
			c -= prev[i]
		}
		delta[i] = c
		total += c
	}
	return quantileOf(h.Buckets, delta, total, q), largestOf(h.Buckets, delta), counts(v)
}

// quantileOf is the upper bound of the bucket holding the q-quantile of
// counts (buckets[i], buckets[i+1]) is bucket i; an infinite upper bound
// gives the lower one.
func quantileOf(buckets []float64, counts []uint64, total uint64, q float64) float64 {
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return bound(buckets, i)
		}
	}
	return bound(buckets, len(counts)-1)
}

func largestOf(buckets []float64, counts []uint64) float64 {
	for i := len(counts) - 1; i >= 0; i-- {
		if counts[i] > 0 {
			return bound(buckets, i)
		}
	}
	return 0
}

func bound(buckets []float64, i int) float64 {
	if hi := buckets[i+1]; !math.IsInf(hi, 1) {
		return hi
	}
	return max(buckets[i], 0)
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
