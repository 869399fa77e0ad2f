package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/herdhq/herd/internal/registry"
	"github.com/herdhq/herd/internal/supervisor"
)

func TestHandler(t *testing.T) {
	apps := []supervisor.AppStatus{
		{Name: "web", Instances: []supervisor.InstanceStatus{{Index: 0, State: supervisor.Ready, Pid: 10}, {Index: 1, State: supervisor.Backoff}}},
		{Name: "api", Instances: []supervisor.InstanceStatus{{Index: 0, State: supervisor.Errored}}},
	}
	status := func() []supervisor.AppStatus { return apps }
	services := func() []registry.ServiceStatus {
		var out []registry.ServiceStatus
		for _, a := range apps {
			s := registry.ServiceStatus{Name: a.Name, Kind: "app"}
			for _, in := range a.Instances {
				ready := in.State == supervisor.Ready
				if ready {
					s.Healthy++
				}
				s.Instances = append(s.Instances, registry.InstanceStatus{ID: strconv.Itoa(in.Index), Healthy: ready, State: string(in.State)})
			}
			out = append(out, s)
		}
		return out
	}
	required := []string{"web", "api"}
	reg := registry.New(registry.Options{})
	h := Handler(Options{Status: status, Gatherer: NewMetrics(status).Registry, Services: services,
		Required: func() []string { return required }, Registry: reg})

	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		wantCode int
		wantBody []string
	}{
		{"health names the required service without a ready instance", "GET", "/health", "", 503,
			[]string{`"status": "unavailable"`, `"failing": [`, `"api"`, `"reason": "no ready instance of: api"`}},
		{"status lists every instance", "GET", "/status", "", 200,
			[]string{`"name": "web"`, `"state": "backoff"`, `"state": "errored"`, `"pid": 10`}},
		{"metrics exposes instance state", "GET", "/metrics", "", 200,
			[]string{`herd_instance_state{app="api",instance="0",state="errored"} 1`, `go_goroutines`}},
		{"services lists apps", "GET", "/services", "", 200, []string{`"name": "web"`, `"kind": "app"`, `"healthy": 1`}},
		{"one service", "GET", "/services/api", "", 200, []string{`"name": "api"`, `"healthy": 0`}},
		{"unknown service", "GET", "/services/nope", "", 404, []string{`"reason": "no service named \"nope\""`}},
		{"register", "POST", "/services", `{"name": "billing", "url": "http://127.0.0.1:9001", "ttl": "10s"}`, 200,
			[]string{`"service": "billing"`, `"url": "http://127.0.0.1:9001"`, `"ttl_seconds": 10`}},
		{"register with ttl in seconds", "POST", "/services", `{"name": "billing", "url": "http://127.0.0.1:9002", "ttl": 5}`, 200,
			[]string{`"ttl_seconds": 5`}},
		{"register a bad url", "POST", "/services", `{"name": "billing", "url": "ftp://x"}`, 400,
			[]string{`"field": "url"`, `write http://HOST:PORT`}},
		{"register a bad name", "POST", "/services", `{"name": "Bad Name", "url": "http://127.0.0.1:1"}`, 400,
			[]string{`"field": "name"`}},
		{"register a bad ttl", "POST", "/services", `{"name": "b", "url": "http://127.0.0.1:1", "ttl": "soon"}`, 400,
			[]string{`"field": "ttl"`}},
		{"register unknown fields", "POST", "/services", `{"name": "b", "address": "x"}`, 400,
			[]string{`unknown field \"address\"`}},
		{"register not JSON", "POST", "/services", `name=b`, 400, []string{`the body must be JSON`}},
		{"deregister unknown", "DELETE", "/services/billing/nope", "", 404, []string{`no such registration: billing/nope`}},
		{"unknown path is JSON", "GET", "/nope", "", 404, []string{`"reason": "the admin listener serves / (the dashboard), /api/, /health, /status, /metrics, /services and /debug/pprof/"`}},
		{"wrong method is JSON", "POST", "/health", "", 405, []string{`"reason": "POST is not served here; use GET, HEAD"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, "http://127.0.0.1:9090"+tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.wantCode {
				t.Errorf("code = %d; want %d", rec.Code, tc.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" && tc.path != "/metrics" {
				t.Errorf("Content-Type = %q; want application/json", ct)
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("body lacks %s:\n%s", w, rec.Body.String())
				}
			}
		})
	}

	// The registrations above are in the registry, and leave it.
	if got := reg.Names(); len(got) != 1 || got[0] != "billing" {
		t.Fatalf("registered services = %v; want [billing]", got)
	}
	if n := len(reg.Pool("billing").Backends()); n != 2 {
		t.Fatalf("billing has %d instances; want 2", n)
	}
	for _, st := range reg.Status()[0].Instances {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("DELETE", "http://127.0.0.1:9090/services/billing/"+st.ID, nil))
		if rec.Code != http.StatusNoContent {
			t.Errorf("DELETE %s = %d %s; want 204", st.ID, rec.Code, rec.Body)
		}
	}
	if got := reg.Names(); len(got) != 0 {
		t.Errorf("after deregistering: %v; want none", got)
	}

	apps[1].Instances[0].State = supervisor.Ready
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	var body healthBody
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 200 || body.Status != "ok" || body.Services["web"].Healthy != 1 || body.Services["web"].Instances != 2 {
		t.Errorf("all apps ready: %d %+v; want 200 ok with counts", rec.Code, body)
	}
	required = []string{"web", "payments"}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"payments"`) {
		t.Errorf("a required service nobody serves: %d %s; want 503 naming payments", rec.Code, rec.Body)
	}
}

func TestObserveRequest(t *testing.T) {
	m := NewMetrics(func() []supervisor.AppStatus { return nil })
	m.ObserveRequest("/", "web", 200, 0)
	m.ObserveRequest("/", "web", 499, 0)
	m.ObserveRequest("/", "web", 200, 0)
	rec := httptest.NewRecorder()
	Handler(Options{Gatherer: m.Registry}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`herd_requests_total{app="web",code="200",route="/"} 2`,
		`herd_requests_total{app="web",code="499",route="/"} 1`,
		`herd_request_duration_seconds_count{app="web",route="/"} 3`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Series added from many goroutines at once are all kept, each counted
// once per request.
func TestObserveRequestConcurrent(t *testing.T) {
	m := NewMetrics(func() []supervisor.AppStatus { return nil })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				m.ObserveRequest("/", "web", 200+(g+i)%10, 0)
			}
		}()
	}
	wg.Wait()
	rec := httptest.NewRecorder()
	Handler(Options{Gatherer: m.Registry}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for code := 200; code < 210; code++ {
		want := fmt.Sprintf(`herd_requests_total{app="web",code="%d",route="/"} 80`, code)
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// During a rolling reload a slot has two processes; /metrics must still
// answer, with the slot's figures added up.
func TestMetricsDuringAReloadOverlap(t *testing.T) {
	status := func() []supervisor.AppStatus {
		return []supervisor.AppStatus{{Name: "web", Instances: []supervisor.InstanceStatus{
			{Index: 0, State: supervisor.Draining, Pid: 10, Inflight: 2, RSSBytes: 100},
			{Index: 0, State: supervisor.Starting, Pid: 11, RSSBytes: 50},
			{Index: 1, State: supervisor.Ready, Pid: 12},
		}}}
	}
	h := Handler(Options{Status: status, Gatherer: NewMetrics(status).Registry,
		Services: func() []registry.ServiceStatus { return nil }, Required: func() []string { return nil }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("/metrics = %d: %s", rec.Code, body)
	}
	for _, want := range []string{
		`herd_instance_state{app="web",instance="0",state="draining"} 1`,
		`herd_instance_state{app="web",instance="0",state="starting"} 1`,
		`herd_instance_state{app="web",instance="0",state="ready"} 0`,
		`herd_instance_inflight_requests{app="web",instance="0"} 2`,
		`herd_instance_resident_memory_bytes{app="web",instance="0"} 150`,
		`herd_instance_state{app="web",instance="1",state="ready"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
