package monitor_test

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/herdhq/herd/monitor"
)

// The seed's MemoryMonitor(2048) and EventLoopMonitor(100), once per
// episode. Observe is fed samples here; Run takes real ones every Interval.
func ExampleNew() {
	m := monitor.New(monitor.Options{
		Thresholds: monitor.Thresholds{HeapBytes: 2 << 30, SchedLatency: 100 * time.Millisecond},
		ActAfter:   3,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnWarn: func(a monitor.Alert) {
			fmt.Printf("warn: %s %.0f MiB over %.0f MiB\n", a.Metric, a.Value/(1<<20), a.Threshold/(1<<20))
		},
		OnAction: func(a monitor.Alert) {
			fmt.Printf("act: %s over for %d samples in a row; consider scaling\n", a.Metric, a.Consecutive)
		},
		OnRecover: func(a monitor.Alert) { fmt.Println("recovered:", a.Metric) },
	})
	for _, heapMB := range []uint64{1500, 2100, 2200, 2300, 2400, 1900} {
		m.Observe(monitor.Sample{HeapBytes: heapMB << 20, SchedLatencyP99: 2 * time.Millisecond})
	}
	// Output:
	// warn: heap 2100 MiB over 2048 MiB
	// act: heap over for 3 samples in a row; consider scaling
	// recovered: heap
}
