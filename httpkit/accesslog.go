package httpkit

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// AccessLogOptions configure AccessLog.
type AccessLogOptions struct {
	// Disabled leaves AccessLog out of New's stack.
	Disabled bool
	// Logger receives one line per request. Default: New's Logger, or
	// slog.Default() when AccessLog is used alone.
	Logger *slog.Logger
	// Level is the level of a line for an answer below 500; 5xx answers and
	// aborted ones are logged at slog.LevelWarn or above. Default Info.
	Level slog.Level
	// Now is the clock the duration is read from. Default time.Now.
	Now func() time.Time
}

// AccessLog writes one slog line per request, when it is done: "request"
// with method, path, status, bytes (as sent, after compression when
// AccessLog is outside Compress), dur (time.Duration), remote and
// request_id. A handler that panics past it is logged with aborted=true and
// the panic goes on.
func AccessLog(opts AccessLogOptions) Middleware {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := now()
			sw := &statusWriter{passthrough: passthrough{w}}
			aborted := true
			defer func() {
				status := sw.status
				if status == 0 && !aborted {
					status = http.StatusOK // the handler wrote nothing: net/http sends 200
				}
				level := opts.Level
				if status >= 500 || aborted {
					level = max(level, slog.LevelWarn)
				}
				if !logger.Enabled(r.Context(), level) {
					return
				}
				attrs := []slog.Attr{
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Int64("bytes", sw.bytes),
					slog.Duration("dur", now().Sub(start)),
					slog.String("remote", r.RemoteAddr),
				}
				if id := RequestIDFrom(r.Context()); id != "" {
					attrs = append(attrs, slog.String("request_id", id))
				}
				if aborted {
					attrs = append(attrs, slog.Bool("aborted", true))
				}
				// The request's context may be canceled by now; the line is still wanted.
				logger.LogAttrs(context.WithoutCancel(r.Context()), level, "request", attrs...)
			}()
			next.ServeHTTP(sw, r)
			aborted = false
		})
	}
}

// statusWriter records the status and the bytes written through it.
type statusWriter struct {
	passthrough
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends what is buffered below; a flush sends the headers, so the
// status is then known.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	flush(w.ResponseWriter)
}
