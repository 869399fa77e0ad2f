package admin

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The dashboard's charts: once a second the sampler reads the proxy's
// cumulative request counters and latency histograms (the same series
// /metrics exports, read straight from their vectors rather than through
// the whole registry), turns the difference with the previous reading into
// one point per app, and keeps the last historyLen points in a ring, so a
// page opened now draws the last minutes at once.

// historyLen is how many points the ring keeps: five minutes at one a second.
const historyLen = 300

// allApps is the key of the point that sums every app.
const allApps = "*"

// point is one sampling interval: per app, requests per second, 5xx per
// second, and the p50 and p99 latency in milliseconds (nil when no request
// finished in the interval, so the chart shows a gap rather than a zero).
type point struct {
	// T is the end of the interval, in Unix milliseconds.
	T    int64                `json:"t"`
	Apps map[string]appSample `json:"apps"`
}

// appSample is [rps, errors/s, p50 ms, p99 ms] as a JSON array, to keep a
// history of five minutes small on the wire.
type appSample [4]*float64

// totals is the cumulative reading of one app's series.
type totals struct {
	requests float64
	errors   float64 // status >= 500
	count    uint64  // observations in the histogram
	// cumulative[i] counts observations <= bounds[i], as Prometheus does.
	cumulative []uint64
}

// readTotals reads m's request series summed per app (over routes and
// codes); the key allApps sums them all. bounds are the histogram's upper
// bounds, +Inf left out.
func (m *Metrics) readTotals() (byApp map[string]*totals, bounds []float64) {
	byApp = map[string]*totals{}
	get := func(app string) *totals {
		t := byApp[app]
		if t == nil {
			t = &totals{}
			byApp[app] = t
		}
		return t
	}
	for _, mt := range collect(m.requests) {
		app, code := label(mt, "app"), label(mt, "code")
		v := mt.GetCounter().GetValue()
		for _, t := range []*totals{get(app), get(allApps)} {
			t.requests += v
			if code >= "500" && len(code) == 3 {
				t.errors += v
			}
		}
	}
	for _, mt := range collect(m.duration) {
		h := mt.GetHistogram()
		if bounds == nil {
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) {
					bounds = append(bounds, b.GetUpperBound())
				}
			}
		}
		for _, t := range []*totals{get(label(mt, "app")), get(allApps)} {
			if t.cumulative == nil {
				t.cumulative = make([]uint64, len(bounds))
			}
			for i, b := range h.GetBucket() {
				if i < len(t.cumulative) {
					t.cumulative[i] += b.GetCumulativeCount()
				}
			}
			t.count += h.GetSampleCount()
		}
	}
	return byApp, bounds
}

// collect reads every series of c.
func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric, 64)
	done := make(chan struct{})
	var out []*dto.Metric
	go func() {
		defer close(done)
		for m := range ch {
			var d dto.Metric
			if m.Write(&d) == nil {
				out = append(out, &d)
			}
		}
	}()
	c.Collect(ch)
	close(ch)
	<-done
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// quantile is Prometheus's histogram_quantile over one interval's bucket
// counts: linear inside the bucket the rank falls in, the highest finite
// bound when it falls in +Inf. cumulative[i] counts observations <=
// bounds[i]; count includes those above every bound.
func quantile(q float64, bounds []float64, cumulative []uint64, count uint64) float64 {
	rank := q * float64(count)
	lower, below := 0.0, uint64(0)
	for i, upper := range bounds {
		c := cumulative[i]
		if float64(c) >= rank && c > below {
			return lower + (upper-lower)*(rank-float64(below))/float64(c-below)
		}
		lower, below = upper, c
	}
	if len(bounds) == 0 {
		return math.NaN()
	}
	return bounds[len(bounds)-1]
}

// history is the ring of points and the sampler's last reading. It is safe
// for concurrent use.
type history struct {
	read func() (map[string]*totals, []float64) // nil: no metrics, no points

	mu     sync.Mutex
	points []point // oldest first, at most historyLen
	prev   map[string]*totals
	prevAt time.Time
	// tick is closed and replaced by each new point, waking the streams.
	tick chan struct{}
}

func newHistory(read func() (map[string]*totals, []float64)) *history {
	return &history{read: read, tick: make(chan struct{})}
}

// run samples every interval until done is closed.
func (h *history) run(done <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	h.sample(time.Now())
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			h.sample(now)
		}
	}
}

// sample reads the metrics at now and, from the second reading on, adds
// the point for the interval since the previous one.
func (h *history) sample(now time.Time) {
	var cur map[string]*totals
	var bounds []float64
	if h.read != nil {
		cur, bounds = h.read()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, prevAt := h.prev, h.prevAt
	h.prev, h.prevAt = cur, now
	if prevAt.IsZero() {
		return
	}
	secs := now.Sub(prevAt).Seconds()
	if secs <= 0 {
		return
	}
	p := point{T: now.UnixMilli(), Apps: map[string]appSample{}}
	names := make([]string, 0, len(cur))
	for name := range cur {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c, b := cur[name], prev[name]
		if b == nil {
			b = &totals{}
		}
		var s appSample
		s[0] = num(max(c.requests-b.requests, 0) / secs)
		s[1] = num(max(c.errors-b.errors, 0) / secs)
		if n := c.count - min(b.count, c.count); n > 0 && len(c.cumulative) == len(bounds) {
			delta := make([]uint64, len(bounds))
			for i := range delta {
				var before uint64
				if i < len(b.cumulative) {
					before = b.cumulative[i]
				}
				delta[i] = c.cumulative[i] - min(before, c.cumulative[i])
			}
			s[2] = num(quantile(0.5, bounds, delta, n) * 1000)
			s[3] = num(quantile(0.99, bounds, delta, n) * 1000)
		}
		p.Apps[name] = s
	}
	if len(h.points) == historyLen {
		copy(h.points, h.points[1:])
		h.points = h.points[:historyLen-1]
	}
	h.points = append(h.points, p)
	close(h.tick)
	h.tick = make(chan struct{})
}

// num rounds v to three significant digits, which is what a chart shows.
func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	if v != 0 {
		scale := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
		v = math.Round(v*scale) / scale
	}
	return &v
}

// snapshot returns a copy of the points and the channel the next point
// closes.
func (h *history) snapshot() ([]point, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]point(nil), h.points...), h.tick
}

// since returns the points after t (Unix ms) and the channel the next point closes.
func (h *history) since(t int64) ([]point, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := sort.Search(len(h.points), func(i int) bool { return h.points[i].T > t })
	return append([]point(nil), h.points[i:]...), h.tick
}
