package admin

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

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
	descState = prometheus.NewDesc("herd_instance_state",
		"Processes of each instance slot in each state: 1 for the slot's state (2 processes briefly during a reload).", []string{"app", "instance", "state"}, nil)
	descRestarts = prometheus.NewDesc("herd_instance_restarts_total",
		"Restarts of each instance slot since herd started.", []string{"app", "instance"}, nil)
	descCPU = prometheus.NewDesc("herd_instance_cpu_ratio",
		"CPU used by each instance over the last sample interval (1 = one core).", []string{"app", "instance"}, nil)
	descRSS = prometheus.NewDesc("herd_instance_resident_memory_bytes",
		"Resident memory of each instance.", []string{"app", "instance"}, nil)
	descInflight = prometheus.NewDesc("herd_instance_inflight_requests",
		"Requests in flight to each instance.", []string{"app", "instance"}, nil)
)

var allStates = []supervisor.State{supervisor.Starting, supervisor.Ready, supervisor.Draining,
	supervisor.Backoff, supervisor.Errored, supervisor.Stopped}

type instanceCollector struct{ status StatusFunc }

func (c instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descRestarts, descCPU, descRSS, descInflight} {
		ch <- d
	}
}

// Collect reports per instance slot (app, index). During a rolling reload a
// slot briefly has two processes, the new one starting and the old one
// draining: their figures add up (state gauges then count processes), as
// two series with the same labels would make the whole scrape fail.
func (c instanceCollector) Collect(ch chan<- prometheus.Metric) {
	type slot struct {
		states           map[supervisor.State]int
		restarts         int
		cpu, rss, flight float64
	}
	for _, a := range c.status() {
		var order []int
		slots := map[int]*slot{}
		for _, in := range a.Instances {
			sl := slots[in.Index]
			if sl == nil {
				sl = &slot{states: map[supervisor.State]int{}}
				slots[in.Index] = sl
				order = append(order, in.Index)
			}
			sl.states[in.State]++
			sl.restarts = max(sl.restarts, in.Restarts)
			sl.cpu += in.CPUPercent / 100
			sl.rss += float64(in.RSSBytes)
			sl.flight += float64(in.Inflight)
		}
		for _, index := range order {
			sl, idx := slots[index], strconv.Itoa(index)
			for _, s := range allStates {
				ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, float64(sl.states[s]), a.Name, idx, string(s))
			}
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(sl.restarts), a.Name, idx)
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.GaugeValue, sl.cpu, a.Name, idx)
			ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, sl.rss, a.Name, idx)
			ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, sl.flight, a.Name, idx)
		}
	}
}
