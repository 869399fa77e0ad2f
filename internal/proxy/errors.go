package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/herdhq/herd/internal/balance"
)

// StatusClientClosed is NGINX's code for a client that went away before the
// response: logged and counted, never sent.
const StatusClientClosed = 499

// errorHandler answers a failed proxy attempt for one route.
func (h *Handler) errorHandler(rt *Route) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() != nil {
			err = errClientGone
		}
		status, reason := h.failed(rt, err, r.URL.Path, r.Header.Get("X-Request-Id"))
		if status == StatusClientClosed {
			if rec, ok := w.(*recorder); ok {
				rec.status = StatusClientClosed
			}
			return
		}
		writeError(w, r, status, rt.App, reason)
	}
}

// failure maps a failed proxy attempt to the status and reason answered.
func failure(rt *Route, err error) (status int, reason string) {
	var tooLarge *http.MaxBytesError
	var badBody *clientBodyError
	switch {
	case errors.As(err, &tooLarge):
		status = http.StatusRequestEntityTooLarge
		reason = fmt.Sprintf("the body is larger than this route takes (%d bytes)", tooLarge.Limit)
	case errors.As(err, &badBody):
		status = http.StatusBadRequest
		reason = fmt.Sprintf("the request body could not be read: %v", badBody.err)
	case errors.Is(err, balance.ErrAllDown):
		status = http.StatusServiceUnavailable
		reason = fmt.Sprintf("every server of %q fails its health check (waited %s)", rt.App, rt.QueueTimeout)
	case errors.Is(err, balance.ErrNoBackend):
		status = http.StatusServiceUnavailable
		reason = fmt.Sprintf("no instance of app %q was ready within %s", rt.App, rt.QueueTimeout)
	case errors.Is(err, errNoRetryTarget):
		status = http.StatusBadGateway
		reason = fmt.Sprintf("an instance of app %q failed and no other was ready", rt.App)
	case isTimeout(err):
		status = http.StatusGatewayTimeout
		reason = fmt.Sprintf("instance of app %q timed out: %v", rt.App, err)
	default:
		status = http.StatusBadGateway
		reason = fmt.Sprintf("instance of app %q failed: %v", rt.App, err)
	}
	return status, reason
}

// errorBody is the JSON body of every error herd itself answers.
type errorBody struct {
	Error     string `json:"error"`
	App       string `json:"app,omitempty"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id,omitempty"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, app, reason string) {
	body := errorJSON(status, app, reason, r.Header.Get("X-Request-Id"))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if id := r.Header.Get("X-Request-Id"); id != "" {
		h.Set("X-Request-Id", id)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorJSON is the body of an error answer, newline-terminated.
func errorJSON(status int, app, reason, requestID string) []byte {
	body, _ := json.Marshal(errorBody{Error: http.StatusText(status), App: app, Reason: reason, RequestID: requestID})
	return append(body, '\n')
}

// recorder remembers the status sent. Unwrap lets http.ResponseController
// reach the real writer for flushing and WebSocket hijacking.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64

	// Noted by the transport when an access log wants them.
	upstream     string
	upstreamTime time.Duration
	cacheStatus  string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 || (r.status >= 100 && r.status < 200 && code != http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush is for wrappers that assert http.Flusher instead of using
// http.ResponseController (gzhttp does), so streams stay streams.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Status is the status sent, 200 if the handler wrote nothing.
func (r *recorder) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
