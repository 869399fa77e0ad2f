package session

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// LoadAndSave is the HTTP middleware: it loads the session of the request's
// cookie into the request's context (FromContext, Get, Put, Remove) and
// saves it just before the response's headers are written (at the
// handler's first WriteHeader, Write or Flush, or when it returns), so the
// cookie can still be set and nothing of the response is buffered. Changes
// made after the headers went are saved too, if they need no new cookie.
//
// The cookie is written only when it must change: a new session, a renewed
// token, a moved deadline (persistent cookies), or a destroyed session
// (deleted). A request whose session was only read sends no cookie.
//
// A store failure while loading, or while saving before the headers, goes
// to ErrorFunc (default: 500). A session that ended elsewhere while the
// request ran (destroyed, renewed by a concurrent request) loses this
// request's changes, which is logged; the cookie is left alone, since a
// concurrent request may have just sent its successor.
func (m *Manager) LoadAndSave(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		s, err := m.Load(r.Context(), m.requestToken(r))
		if err != nil {
			m.fail(w, r, err)
			return
		}
		sw := &responseWriter{ResponseWriter: w, m: m, r: r, s: s}
		next.ServeHTTP(sw, r.WithContext(NewContext(r.Context(), s)))
		sw.finish()
	})
}

// requestToken returns the first well-formed session cookie's value.
// Several may come (a parent domain's and the host's); a malformed one
// would not load anyway.
func (m *Manager) requestToken(r *http.Request) string {
	for _, c := range r.CookiesNamed(m.cookieName()) {
		if wellFormed(c.Value) {
			return c.Value
		}
	}
	return ""
}

func (m *Manager) cookieName() string {
	if m.Cookie.Name == "" {
		return DefaultCookieName
	}
	return m.Cookie.Name
}

func (m *Manager) fail(w http.ResponseWriter, r *http.Request, err error) {
	if m.ErrorFunc != nil {
		m.ErrorFunc(w, r, err)
		return
	}
	m.logger().ErrorContext(r.Context(), "session", "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// setCookie writes the cookie a commit asked for.
func (m *Manager) setCookie(w http.ResponseWriter, r *http.Request, s *Session, a cookieAction) {
	c := &http.Cookie{
		Name:     m.cookieName(),
		Path:     m.Cookie.Path,
		Domain:   m.Cookie.Domain,
		HttpOnly: true,
		SameSite: m.Cookie.SameSite,
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	switch m.Cookie.Secure {
	case SecureAlways:
		c.Secure = true
	case SecureOnTLS:
		c.Secure = r.TLS != nil
	}
	if a == cookieDelete {
		c.Expires = time.Unix(1, 0)
		c.MaxAge = -1
	} else {
		s.mu.Lock()
		c.Value, c.Expires = s.token, s.deadline.UTC()
		s.mu.Unlock()
		if m.Cookie.SessionOnly {
			c.Expires = time.Time{}
		} else {
			c.MaxAge = max(1, int((c.Expires.Sub(m.now())+time.Second-1)/time.Second))
		}
	}
	h := w.Header()
	h.Add("Set-Cookie", c.String())
	// A shared cache must not hand this cookie to someone else.
	h.Add("Cache-Control", `no-cache="Set-Cookie"`)
}

// responseWriter commits the session before the first byte of the
// response's headers.
type responseWriter struct {
	http.ResponseWriter
	m *Manager
	r *http.Request
	s *Session

	committed bool // the first commit ran
	failed    bool // it failed and ErrorFunc answered instead
}

// errSaveFailed is what the handler's writes return once the session could
// not be saved and ErrorFunc answered the request.
var errSaveFailed = errors.New("session: the session could not be saved; the response was replaced by ErrorFunc's")

// ctx is the context of a save: the request's values without its
// cancellation, so a client that hangs up does not lose the changes its
// request made. The store client's own timeouts bound the call.
func (w *responseWriter) ctx() context.Context { return context.WithoutCancel(w.r.Context()) }

// before runs the first commit and reports whether the handler may write.
func (w *responseWriter) before() bool {
	if !w.committed {
		w.committed = true
		a, err := w.m.commit(w.ctx(), w.s, false)
		switch {
		case errIsNotFound(err):
			w.m.logger().WarnContext(w.r.Context(), "session: changes dropped", "path", w.r.URL.Path, "err", err)
		case err != nil:
			w.failed = true
			w.m.fail(w.ResponseWriter, w.r, err)
		case a != cookieKeep:
			w.m.setCookie(w.ResponseWriter, w.r, w.s, a)
		}
	}
	return !w.failed
}

// WriteHeader commits the session first, except for 1xx answers, which
// come before the real headers.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.before() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.before() {
		return 0, errSaveFailed
	}
	return w.ResponseWriter.Write(p)
}

// Flush commits the session and flushes, if the underlying writer can.
func (w *responseWriter) Flush() {
	if w.before() {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish commits once the handler returned: the first commit if the handler
// wrote nothing, else what it changed after its headers went.
func (w *responseWriter) finish() {
	if !w.committed {
		w.before()
		return
	}
	if w.failed {
		return
	}
	if _, err := w.m.commit(w.ctx(), w.s, true); err != nil {
		w.m.logger().ErrorContext(w.r.Context(), "session: saving after the response", "path", w.r.URL.Path, "err", err)
	}
}
