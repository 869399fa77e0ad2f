package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/logbuf"
	"github.com/herdhq/herd/internal/supervisor"
)

type sseEvent struct {
	name string
	data string
}

// readEvents parses a text/event-stream into ch until the body ends.
func readEvents(body *bufio.Reader, ch chan<- sseEvent) {
	defer close(ch)
	var ev sseEvent
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			ch <- ev
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data += line[len("data: "):]
		}
	}
}

// next returns the next event named name, skipping others.
func next(t *testing.T, ch <-chan sseEvent, name string) sseEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended before a %s event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event in 5 s", name)
		}
	}
}

// served wraps h and reports on done each time a request to it returns.
func served(h http.Handler, done chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		done <- r.URL.Path
	})
}

type streamRig struct {
	srv     *httptest.Server
	metrics *Metrics
	logs    *logbuf.Buffer
	stop    context.CancelFunc // herd stops
	done    chan string
}

func newStreamRig(t *testing.T, token string) *streamRig {
	t.Helper()
	apps := []supervisor.AppStatus{{Name: "web", Instances: []supervisor.InstanceStatus{{Index: 0, State: supervisor.Ready, Pid: 4242}}}}
	status := func() []supervisor.AppStatus { return apps }
	life, stop := context.WithCancel(context.Background())
	r := &streamRig{metrics: NewMetrics(status), logs: logbuf.New(nil, 100), stop: stop, done: make(chan string, 8)}
	r.logs.Writer("web", 0).Write([]byte("web[0] booted\n"))
	h := Handler(Options{Status: status, Gatherer: r.metrics.Registry, Requests: r.metrics, Logs: r.logs,
		Context: life, SampleEvery: 20 * time.Millisecond, Token: token})
	r.srv = httptest.NewServer(served(h, r.done))
	t.Cleanup(func() {
		stop()
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

func (r *streamRig) open(t *testing.T, ctx context.Context, auth string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/api/events", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sseEvent, 64)
	if res.StatusCode == 200 {
		go readEvents(bufio.NewReader(res.Body), ch)
	}
	return res, ch
}

// handlerReturned waits until the stream's handler has returned.
func (r *streamRig) handlerReturned(t *testing.T, why string) {
	t.Helper()
	select {
	case p := <-r.done:
		if p != "/api/events" {
			t.Fatalf("%s returned; want /api/events", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the stream's handler still runs 5 s after %s", why)
	}
}

// The stream opens with what a fresh page draws, then pushes samples
// computed from the proxy's metrics and log lines as they are written,
// and ends when the client leaves.
func TestEvents(t *testing.T) {
	r := newStreamRig(t, "")
	ctx, leave := context.WithCancel(context.Background())
	res, ch := r.open(t, ctx, "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/events = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var hello helloEvent
	json.Unmarshal([]byte(next(t, ch, "hello").data), &hello)
	if !hello.Logs || hello.TokenRequired || hello.IntervalMS != 20 || hello.HistoryLen != historyLen {
		t.Errorf("hello = %+v; want logs, no token, 20 ms", hello)
	}
	if h := next(t, ch, "history"); !strings.HasPrefix(h.data, "[") {
		t.Errorf("history = %s; want an array", h.data)
	}
	if s := next(t, ch, "status"); !strings.Contains(s.data, `"pid":4242`) {
		t.Errorf("status = %s; want the instance's pid", s.data)
	}
	if l := next(t, ch, "logs"); !strings.Contains(l.data, `"text":"web[0] booted"`) {
		t.Errorf("logs = %s; want the tail", l.data)
	}

	// Requests recorded now show up in a sample: 5xx counted as errors,
	// latency as p50 and p99 in ms.
	for range 9 {
		r.metrics.ObserveRequest("/", "web", 200, 3*time.Millisecond)
	}
	r.metrics.ObserveRequest("/", "web", 502, 300*time.Millisecond)
	deadline := time.After(5 * time.Second)
	for {
		var p point
		select {
		case <-deadline:
			t.Fatal("no sample counted the requests")
		default:
		}
		json.Unmarshal([]byte(next(t, ch, "sample").data), &p)
		web := p.Apps["web"]
		if web[0] == nil || *web[0] == 0 {
			continue
		}
		all := p.Apps[allApps]
		if all[0] == nil || *all[0] != *web[0] || *web[1] <= 0 || web[2] == nil || *web[2] <= 2.5 || *web[2] > 5 || *web[3] <= 250 {
			t.Errorf("sample = %s; want web's rps, errors, p50 in (2.5, 5] ms, p99 > 250 ms, and the sum equal", jsonOf(p))
		}
		break
	}

	r.logs.Writer("web", 0).Write([]byte("web[0] GET /checkout 200\n"))
	if l := next(t, ch, "logs"); !strings.Contains(l.data, "GET /checkout 200") {
		t.Errorf("logs = %s; want the new line", l.data)
	}

	leave()
	r.handlerReturned(t, "the client left")
}

// When herd stops, every stream ends though its client is still there.
func TestEventsEndWhenHerdStops(t *testing.T) {
	r := newStreamRig(t, "")
	_, ch := r.open(t, context.Background(), "")
	next(t, ch, "status")
	r.stop()
	r.handlerReturned(t, "herd stopped")
	for range ch {
	}
}

// With a token, the stream is open like /status, but log lines go only to
// a request that carries it; a wrong one is refused.
func TestEventsToken(t *testing.T) {
	const token = "0123456789abcdef0123"
	r := newStreamRig(t, token)
	tests := []struct {
		name     string
		auth     string
		wantCode int
		wantLogs bool
	}{
		{"no token: status and charts, no logs", "", 200, false},
		{"the token: logs too", "Bearer " + token, 200, true},
		{"a wrong token", "Bearer nope", 401, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, leave := context.WithCancel(context.Background())
			defer leave()
			res, ch := r.open(t, ctx, tc.auth)
			defer res.Body.Close()
			if res.StatusCode != tc.wantCode {
				t.Fatalf("code = %d; want %d", res.StatusCode, tc.wantCode)
			}
			if tc.wantCode != 200 {
				var body errorBody
				json.NewDecoder(res.Body).Decode(&body)
				if body.Reason == "" || res.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 body %+v; want a reason and WWW-Authenticate", body)
				}
				r.handlerReturned(t, "the 401")
				return
			}
			var hello helloEvent
			json.Unmarshal([]byte(next(t, ch, "hello").data), &hello)
			if hello.Logs != tc.wantLogs || !hello.TokenRequired {
				t.Errorf("hello = %+v; want logs %v, token required", hello, tc.wantLogs)
			}
			r.logs.Writer("web", 0).Write([]byte("web[0] secret-ish output\n"))
			// The line is sent within logBatch; by the time that many
			// statuses went by, it would have been.
			var names []string
			timeout := time.After(5 * time.Second)
			for statuses := 0; statuses*int(hello.IntervalMS) < 4*int(logBatch.Milliseconds()); {
				select {
				case ev := <-ch:
					names = append(names, ev.name)
					if ev.name == "status" {
						statuses++
					}
				case <-timeout:
					t.Fatal("the stream went quiet")
				}
			}
			if got := strings.Contains(strings.Join(names, " "), "logs"); got != tc.wantLogs {
				t.Errorf("events %v: logs sent = %v; want %v", names, got, tc.wantLogs)
			}
			leave()
			r.handlerReturned(t, "the client left")
		})
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The charts read the proxy's series summed per app and over all apps:
// 5xx are errors; 4xx and 499 (the client left) are not.
func TestReadTotals(t *testing.T) {
	m := NewMetrics(func() []supervisor.AppStatus { return nil })
	for _, r := range []struct {
		route, app string
		code       int
		d          time.Duration
	}{
		{"/", "web", 200, time.Millisecond}, {"/a", "web", 200, 20 * time.Millisecond}, {"/", "web", 404, time.Millisecond},
		{"/", "web", 499, time.Millisecond}, {"/", "web", 503, 2 * time.Second}, {"/api", "api", 500, time.Millisecond},
	} {
		m.ObserveRequest(r.route, r.app, r.code, r.d)
	}
	got, bounds := m.readTotals()
	if len(bounds) != 14 || bounds[0] != .0005 || bounds[13] != 10 {
		t.Errorf("bounds = %v; want the histogram's 14", bounds)
	}
	tests := []struct {
		app              string
		requests, errors float64
		count            uint64
		le1ms            uint64 // observations <= 1 ms
	}{
		{"web", 5, 1, 5, 3},
		{"api", 1, 1, 1, 1},
		{allApps, 6, 2, 6, 4},
	}
	for _, tc := range tests {
		tt := got[tc.app]
		if tt == nil {
			t.Errorf("no totals for %q", tc.app)
			continue
		}
		if tt.requests != tc.requests || tt.errors != tc.errors || tt.count != tc.count || tt.cumulative[1] != tc.le1ms {
			t.Errorf("%s: %+v; want %v requests, %v errors, %d observed, %d within 1 ms", tc.app, *tt, tc.requests, tc.errors, tc.count, tc.le1ms)
		}
	}
}

func TestQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.01, 0.1}
	tests := []struct {
		name       string
		q          float64
		cumulative []uint64
		count      uint64
		want       float64
	}{
		{"all in the first bucket: linear from 0", 0.5, []uint64{10, 10, 10}, 10, 0.0005},
		{"the median in the second bucket", 0.5, []uint64{2, 8, 10}, 10, 0.001 + 0.009*3/6},
		{"p99 in the last finite bucket", 0.99, []uint64{0, 0, 100}, 100, 0.01 + 0.09*0.99},
		{"above every bound: the highest bound", 0.99, []uint64{0, 0, 1}, 10, 0.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := quantile(tc.q, bounds, tc.cumulative, tc.count); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("quantile(%v) = %v; want %v", tc.q, got, tc.want)
			}
		})
	}
}

// The ring keeps the last historyLen points, each the difference of two
// readings over the time between them; an interval without requests has
// no latency (a gap, not a zero).
func TestHistory(t *testing.T) {
	bounds := []float64{0.01, 0.1}
	reading := map[string]*totals{}
	h := newHistory(func() (map[string]*totals, []float64) {
		out := map[string]*totals{}
		for k, v := range reading {
			c := *v
			c.cumulative = append([]uint64(nil), v.cumulative...)
			out[k] = &c
		}
		return out, bounds
	})
	t0 := time.Unix(1000, 0)
	h.sample(t0)
	if pts, _ := h.snapshot(); len(pts) != 0 {
		t.Fatalf("one reading gave %d points; want none", len(pts))
	}
	reading["web"] = &totals{requests: 20, errors: 2, count: 20, cumulative: []uint64{20, 20}}
	h.sample(t0.Add(2 * time.Second))
	pts, tick := h.snapshot()
	if len(pts) != 1 {
		t.Fatalf("%d points; want 1", len(pts))
	}
	web := pts[0].Apps["web"]
	if *web[0] != 10 || *web[1] != 1 || *web[2] != 5 || pts[0].T != t0.Add(2*time.Second).UnixMilli() {
		t.Errorf("point = %s; want 10 rps, 1 err/s, p50 5 ms at t0+2s", jsonOf(pts[0]))
	}
	h.sample(t0.Add(3 * time.Second))
	select {
	case <-tick:
	default:
		t.Error("a new point did not wake the streams")
	}
	if pts, _ := h.since(pts[0].T); len(pts) != 1 || *pts[0].Apps["web"][0] != 0 || pts[0].Apps["web"][2] != nil {
		t.Errorf("an idle second = %s; want 0 rps and no latency", jsonOf(pts))
	}
	for i := range historyLen + 10 {
		h.sample(t0.Add(time.Duration(4+i) * time.Second))
	}
	pts, _ = h.snapshot()
	if len(pts) != historyLen || pts[len(pts)-1].T != t0.Add(time.Duration(3+historyLen+10)*time.Second).UnixMilli() {
		t.Errorf("ring holds %d points, last at %d; want %d, the newest", len(pts), pts[len(pts)-1].T, historyLen)
	}
}
