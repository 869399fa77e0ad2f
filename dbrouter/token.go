package dbrouter

import (
	"context"
	"net/http"

	"github.com/herdhq/herd/dbrouter/consistency"
)

// Token is a read-your-writes token: what a read must have seen of each
// cluster's WAL. See package consistency.
type Token = consistency.Token

// LSN is a position in a PostgreSQL write-ahead log.
type LSN = consistency.LSN

// TokenHeader is the HTTP header a Token travels in:
// "Herd-Consistency-Token".
const TokenHeader = consistency.Header

// WithToken returns a context carrying t (merged with any token ctx
// carries) in a holder of its own. Reads under it are never older than t,
// and writes made under it add their LSN to it, so that later reads and
// outgoing svcclient calls under it see them.
func WithToken(ctx context.Context, t Token) context.Context { return consistency.WithToken(ctx, t) }

// TokenFrom returns the token ctx carries, the zero Token if none.
func TokenFrom(ctx context.Context) Token { return consistency.TokenFrom(ctx) }

// ParseToken reads a Token in TokenHeader's form.
func ParseToken(s string) (Token, error) { return consistency.Parse(s) }

type scopeKey struct{}

// WithScope returns a context whose reads and writes belong to scope, for
// callers that cannot carry a token (a user id across requests that do not
// pass TokenHeader back): a write under a scope records its LSN for that
// scope in Config.Sticky, and a read under it is never older than the last
// write recorded for it.
func WithScope(ctx context.Context, scope string) context.Context {
	return context.WithValue(ctx, scopeKey{}, scope)
}

// ScopeFrom returns the scope of ctx, "" if none.
func ScopeFrom(ctx context.Context) string {
	s, _ := ctx.Value(scopeKey{}).(string)
	return s
}

// Middleware gives each request a token holder. It starts with the token
// of the request's TokenHeader, if valid (an invalid one is ignored: the
// read is then only as fresh as the replicas). The writes the handler
// makes under r.Context() add to it, and the answer carries the holder's
// token in TokenHeader, so that a caller can send it back on its next
// request (svcclient does so for calls between services).
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := consistency.Parse(r.Header.Get(TokenHeader))
		ctx := consistency.WithToken(r.Context(), tok)
		next.ServeHTTP(&tokenWriter{ResponseWriter: w, ctx: ctx}, r.WithContext(ctx))
	})
}

// tokenWriter adds the token to the answer's header when it is written.
type tokenWriter struct {
	http.ResponseWriter
	ctx     context.Context
	written bool
}

func (w *tokenWriter) setHeader() {
	if w.written {
		return
	}
	w.written = true
	if t := consistency.TokenFrom(w.ctx); !t.IsZero() {
		w.Header().Set(TokenHeader, t.String())
	}
}

func (w *tokenWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		w.ResponseWriter.WriteHeader(code) // an informational answer; the real one follows
		return
	}
	w.setHeader()
	w.ResponseWriter.WriteHeader(code)
}

func (w *tokenWriter) Write(b []byte) (int, error) {
	w.setHeader()
	return w.ResponseWriter.Write(b)
}

// Flush passes on to the ResponseWriter underneath, if it flushes.
func (w *tokenWriter) Flush() {
	w.setHeader()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the ResponseWriter underneath.
func (w *tokenWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
