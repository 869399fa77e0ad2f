package admin

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herdhq/herd/internal/supervisor"
)

func TestHandler(t *testing.T) {
	apps := []supervisor.AppStatus{
		{Name: "web", Instances: []supervisor.InstanceStatus{{Index: 0, State: supervisor.Ready, Pid: 10}, {Index: 1, State: supervisor.Backoff}}},
		{Name: "api", Instances: []supervisor.InstanceStatus{{Index: 0, State: supervisor.Errored}}},
	}
	status := func() []supervisor.AppStatus { return apps }
	h := Handler(status, NewMetrics(status).Registry)

	tests := []struct {
		name     string
		method   string
		path     string
		wantCode int
		wantBody []string
	}{
		{"health names the app without a ready instance", "GET", "/health", 503,
			[]string{`"status": "unavailable"`, `"not_ready": [`, `"api"`}},
		{"status lists every instance", "GET", "/status", 200,
			[]string{`"name": "web"`, `"state": "backoff"`, `"state": "errored"`, `"pid": 10`}},
		{"metrics exposes instance state", "GET", "/metrics", 200,
			[]string{`herd_instance_state{app="api",instance="0",state="errored"} 1`, `go_goroutines`}},
		{"unknown path is JSON", "GET", "/nope", 404, []string{`"reason": "the admin listener serves /health, /status, /metrics and /debug/pprof/"`}},
		{"wrong method is JSON", "POST", "/health", 405, []string{`"reason": "POST is not served here; use GET"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantCode {
				t.Errorf("code = %d; want %d", rec.Code, tc.wantCode)
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("body lacks %s:\n%s", w, rec.Body.String())
				}
			}
		})
	}

	apps[1].Instances[0].State = supervisor.Ready
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	var body healthBody
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 200 || body.Status != "ok" || body.Apps["web"].Ready != 1 || body.Apps["web"].Instances != 2 {
		t.Errorf("all apps ready: %d %+v; want 200 ok with counts", rec.Code, body)
	}
}

func TestObserveRequest(t *testing.T) {
	m := NewMetrics(func() []supervisor.AppStatus { return nil })
	m.ObserveRequest("/", "web", 200, 0)
	m.ObserveRequest("/", "web", 499, 0)
	m.ObserveRequest("/", "web", 200, 0)
	rec := httptest.NewRecorder()
	Handler(func() []supervisor.AppStatus { return nil }, m.Registry).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
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
