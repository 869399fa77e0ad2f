package httpkit

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		level     slog.Level // the logger's
		wantLine  bool
		wantLevel string
		status    float64
		bytes     float64
		aborted   bool
	}{
		{name: "200 with body", handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") },
			wantLine: true, wantLevel: "INFO", status: 200, bytes: 5},
		{name: "nothing written is a 200", handler: func(w http.ResponseWriter, r *http.Request) {},
			wantLine: true, wantLevel: "INFO", status: 200},
		{name: "404", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			wantLine: true, wantLevel: "INFO", status: 404, bytes: 19},
		{name: "103 then 201", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
		}, wantLine: true, wantLevel: "INFO", status: 201},
		{name: "5xx at warn", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) },
			wantLine: true, wantLevel: "WARN", status: 503},
		{name: "aborted", handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "par")
			panic(http.ErrAbortHandler)
		}, wantLine: true, wantLevel: "WARN", status: 200, bytes: 3, aborted: true},
		{name: "logger above info: 200 not logged", level: slog.LevelWarn,
			handler: func(w http.ResponseWriter, r *http.Request) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: tt.level}))
			clock := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
			now := func() time.Time { clock = clock.Add(1500 * time.Microsecond); return clock }
			h := RequestID(RequestIDOptions{})(AccessLog(AccessLogOptions{Logger: logger, Now: now})(tt.handler))
			srv := serve(t, h)
			req := mustRequest(t, http.MethodGet, srv.URL+"/items/7?secret=1", nil)
			req.Header.Set("X-Request-Id", "req-42")
			if res, err := noRetryClient().Do(req); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			out := strings.TrimSpace(logs.String())
			if !tt.wantLine {
				if out != "" {
					t.Errorf("logged %s; want nothing", out)
				}
				return
			}
			var line map[string]any
			if err := json.Unmarshal([]byte(out), &line); err != nil {
				t.Fatalf("log %q: %v", out, err)
			}
			want := map[string]any{
				"level": tt.wantLevel, "msg": "request", "method": "GET", "path": "/items/7",
				"status": tt.status, "bytes": tt.bytes, "dur": float64(1500 * time.Microsecond), "request_id": "req-42",
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v; want %v (line %s)", k, line[k], v, out)
				}
			}
			if got := line["aborted"] == true; got != tt.aborted {
				t.Errorf("aborted %v; want %v", got, tt.aborted)
			}
			if strings.Contains(out, "secret") {
				t.Errorf("the query string was logged: %s", out)
			}
		})
	}
}
