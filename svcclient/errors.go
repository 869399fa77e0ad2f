package svcclient

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is a service's answer other than 2xx, or a Registry's failure to
// find a usable instance, decoded from the JSON error body that herd and
// the services send:
//
//	{"error": "Not Found", "reason": "no user with id \"usr_x\"", "field": "id", "request_id": "..."}
type Error struct {
	Service   string // the service called
	Status    int    // the HTTP status
	Message   string // JSON "error", or the status text when the body is not JSON
	Reason    string // JSON "reason", or the start of a body that is not JSON
	Field     string // JSON "field": the input field at fault, if any
	RequestID string // the id of the request that failed

	// Retry-After of a 429, when it had one.
	retryAfter    time.Duration
	hasRetryAfter bool
}

// Error reads like `users: 404 Not Found: no user with id "usr_x" (request 3f2a)`.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Service != "" {
		b.WriteString(e.Service)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.Status))
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if msg != "" {
		b.WriteString(" ")
		b.WriteString(msg)
	}
	switch {
	case e.Reason != "":
		b.WriteString(": ")
		b.WriteString(e.Reason)
	case e.Field != "":
		b.WriteString(": field ")
		b.WriteString(e.Field)
	}
	if e.RequestID != "" {
		b.WriteString(" (request ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	return b.String()
}

// StatusOf returns the HTTP status of the *Error in err's chain, 503 when
// err is a call refused by an open circuit breaker, and 0 otherwise (nil,
// or a failure to reach the service at all).
func StatusOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	if errors.Is(err, ErrCircuitOpen) {
		return http.StatusServiceUnavailable
	}
	return 0
}

// errorFrom reads a non-2xx answer into an *Error. sentID is the request id
// the call sent, for answers that do not echo it.
func errorFrom(service, sentID string, resp *http.Response) *Error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Service: service, Status: resp.StatusCode}
	var body struct {
		Error     string `json:"error"`
		Reason    string `json:"reason"`
		Field     string `json:"field"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(data, &body) == nil {
		e.Message, e.Reason, e.Field, e.RequestID = body.Error, body.Reason, body.Field, body.RequestID
	} else {
		e.Reason = strings.TrimSpace(truncate(string(data), 200))
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("X-Request-Id")
	}
	if e.RequestID == "" {
		e.RequestID = sentID
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.retryAfter, e.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<20)) * time.Second, true // min: no overflow
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
