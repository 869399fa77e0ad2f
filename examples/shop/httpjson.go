package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/herdhq/herd/svcclient"
)

// maxBody bounds every request body (httpkit's BodyLimit answers a larger
// one with its JSON 413); nothing the shop accepts comes near it.
const maxBody = 1 << 20

// apiError is an answer other than 2xx that a handler chose on purpose. Any
// other error a handler returns is a 500 whose details go to the log only.
type apiError struct {
	Status int
	Reason string
	Field  string // the input field at fault, "" when none is
}

func (e *apiError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Field, e.Reason)
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Reason)
}

func errorf(status int, field, format string, args ...any) *apiError {
	return &apiError{Status: status, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func badRequest(field, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, field, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, "", format, args...)
}

// errorBody is the one error shape every service answers with, so that
// svcclient on the calling side can decode any of them into *svcclient.Error.
type errorBody struct {
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	Field     string `json:"field"`
	RequestID string `json:"request_id"`
}

// handle adapts a handler that returns its failure, so each handler has one
// place (here) that turns errors into JSON instead of many early writes.
func handle(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, err)
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here (every value written is a plain
		// struct): httpkit's Recover logs it with its stack and answers 500.
		panic(fmt.Errorf("encoding a %T response: %w", v, err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	id := svcclient.RequestID(r.Context())
	var ae *apiError
	if !errors.As(err, &ae) {
		slog.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		ae = &apiError{Status: http.StatusInternalServerError, Reason: "internal error; the service log has the details under request_id " + id}
	}
	writeJSON(w, ae.Status, errorBody{Error: http.StatusText(ae.Status), Reason: ae.Reason, Field: ae.Field, RequestID: id})
}

// decodeJSON reads exactly one JSON object into dst. Unknown fields are
// refused so a typo ("emial") is a 400, not a silently missing value. A
// body over maxBody is httpkit's: its 413 replaces whatever this answers.
func decodeJSON(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return badRequest("", "the body must hold one JSON object and nothing after it")
	}
	return nil
}

// jsonError turns a decoding failure into the 4xx that says what to fix.
func jsonError(err error) error {
	var (
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("", "the body is empty; expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "malformed JSON: the body ends too early")
	case errors.As(err, &syntax):
		return badRequest("", "malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &wrongType):
		if wrongType.Field == "" {
			return badRequest("", "the body must be a JSON object, not %s", wrongType.Value)
		}
		return badRequest(wrongType.Field, "%s must be %s, not %s", wrongType.Field, jsonKind(wrongType.Type.Kind()), wrongType.Value)
	}
	// encoding/json has no type for an unknown field, only this message.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return badRequest(name, "unknown field %q", name)
	}
	return badRequest("", "malformed JSON: %v", err)
}

// jsonKind names a Go kind the way a client writing JSON thinks of it.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// limitParam reads ?limit=: default 50, at most 500 (larger values are
// capped rather than refused, as a page size is a hint).
func limitParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, badRequest("limit", "limit must be a whole number from 1 to 500, not %q", s)
	}
	return min(n, 500), nil
}

// validID accepts what the services hand out ("usr_" + hex) and the seeds'
// readable ids, and nothing that could change the meaning of a URL path.
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
