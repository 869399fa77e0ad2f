package httpkit

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// RecoverOptions configure Recover.
type RecoverOptions struct {
	// Disabled leaves Recover out of New's stack.
	Disabled bool
	// Logger receives each panic with its stack, at Error. Default: New's
	// Logger, or slog.Default() when Recover is used alone.
	Logger *slog.Logger
}

// Recover returns middleware that turns a handler's panic into a 500 with
// {"error":"internal server error","request_id":...} and logs the panic
// with its stack. If the handler had started its answer, a 500 can no
// longer be sent: the panic is logged and re-raised as http.ErrAbortHandler,
// on which net/http cuts the connection (so the client sees a broken
// answer, not a short one that looks whole) without logging it again. A
// panic with http.ErrAbortHandler itself goes on untouched, as net/http
// expects.
func Recover(opts RecoverOptions) Middleware {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &recoverWriter{passthrough: passthrough{w}}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				attrs := []slog.Attr{
					slog.String("panic", fmt.Sprint(v)),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Bool("answer_started", rw.wrote),
					slog.String("stack", string(debug.Stack())),
				}
				if id := RequestIDFrom(r.Context()); id != "" {
					attrs = append(attrs, slog.String("request_id", id))
				}
				logger.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelError, "handler panicked", attrs...)
				if rw.wrote {
					panic(http.ErrAbortHandler)
				}
				writeJSON(w, r, http.StatusInternalServerError, map[string]any{"error": "internal server error",
					"reason": "the handler failed; the server's log has the details under this request id"})
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// recoverWriter records whether the handler started its answer.
type recoverWriter struct {
	passthrough
	wrote bool
}

func (w *recoverWriter) WriteHeader(code int) {
	if code >= 200 {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recoverWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *recoverWriter) Flush() {
	w.wrote = true
	flush(w.ResponseWriter)
}
