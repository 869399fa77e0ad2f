// Package monitor is the seed's MemoryMonitor, CPUMonitor and
// EventLoopMonitor for a Go app: it samples the process on an interval
// (heap, RSS, CPU %, GC pauses, goroutines, and the scheduler latency that
// is Go's event-loop lag), warns when a sample crosses a threshold, acts
// after several warnings in a row, and exports what it saw as Prometheus
// metrics.
//
//	m := monitor.New(monitor.Options{
//		Thresholds: monitor.Thresholds{HeapBytes: 2 << 30, SchedLatency: 100 * time.Millisecond},
//		OnAction:   func(a monitor.Alert) { log.Printf("consider scaling: %v", a) },
//	})
//	prometheus.MustRegister(m)
//	go m.Run(ctx)
//
// # Warnings, once per episode
//
// The seed logs a warning at every sample over the threshold, so one bad
// minute is thirty lines. Here an episode starts with the first sample over
// a threshold and ends with the first one back under it: OnWarn is called
// (and one line logged) when it starts, OnAction once when it has lasted
// ActAfter samples in a row (the seed's "warningCount > 3": 4 by default),
// and OnRecover when it ends. Each metric has its own episodes.
//
// # What is measured
//
// Every figure but RSS and CPU comes from runtime/metrics, which is cheap
// to read and needs no stop-the-world:
//
//   - heap: /memory/classes/heap/objects:bytes, the bytes of heap objects
//     (live and not yet swept), the seed's heapUsed;
//   - GC pauses: /sched/pauses/total/gc:seconds, the pauses since the last
//     sample (p99 and worst);
//   - goroutines: /sched/goroutines:goroutines;
//   - scheduler latency: /sched/latencies:seconds, how long goroutines
//     waited in the run queue before they ran, since the last sample (p99):
//     when it is high, every request waits that long before its handler
//     runs, as in a lagging Node event loop;
//   - RSS: /proc/self/statm (Linux; 0 elsewhere);
//   - CPU: user+system time from getrusage over wall time since the last
//     sample, in percent of one core (200 means two cores busy), as the
//     seed's CPUMonitor computes it.
//
// # Metric names
//
// A Monitor is a prometheus.Collector. Its names are stable; the labels
// are Options.Labels, by default app and instance from HERD_APP and
// HERD_INSTANCE when herd runs the process:
//
//	herd_monitor_heap_bytes                      gauge
//	herd_monitor_rss_bytes                       gauge
//	herd_monitor_cpu_percent                     gauge   percent of one core
//	herd_monitor_goroutines                      gauge
//	herd_monitor_gc_pause_p99_seconds            gauge   over the last interval
//	herd_monitor_gc_pause_max_seconds            gauge   over the last interval
//	herd_monitor_gc_cycles_total                 counter
//	herd_monitor_sched_latency_p99_seconds       gauge   over the last interval
//	herd_monitor_over_threshold{metric}          gauge   1 during an episode
//	herd_monitor_warnings_total{metric}          counter episodes started
//	herd_monitor_actions_total{metric}           counter OnAction calls
//
// where metric is one of heap, rss, cpu, goroutines, gc_pause,
// sched_latency (the Metric* constants).
package monitor
