// Package control is herd's control API: HTTP with JSON bodies on a unix
// socket that only herd's user can open (mode 0600, in a 0700 folder). The
// CLI's status, describe, reload, restart, stop, start, scale, signal and
// logs commands are its clients (see Client).
//
//	GET  /v1/status                      every app and instance
//	GET  /v1/apps/{app}                  one app: config and instances
//	POST /v1/apps/{app}/reload           also restart, stop, start; {app} may be "all"
//	POST /v1/apps/{app}/scale?to=N|+N|-N
//	POST /v1/apps/{app}/signal?sig=SIGUSR2
//	GET  /v1/logs?app=&lines=N&follow=1  NDJSON lines; follow streams until the client leaves
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/herdhq/herd/internal/logbuf"
	"github.com/herdhq/herd/internal/supervisor"
)

// Manager is what the control API drives; internal/app implements it.
// Blocking methods take ctx, which the client's disconnect cancels.
type Manager interface {
	Status() []supervisor.AppStatus
	Describe(app string) (any, error)
	// Action runs "reload", "restart", "stop" or "start" on app ("all": every app).
	Action(ctx context.Context, action, app string) error
	// Scale sets app's instance count from spec: "N", "+N" or "-N"; it
	// returns the new count.
	Scale(ctx context.Context, app, spec string) (int, error)
	Signal(app, sig string) error
}

// StatusError is an error with the HTTP status the control API answers it
// with; other errors answer 409 (the operation could not be done).
type StatusError struct {
	Status int
	Msg    string
}

func (e *StatusError) Error() string { return e.Msg }

// Errorf returns a *StatusError.
func Errorf(status int, format string, args ...any) error {
	return &StatusError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Listen creates the socket at path (its folder made 0700 if missing). A
// socket left behind by a herd that died is replaced; one that answers means
// another herd runs with this config, which is an error.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control: creating socket folder: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control: another herd is already running with this config (socket %s answers); stop it first or pass --socket", path)
	}
	_ = os.Remove(path) // stale
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control: restricting %s to its owner: %w", path, err)
	}
	return l, nil
}

// Handler returns the control API for m and logs.
func Handler(m Manager, logs *logbuf.Buffer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, m.Status())
	})
	mux.HandleFunc("GET /v1/apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		d, err := m.Describe(r.PathValue("app"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, d)
	})
	mux.HandleFunc("POST /v1/apps/{app}/{action}", func(w http.ResponseWriter, r *http.Request) {
		app, action := r.PathValue("app"), r.PathValue("action")
		var err error
		result := map[string]any{"app": app, "action": action}
		switch action {
		case "reload", "restart", "stop", "start":
			err = m.Action(r.Context(), action, app)
		case "scale":
			var n int
			n, err = m.Scale(r.Context(), app, r.URL.Query().Get("to"))
			result["instances"] = n
		case "signal":
			err = m.Signal(app, r.URL.Query().Get("sig"))
		default:
			err = Errorf(http.StatusNotFound, "unknown action %q; use reload, restart, stop, start, scale or signal", action)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		result["ok"] = true
		writeJSON(w, http.StatusOK, result)
	})
	mux.HandleFunc("GET /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		app := q.Get("app")
		lines := 100
		if s := q.Get("lines"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeError(w, Errorf(http.StatusBadRequest, "lines=%q is not a count", s))
				return
			}
			lines = n
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, l := range logs.Tail(app, lines) {
			_ = enc.Encode(l)
		}
		if q.Get("follow") == "" {
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		_ = logs.Follow(r.Context(), app, func(l logbuf.Line) error {
			if err := enc.Encode(l); err != nil {
				return err
			}
			return rc.Flush()
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, Errorf(http.StatusNotFound, "%s %s is not part of the control API", r.Method, r.URL.Path))
	})
	return mux
}

// Serve serves the control API on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusConflict // the operation could not be done
	var se *StatusError
	switch {
	case errors.As(err, &se):
		status = se.Status
	case errors.Is(err, supervisor.ErrUnknownApp):
		status = http.StatusNotFound
	case errors.Is(err, supervisor.ErrStopping):
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
