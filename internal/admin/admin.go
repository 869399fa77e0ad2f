// Package admin serves herd's admin listener: the dashboard at / (a page
// with every instance, live charts, recent logs and the actions; see
// dashboard.go), /health (does every required service have a ready
// instance?), /status (JSON snapshot of every instance), /metrics
// (Prometheus), /services (the services a gateway reaches; POST and DELETE
// register outside ones) and /debug/pprof. It reads state through
// functions; the registry endpoints and the dashboard's actions change it.
// Writes and profiles refuse browsers' cross-origin requests and, with
// admin_auth's token, need it as a bearer token.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herdhq/herd/internal/registry"
	"github.com/herdhq/herd/internal/supervisor"
)

// StatusFunc returns a snapshot of every app.
type StatusFunc func() []supervisor.AppStatus

// Options are what the admin listener serves from.
type Options struct {
	// Status is every app's instances, for /status.
	Status StatusFunc
	// Gatherer is scraped by /metrics.
	Gatherer prometheus.Gatherer
	// Services lists every service a gateway reaches (apps, upstreams,
	// registered), for /services and /health.
	Services func() []registry.ServiceStatus
	// Required names the services /health needs a ready instance of.
	Required func() []string
	// Registry takes POST and DELETE /services; nil refuses them.
	Registry *registry.Registry
	// Token, when set, is the bearer token writes and /debug/pprof need;
	// reads (/health, /status, /metrics, GET /services, the dashboard's
	// page and charts) stay open. The dashboard's log lines need it too.
	Token string

	// Actions carries out the dashboard's reload, restart, stop, start and
	// scale; nil answers them 503.
	Actions Actions
	// Logs gives the dashboard each app's recent output; nil shows none.
	Logs LogSource
	// Requests are the proxy's metrics, which the dashboard samples for its
	// charts; nil draws empty charts.
	Requests *Metrics
	// Context is herd's lifetime. While it lasts a sampler adds a point to
	// the charts every SampleEvery; when it ends, the sampler, every event
	// stream and every action in flight end. Nil: no sampler (the charts
	// stay empty) and streams end only with their clients.
	Context context.Context
	// SampleEvery is the charts' interval; zero means one second.
	SampleEvery time.Duration
	// Go starts the handler's background goroutine (the sampler), so its
	// owner can wait for it (a sync.WaitGroup's Go). Nil: a plain go.
	Go func(func())
}

// Handler returns the admin http.Handler.
func Handler(opts Options) http.Handler {
	started := time.Now()
	mux := http.NewServeMux()
	mux.Handle("GET /health", HealthHandler(opts.Services, opts.Required))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, statusBody{
			Pid:           os.Getpid(),
			UptimeSeconds: time.Since(started).Seconds(),
			Apps:          opts.Status(),
		})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	mux.Handle("GET /services", ServicesHandler(opts.Services))
	mux.Handle("GET /services/{name}", ServicesHandler(opts.Services))
	reg := registrar{opts.Registry}
	guarded := func(h http.HandlerFunc) http.Handler { return guard(opts.Token, h) }
	mux.Handle("POST /services", guarded(reg.register))
	mux.Handle("DELETE /services/{name}/{id}", guarded(reg.deregister))
	// Profiles of herd itself, for `go tool pprof http://ADMIN/debug/pprof/profile`
	// (with -H 'Authorization: Bearer TOKEN' when admin_auth has one).
	mux.Handle("GET /debug/pprof/", guarded(pprof.Index))
	mux.Handle("GET /debug/pprof/profile", guarded(pprof.Profile))
	mux.Handle("GET /debug/pprof/symbol", guarded(pprof.Symbol))
	mux.Handle("GET /debug/pprof/trace", guarded(pprof.Trace))
	d := newDashboard(opts, started)
	d.routes(mux, guarded)
	if opts.Context != nil {
		// The sampler's way out is Context: it returns when herd stops.
		d.sampling = true
		start := opts.Go
		if start == nil {
			start = func(f func()) { go f() }
		}
		start(func() { d.hist.run(opts.Context.Done(), d.interval) })
	}
	return jsonErrors(mux)
}

// jsonErrors answers what the mux does not route with JSON, as every herd
// error is: 404 for unknown paths, 405 for a method a path does not take.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own 405 sets Allow; catch it to write JSON instead.
		probe := &statusOnly{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			allow := probe.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "Method Not Allowed", Reason: r.Method + " is not served here; use " + allow})
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Not Found", Reason: "the admin listener serves / (the dashboard), /api/, /health, /status, /metrics, /services and /debug/pprof/"})
	})
}

