package httpkit

import (
	"context"
	"math/rand/v2"
	"net/http"
)

// RequestIDOptions configure RequestID.
type RequestIDOptions struct {
	// Disabled leaves RequestID out of New's stack.
	Disabled bool
	// Header is the request and response header that carries the id.
	// Default "X-Request-Id", the one herd's proxy sets.
	Header string
	// IgnoreIncoming always makes a new id, for an app that faces clients
	// directly. Default false: an incoming id is kept when it is sane (1 to
	// 128 bytes of letters, digits and -_.:+=/@), so that one id follows a
	// request through herd's proxy and from service to service.
	IgnoreIncoming bool
}

type requestIDKey struct{}

// RequestIDFrom returns the request id RequestID put in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying id, for code that makes requests of
// its own (a job, a test) and wants RequestIDFrom to find one.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID keeps a sane incoming request id or makes a new one (32 hex
// digits), sets it on the request and the response headers, and puts it in
// the request's context for RequestIDFrom.
func RequestID(opts RequestIDOptions) Middleware {
	header := opts.Header
	if header == "" {
		header = "X-Request-Id"
	}
	header = http.CanonicalHeaderKey(header)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(header)
			if opts.IgnoreIncoming || !saneRequestID(id) {
				id = newRequestID()
				r.Header.Set(header, id)
			}
			w.Header().Set(header, id)
			next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
		})
	}
}

// saneRequestID reports whether id is safe to log and echo: not empty, at
// most 128 bytes, and only characters that need no quoting anywhere.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '=' || c == '/' || c == '@':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits as 32 hex digits. math/rand/v2's
// generator (ChaCha8, seeded by the runtime) is unpredictable enough for
// an id and costs no system call, unlike crypto/rand on older kernels.
func newRequestID() string {
	const hex = "0123456789abcdef"
	var b [32]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := range 16 {
		b[i] = hex[a>>(60-4*uint(i))&0xf]
		b[16+i] = hex[c>>(60-4*uint(i))&0xf]
	}
	return string(b[:])
}
