// Package admin serves herd's admin listener: /health (are all apps
// serving?), /status (JSON snapshot of every instance) and /metrics
// (Prometheus). It reads state through a function and never changes it.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herdhq/herd/internal/supervisor"
)

// StatusFunc returns a snapshot of every app.
type StatusFunc func() []supervisor.AppStatus

// Handler returns the admin http.Handler.
func Handler(status StatusFunc, gatherer prometheus.Gatherer) http.Handler {
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", onlyGET(func(w http.ResponseWriter, r *http.Request) {
		apps := status()
		var notReady []string
		summary := make(map[string]appHealth, len(apps))
		for _, a := range apps {
			h := appHealth{Instances: len(a.Instances)}
			for _, in := range a.Instances {
				if in.State == supervisor.Ready {
					h.Ready++
				}
			}
			summary[a.Name] = h
			if h.Ready == 0 {
				notReady = append(notReady, a.Name)
			}
		}
		if len(notReady) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, healthBody{Status: "unavailable", Apps: summary, NotReady: notReady,
				Reason: "some apps have no ready instance"})
			return
		}
		writeJSON(w, http.StatusOK, healthBody{Status: "ok", Apps: summary})
	}))
	mux.HandleFunc("/status", onlyGET(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, statusBody{
			Pid:           os.Getpid(),
			UptimeSeconds: time.Since(started).Seconds(),
			Apps:          status(),
		})
	}))
	mux.Handle("/metrics", onlyGET(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}).ServeHTTP))
	// Profiles of herd itself, for `go tool pprof http://ADMIN/debug/pprof/profile`.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "Not Found", Reason: "the admin listener serves /health, /status, /metrics and /debug/pprof/"})
	})
	return mux
}

// onlyGET answers other methods with a JSON 405, as every herd error is JSON.
func onlyGET(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "Method Not Allowed", Reason: r.Method + " is not served here; use GET"})
			return
		}
		h(w, r)
	}
}

type appHealth struct {
	Ready     int `json:"ready"`
	Instances int `json:"instances"`
}

type healthBody struct {
	Status   string               `json:"status"`
	Reason   string               `json:"reason,omitempty"`
	NotReady []string             `json:"not_ready,omitempty"`
	Apps     map[string]appHealth `json:"apps"`
}

type statusBody struct {
	Pid           int                    `json:"pid"`
	UptimeSeconds float64                `json:"uptime_seconds"`
	Apps          []supervisor.AppStatus `json:"apps"`
}

type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
