package svcclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	idempotencyKeyKey
)

// WithRequestID returns a context whose calls send id as X-Request-Id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id in ctx, "" if none. In a handler behind
// Middleware it is the id of the request being served.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithIdempotencyKey returns a context whose calls send key as
// Idempotency-Key. The service promises to act on a key once however often
// it arrives, so the Client may retry any method, POST and PATCH included.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyKey, key)
}

func idempotencyKey(ctx context.Context) string {
	key, _ := ctx.Value(idempotencyKeyKey).(string)
	return key
}

// maxTimeoutMs caps X-Request-Timeout-Ms (a day) so that no value overflows
// a time.Duration.
const maxTimeoutMs = 24 * 60 * 60 * 1000

// Middleware is for the serving side of a service. It takes the request's
// X-Request-Id, or makes a random one when there is none (or it is not a
// short printable token), puts it in the request's context for RequestID,
// and echoes it in the response. When the request has X-Request-Timeout-Ms,
// a positive number of milliseconds, the request's context ends then: the
// caller will not wait longer for the answer, so neither should the work.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		fresh := !validRequestID(id)
		if fresh {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := WithRequestID(r.Context(), id)
		if ms, err := strconv.ParseInt(r.Header.Get("X-Request-Timeout-Ms"), 10, 64); err == nil && ms > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(min(ms, maxTimeoutMs))*time.Millisecond)
			defer cancel()
		}
		r = r.WithContext(ctx)
		if fresh {
			// Handlers (and proxies) reading the header see the id too.
			r.Header = r.Header.Clone()
			r.Header.Set("X-Request-Id", id)
		}
		next.ServeHTTP(w, r)
	})
}

// validRequestID accepts ids that are safe to log and send on: 1 to 128
// printable ASCII characters without spaces.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits in hex, as herd's gateway makes them.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails, per crypto/rand
	return hex.EncodeToString(b[:])
}
