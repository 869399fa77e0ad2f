package monitor

import "github.com/prometheus/client_golang/prometheus"

type descs struct {
	heap, rss, cpu, goroutines, pauseP99, pauseMax, cycles, sched *prometheus.Desc
	over, warnings, actions                                       *prometheus.Desc
}

func newDescs(labels prometheus.Labels) descs {
	d := func(name, help string, varLabels ...string) *prometheus.Desc {
		return prometheus.NewDesc("herd_monitor_"+name, help, varLabels, labels)
	}
	return descs{
		heap:       d("heap_bytes", "Bytes of heap objects, live and not yet swept (/memory/classes/heap/objects:bytes)."),
		rss:        d("rss_bytes", "Resident set size of the process."),
		cpu:        d("cpu_percent", "CPU used over the last interval, in percent of one core."),
		goroutines: d("goroutines", "Live goroutines."),
		pauseP99:   d("gc_pause_p99_seconds", "p99 of the GC pauses in the last interval."),
		pauseMax:   d("gc_pause_max_seconds", "Longest GC pause in the last interval."),
		cycles:     d("gc_cycles_total", "Completed GC cycles."),
		sched:      d("sched_latency_p99_seconds", "p99 of the time goroutines waited to run in the last interval (Go's event-loop lag)."),
		over:       d("over_threshold", "1 while the metric is over its threshold (an episode), else 0.", "metric"),
		warnings:   d("warnings_total", "Episodes over a threshold started.", "metric"),
		actions:    d("actions_total", "Times an episode lasted ActAfter samples and OnAction was called.", "metric"),
	}
}

// Describe implements prometheus.Collector.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	d := m.descs
	for _, desc := range []*prometheus.Desc{d.heap, d.rss, d.cpu, d.goroutines, d.pauseP99, d.pauseMax, d.cycles, d.sched, d.over, d.warnings, d.actions} {
		ch <- desc
	}
}

// Collect implements prometheus.Collector: the latest sample (one is taken
// if Run has taken none yet) and the episode counters.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	s := m.Last()
	if s.Time.IsZero() {
		s = m.Sample()
	}
	d := m.descs
	gauge := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
	gauge(d.heap, float64(s.HeapBytes))
	gauge(d.rss, float64(s.RSSBytes))
	gauge(d.cpu, s.CPUPercent)
	gauge(d.goroutines, float64(s.Goroutines))
	gauge(d.pauseP99, s.GCPauseP99.Seconds())
	gauge(d.pauseMax, s.GCPauseMax.Seconds())
	ch <- prometheus.MustNewConstMetric(d.cycles, prometheus.CounterValue, float64(s.GCCycles))
	gauge(d.sched, s.SchedLatencyP99.Seconds())

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range allMetrics {
		over := 0.0
		if m.episodes[name] != nil {
			over = 1
		}
		ch <- prometheus.MustNewConstMetric(d.over, prometheus.GaugeValue, over, name)
		ch <- prometheus.MustNewConstMetric(d.warnings, prometheus.CounterValue, float64(m.warnings[name]), name)
		ch <- prometheus.MustNewConstMetric(d.actions, prometheus.CounterValue, float64(m.actions[name]), name)
	}
}

// Interface guard.
var _ prometheus.Collector = (*Monitor)(nil)
