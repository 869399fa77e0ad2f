package admin

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/supervisor"
)

// Metrics holds herd's Prometheus metrics. Request metrics are recorded by
// ObserveRequest; instance metrics are read from the status function at
// scrape time, so they cost nothing between scrapes.
type Metrics struct {
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series caches each label set's counter and histogram, sparing the
	// vectors' label hashing on every request. The label sets are few
	// (routes × apps × status codes) and settle quickly, so the map is
	// copied on a miss and read without a lock.
	series   atomic.Pointer[map[seriesKey]*requestSeries]
	seriesMu sync.Mutex // held to add to series
}

type seriesKey struct {
	route, app string
	status     int
}

type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics registers herd's metrics, the instance collector for status, and
// the Go and process collectors for herd itself.
func NewMetrics(status StatusFunc) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herd_requests_total",
			Help: "Requests handled by the proxy, by route, app and status code (499: client went away).",
		}, []string{"route", "app", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herd_request_duration_seconds",
			Help:    "Time from request to the end of the response, by route and app.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "app"}),
	}
	m.Registry.MustRegister(m.requests, m.duration,
		instanceCollector{status: status},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveRequest records one finished request.
func (m *Metrics) ObserveRequest(route, app string, status int, elapsed time.Duration) {
	key := seriesKey{route, app, status}
	var s *requestSeries
	if series := m.series.Load(); series != nil {
		s = (*series)[key]
	}
	if s == nil {
		s = m.addSeries(key)
	}
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

// addSeries returns key's series, adding it to a copy of m.series if it
// is not there yet.
func (m *Metrics) addSeries(key seriesKey) *requestSeries {
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	var old map[seriesKey]*requestSeries
	if p := m.series.Load(); p != nil {
		old = *p
	}
	if s := old[key]; s != nil {
		return s
	}
	s := &requestSeries{
		requests: m.requests.WithLabelValues(key.route, key.app, strconv.Itoa(key.status)),
		duration: m.duration.WithLabelValues(key.route, key.app),
	}
	next := make(map[seriesKey]*requestSeries, len(old)+1)
	maps.Copy(next, old)
	next[key] = s
	m.series.Store(&next)
	return s
}

var (
	instanceLabels = []string{"app", "instance"}

	descState = prometheus.NewDesc("herd_instance_state",
		"Processes of each instance slot in each state: 1 for the slot's state (2 processes briefly during a reload).", []string{"app", "instance", "state"}, nil)
	descRestarts = prometheus.NewDesc("herd_instance_restarts_total",
		"Restarts of each instance slot since herd started.", instanceLabels, nil)
	descCPU = prometheus.NewDesc("herd_instance_cpu_ratio",
		"CPU used by each instance over the last sample interval (1 = one core).", instanceLabels, nil)
	descRSS = prometheus.NewDesc("herd_instance_resident_memory_bytes",
		"Resident memory of each instance.", instanceLabels, nil)
	descInflight = prometheus.NewDesc("herd_instance_inflight_requests",
		"Requests in flight to each instance.", instanceLabels, nil)
	descFiles = prometheus.NewDesc("herd_instance_open_files",
		"Open file descriptors of each instance's process.", instanceLabels, nil)
	descThreads = prometheus.NewDesc("herd_instance_threads",
		"OS threads of each instance's process.", instanceLabels, nil)
	descStarted = prometheus.NewDesc("herd_instance_start_time_seconds",
		"Start time of each instance's newest process, in seconds since the Unix epoch (uptime: time() - this).", instanceLabels, nil)
	descReadyAfter = prometheus.NewDesc("herd_instance_ready_seconds",
		"How long each instance's newest process took from spawn to ready (the readiness check's latency).", instanceLabels, nil)
	descExitCode = prometheus.NewDesc("herd_instance_last_exit_code",
		"Exit code of each instance slot's last exit (-1: a signal, or it could not start); absent before any exit.", instanceLabels, nil)
	descLag = prometheus.NewDesc("herd_instance_event_loop_lag_seconds",
		"Event-loop delay of each Node instance over about the last second, measured in the app by herd's preload (quantile 1 is the max).", []string{"app", "instance", "quantile"}, nil)
	descResponses = prometheus.NewDesc("herd_instance_responses_total",
		"Responses from each instance slot by status class (1xx..5xx), retried attempts included.", []string{"app", "instance", "class"}, nil)
	descProxyErrors = prometheus.NewDesc("herd_instance_proxy_errors_total",
		"Attempts to each instance slot that got no response (refused, reset, timed out).", instanceLabels, nil)
	descResponseTime = prometheus.NewDesc("herd_instance_response_seconds",
		"Time from sending a request to each instance slot to its response head.", instanceLabels, nil)

	instanceDescs = []*prometheus.Desc{descState, descRestarts, descCPU, descRSS, descInflight,
		descFiles, descThreads, descStarted, descReadyAfter, descExitCode, descLag,
		descResponses, descProxyErrors, descResponseTime}
	statusClasses = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}
)

var allStates = []supervisor.State{supervisor.Starting, supervisor.Ready, supervisor.Draining,
	supervisor.Backoff, supervisor.Errored, supervisor.Stopped}

type instanceCollector struct{ status StatusFunc }

func (c instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range instanceDescs {
		ch <- d
	}
}

// slotFigures adds up one instance slot's processes.
type slotFigures struct {
	states           map[supervisor.State]int
	restarts         int
	cpu, rss, flight float64
	files, threads   float64
	newest           *supervisor.InstanceStatus // the latest started process: start time, readiness, lag
	exitCode         *int
	requests         *balance.StatsSnapshot // per slot already: the same for both processes
}

// Collect reports per instance slot (app, index). During a rolling reload a
// slot briefly has two processes, the new one starting and the old one
// draining: their usage adds up (state gauges then count processes), the
// newest process gives the start time, readiness and lag, and the request
// counters are the slot's own, as two series with the same labels would
// make the whole scrape fail.
func (c instanceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.status() {
		var order []int
		slots := map[int]*slotFigures{}
		for i := range a.Instances {
			in := &a.Instances[i]
			sl := slots[in.Index]
			if sl == nil {
				sl = &slotFigures{states: map[supervisor.State]int{}}
				slots[in.Index] = sl
				order = append(order, in.Index)
			}
			sl.states[in.State]++
			sl.restarts = max(sl.restarts, in.Restarts)
			sl.cpu += in.CPUPercent / 100
			sl.rss += float64(in.RSSBytes)
			sl.flight += float64(in.Inflight)
			sl.files += float64(in.OpenFiles)
			sl.threads += float64(in.Threads)
			if in.Pid != 0 && (sl.newest == nil || in.StartedAt.After(sl.newest.StartedAt)) {
				sl.newest = in
			}
			if in.LastExitCode != nil {
				sl.exitCode = in.LastExitCode
			}
			if in.Requests != nil {
				sl.requests = in.Requests
			}
		}
		for _, index := range order {
			sl, idx := slots[index], strconv.Itoa(index)
			gauge := func(d *prometheus.Desc, v float64, extra ...string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{a.Name, idx}, extra...)...)
			}
			for _, s := range allStates {
				gauge(descState, float64(sl.states[s]), string(s))
			}
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(sl.restarts), a.Name, idx)
			gauge(descCPU, sl.cpu)
			gauge(descRSS, sl.rss)
			gauge(descInflight, sl.flight)
			gauge(descFiles, sl.files)
			gauge(descThreads, sl.threads)
			if n := sl.newest; n != nil {
				gauge(descStarted, float64(n.StartedAt.UnixNano())/1e9)
				if n.ReadyAfterSeconds > 0 {
					gauge(descReadyAfter, n.ReadyAfterSeconds)
				}
				if l := n.Lag; l != nil {
					gauge(descLag, l.P50Ms/1e3, "0.5")
					gauge(descLag, l.P99Ms/1e3, "0.99")
					gauge(descLag, l.MaxMs/1e3, "1")
				}
			}
			if sl.exitCode != nil {
				gauge(descExitCode, float64(*sl.exitCode))
			}
			if r := sl.requests; r != nil {
				collectRequests(ch, a.Name, idx, r)
			}
		}
	}
}

// collectRequests reports one slot's response counters and its latency
// histogram (Stats' buckets are not cumulative; Prometheus' are).
func collectRequests(ch chan<- prometheus.Metric, app, idx string, r *balance.StatsSnapshot) {
	for class := 1; class < len(r.Classes); class++ {
		ch <- prometheus.MustNewConstMetric(descResponses, prometheus.CounterValue, float64(r.Classes[class]), app, idx, statusClasses[class])
	}
	ch <- prometheus.MustNewConstMetric(descProxyErrors, prometheus.CounterValue, float64(r.Classes[0]), app, idx)
	buckets := make(map[float64]uint64, len(balance.LatencyBounds))
	var cumulative uint64
	for i, bound := range balance.LatencyBounds {
		cumulative += r.Buckets[i]
		buckets[bound.Seconds()] = cumulative
	}
	ch <- prometheus.MustNewConstHistogram(descResponseTime, r.Responses(), r.Sum.Seconds(), buckets, app, idx)
}