// statusOnly records what the mux would answer, writing nothing.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int)        { s.status = code }

// HealthHandler answers the aggregate health: 200 when every required
// service has a ready instance, else 503 listing those that have none.
func HealthHandler(services func() []registry.ServiceStatus, required func() []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		byName := map[string]registry.ServiceStatus{}
		summary := map[string]serviceHealth{}
		for _, s := range services() {
			byName[s.Name] = s
			summary[s.Name] = serviceHealth{Kind: s.Kind, Healthy: s.Healthy, Instances: len(s.Instances)}
		}
		var failing []string
		for _, name := range required() {
			if byName[name].Healthy == 0 {
				failing = append(failing, name)
			}
		}
		if len(failing) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, healthBody{Status: "unavailable", Services: summary, Failing: failing,
				Reason: "no ready instance of: " + strings.Join(failing, ", ")})
			return
		}
		writeJSON(w, http.StatusOK, healthBody{Status: "ok", Services: summary})
	})
}

// ServicesHandler lists the services, or with a {name} path value, one.
func ServicesHandler(services func() []registry.ServiceStatus) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		all := services()
		name := r.PathValue("name")
		if name == "" {
			writeJSON(w, http.StatusOK, servicesBody{Services: all})
			return
		}
		for _, s := range all {
			if s.Name == name {
				writeJSON(w, http.StatusOK, s)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Not Found", Reason: fmt.Sprintf("no service named %q", name)})
	})
}

// registrar serves POST and DELETE /services.
type registrar struct{ reg *registry.Registry }

type registration struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	ID     string `json:"id"`
	Health string `json:"health"`
	// TTL is "30s" or a number of seconds.
	TTL json.RawMessage `json:"ttl"`
}

func (g registrar) register(w http.ResponseWriter, r *http.Request) {
	if g.reg == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "Service Unavailable", Reason: "this herd has no service registry"})
		return
	}
	var in registration
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "Bad Request",
			Reason: "the body must be JSON like {\"name\": \"users\", \"url\": \"http://10.0.0.5:3001\", \"ttl\": \"30s\"}: " + err.Error()})
		return
	}
	ttl, err := parseTTL(in.TTL)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "Bad Request", Reason: err.Error(), Field: "ttl"})
		return
	}
	saved, err := g.reg.Register(r.Context(), registry.Instance{Service: in.Name, URL: in.URL, ID: in.ID, Health: in.Health}, ttl)
	switch {
	case errors.Is(err, registry.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "Bad Request", Reason: err.Error(), Field: fieldOf(err)})
	case errors.Is(err, registry.ErrLocal):
		writeJSON(w, http.StatusConflict, errorBody{Error: "Conflict", Reason: err.Error(), Field: "name"})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "Service Unavailable", Reason: err.Error()})
	default:
		writeJSON(w, http.StatusOK, saved)
	}
}

// fieldOf names the field a registry.ErrInvalid is about: its message
// starts with it ("invalid registration: url ...").
func fieldOf(err error) string {
	msg := strings.TrimPrefix(err.Error(), registry.ErrInvalid.Error()+": ")
	field, _, _ := strings.Cut(msg, " ")
	if field == "name" || field == "url" || field == "id" || field == "health" || field == "ttl" {
		return field
	}
	return ""
}

func parseTTL(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var secs float64
	if json.Unmarshal(raw, &secs) == nil {
		return time.Duration(secs * float64(time.Second)), nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		}
	}
	return 0, fmt.Errorf("ttl %s: write a duration like \"30s\" or a number of seconds", raw)
}

func (g registrar) deregister(w http.ResponseWriter, r *http.Request) {
	if g.reg == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "Service Unavailable", Reason: "this herd has no service registry"})
		return
	}
	err := g.reg.Deregister(r.Context(), r.PathValue("name"), r.PathValue("id"))
	switch {
	case errors.Is(err, registry.ErrUnknown):
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Not Found", Reason: err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "Service Unavailable", Reason: err.Error()})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

type serviceHealth struct {
	Kind      string `json:"kind"`
	Healthy   int    `json:"healthy"`
	Instances int    `json:"instances"`
}

type healthBody struct {
	Status   string                   `json:"status"`
	Reason   string                   `json:"reason,omitempty"`
	Failing  []string                 `json:"failing,omitempty"`
	Services map[string]serviceHealth `json:"services"`
}

type servicesBody struct {
	Services []registry.ServiceStatus `json:"services"`
}

type statusBody struct {
	Pid           int                    `json:"pid"`
	UptimeSeconds float64                `json:"uptime_seconds"`
	Apps          []supervisor.AppStatus `json:"apps"`
}

type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
