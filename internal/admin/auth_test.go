package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herdhq/herd/internal/registry"
	"github.com/herdhq/herd/internal/supervisor"
)

// The registry's writes and pprof take the token and refuse browsers'
// cross-origin requests; the reads probes and Prometheus need stay open.
func TestWritesNeedTheToken(t *testing.T) {
	const token = "0123456789abcdef0123"
	status := func() []supervisor.AppStatus { return nil }
	open := Handler(Options{Status: status, Gatherer: NewMetrics(status).Registry,
		Services: func() []registry.ServiceStatus { return nil }, Required: func() []string { return nil },
		Registry: registry.New(registry.Options{})})
	locked := Handler(Options{Status: status, Gatherer: NewMetrics(status).Registry,
		Services: func() []registry.ServiceStatus { return nil }, Required: func() []string { return nil },
		Registry: registry.New(registry.Options{}), Token: token})
	const register = `{"name": "billing", "url": "http://127.0.0.1:9001", "ttl": "10s"}`
	tests := []struct {
		name     string
		h        http.Handler
		method   string
		path     string
		headers  map[string]string
		wantCode int
		wantBody string
	}{
		{"no token configured: a write from curl", open, "POST", "/services", nil, 200, `"service": "billing"`},
		{"no token configured: a browser's cross-origin write", open, "POST", "/services",
			map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403, "cross-origin"},
		{"no token configured: same-origin browser write", open, "POST", "/services",
			map[string]string{"Sec-Fetch-Site": "same-origin"}, 200, `"service": "billing"`},
		{"no token configured: a write at localhost", open, "POST", "/services", map[string]string{"Host": "localhost:9090"}, 200, `"service": "billing"`},
		{"no token configured: a write at [::1]", open, "POST", "/services", map[string]string{"Host": "[::1]:9090"}, 200, `"service": "billing"`},
		{"no token configured: a write at a name (DNS rebinding)", open, "POST", "/services",
			map[string]string{"Host": "attacker.example:9090", "Sec-Fetch-Site": "same-origin"}, 403, "not at the name attacker.example"},
		{"token: a write at a name with it", locked, "POST", "/services",
			map[string]string{"Host": "herd.internal:9090", "Authorization": "Bearer " + token}, 200, `"service": "billing"`},
		{"token: a write without it", locked, "POST", "/services", nil, 401, "Authorization: Bearer TOKEN"},
		{"token: a wrong one", locked, "POST", "/services", map[string]string{"Authorization": "Bearer " + token + "x"}, 401, "Unauthorized"},
		{"token: another scheme", locked, "POST", "/services", map[string]string{"Authorization": "Basic " + token}, 401, "Unauthorized"},
		{"token: the right one", locked, "POST", "/services", map[string]string{"Authorization": "Bearer " + token}, 200, `"service": "billing"`},
		{"token: a delete without it", locked, "DELETE", "/services/billing/x", nil, 401, "Unauthorized"},
		{"token: the right one but cross-origin from a browser", locked, "POST", "/services",
			map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"},
		{"token: pprof without it", locked, "GET", "/debug/pprof/", nil, 401, "Unauthorized"},
		{"token: pprof with it", locked, "GET", "/debug/pprof/", map[string]string{"Authorization": "Bearer " + token}, 200, "goroutine"},
		{"token: health stays open", locked, "GET", "/health", nil, 200, `"status": "ok"`},
		{"token: metrics stay open", locked, "GET", "/metrics", nil, 200, "go_goroutines"},
		{"token: services stay readable", locked, "GET", "/services", nil, 200, `"services"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader(register)
			}
			req := httptest.NewRequest(tc.method, "http://127.0.0.1:9090"+tc.path, body)
			setHeaders(req, tc.headers)
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("%s %s = %d %s; want %d with %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			if tc.wantCode == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// setHeaders sets h on req; "Host" is the request's Host.
func setHeaders(req *http.Request, h map[string]string) {
	for k, v := range h {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
}
