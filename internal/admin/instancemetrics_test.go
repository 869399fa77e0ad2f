package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/supervisor"
)

// Every per-instance figure reaches /metrics under its documented name,
// one series per slot even while a reload runs two processes in it.
func TestInstanceFiguresOnMetrics(t *testing.T) {
	var stats balance.Stats
	stats.Response(200, 2*time.Millisecond)
	stats.Response(200, 30*time.Millisecond)
	stats.Response(502, 3*time.Second)
	stats.Failed()
	snap := stats.Snapshot()
	code := 137
	old, started := time.Unix(1000, 0), time.Unix(2000, 0)
	status := func() []supervisor.AppStatus {
		return []supervisor.AppStatus{{Name: "web", Instances: []supervisor.InstanceStatus{
			// slot 0 during a reload: the old process draining, the new one ready
			{Index: 0, State: supervisor.Draining, Pid: 10, StartedAt: old, OpenFiles: 20, Threads: 7, Requests: &snap,
				Lag: &supervisor.Lag{P50Ms: 9, P99Ms: 90, MaxMs: 900}, ReadyAfterSeconds: 9},
			{Index: 0, State: supervisor.Ready, Pid: 11, StartedAt: started, OpenFiles: 21, Threads: 8, Requests: &snap,
				Lag: &supervisor.Lag{P50Ms: 1, P99Ms: 4, MaxMs: 12}, ReadyAfterSeconds: 0.25, LastExitCode: &code},
		}}}
	}
	m := NewMetrics(status)
	want := `
# HELP herd_instance_event_loop_lag_seconds Event-loop delay of each Node instance over about the last second, measured in the app by herd's preload (quantile 1 is the max).
# TYPE herd_instance_event_loop_lag_seconds gauge
herd_instance_event_loop_lag_seconds{app="web",instance="0",quantile="0.5"} 0.001
herd_instance_event_loop_lag_seconds{app="web",instance="0",quantile="0.99"} 0.004
herd_instance_event_loop_lag_seconds{app="web",instance="0",quantile="1"} 0.012
# HELP herd_instance_last_exit_code Exit code of each instance slot's last exit (-1: a signal, or it could not start); absent before any exit.
# TYPE herd_instance_last_exit_code gauge
herd_instance_last_exit_code{app="web",instance="0"} 137
# HELP herd_instance_open_files Open file descriptors of each instance's process.
# TYPE herd_instance_open_files gauge
herd_instance_open_files{app="web",instance="0"} 41
# HELP herd_instance_proxy_errors_total Attempts to each instance slot that got no response (refused, reset, timed out).
# TYPE herd_instance_proxy_errors_total counter
herd_instance_proxy_errors_total{app="web",instance="0"} 1
# HELP herd_instance_ready_seconds How long each instance's newest process took from spawn to ready (the readiness check's latency).
# TYPE herd_instance_ready_seconds gauge
herd_instance_ready_seconds{app="web",instance="0"} 0.25
# HELP herd_instance_responses_total Responses from each instance slot by status class (1xx..5xx), retried attempts included.
# TYPE herd_instance_responses_total counter
herd_instance_responses_total{app="web",class="1xx",instance="0"} 0
herd_instance_responses_total{app="web",class="2xx",instance="0"} 2
herd_instance_responses_total{app="web",class="3xx",instance="0"} 0
herd_instance_responses_total{app="web",class="4xx",instance="0"} 0
herd_instance_responses_total{app="web",class="5xx",instance="0"} 1
# HELP herd_instance_start_time_seconds Start time of each instance's newest process, in seconds since the Unix epoch (uptime: time() - this).
# TYPE herd_instance_start_time_seconds gauge
herd_instance_start_time_seconds{app="web",instance="0"} 2000
# HELP herd_instance_threads OS threads of each instance's process.
# TYPE herd_instance_threads gauge
herd_instance_threads{app="web",instance="0"} 15
`
	names := []string{"herd_instance_event_loop_lag_seconds", "herd_instance_last_exit_code", "herd_instance_open_files",
		"herd_instance_proxy_errors_total", "herd_instance_ready_seconds", "herd_instance_responses_total",
		"herd_instance_start_time_seconds", "herd_instance_threads"}
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// The histogram is cumulative, its count the responses (not the error).
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "herd_instance_response_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 3 {
			t.Errorf("response histogram count %d; want 3", h.GetSampleCount())
		}
		for _, b := range h.GetBucket() {
			want := uint64(0)
			switch {
			case b.GetUpperBound() >= 5:
				want = 3
			case b.GetUpperBound() >= 0.05:
				want = 2
			case b.GetUpperBound() >= 0.0025:
				want = 1
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("bucket le=%g: %d; want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
		return
	}
	t.Error("no herd_instance_response_seconds")
}
