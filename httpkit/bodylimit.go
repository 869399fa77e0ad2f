package httpkit

import (
	"fmt"
	"io"
	"net/http"
)

// BodyLimitOptions configure BodyLimit.
type BodyLimitOptions struct {
	// Disabled leaves BodyLimit out of New's stack.
	Disabled bool
	// Limit is the largest request body accepted, in bytes. Default 10 MiB
	// (the seed's "10mb").
	Limit int64
}

// BodyLimit returns middleware that refuses a request body over Limit with
// 413 and {"error":"request body too large","limit":N,"reason":...} (N in bytes). A
// declared Content-Length over the limit is refused before the handler
// runs; a chunked body is cut where it crosses the limit: the handler's
// next Read fails with *http.MaxBytesError, and whatever the handler then
// answers is replaced by the 413 (unless it had answered already). The 413
// closes the connection, since the rest of the body is not read.
func BodyLimit(opts BodyLimitOptions) Middleware {
	limit := opts.Limit
	if limit <= 0 {
		limit = 10 << 20
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				tooLarge(w, r, limit)
				return
			}
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			lw := &limitWriter{passthrough: passthrough{w}, r: r, limit: limit}
			lw.body = &limitReader{rc: r.Body, left: limit, limit: limit}
			r.Body = lw.body
			next.ServeHTTP(lw, r)
			if lw.body.exceeded && !lw.wrote {
				lw.replace()
			}
		})
	}
}

func tooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	w.Header().Set("Connection", "close")
	writeJSON(w, r, http.StatusRequestEntityTooLarge, map[string]any{"error": "request body too large", "limit": limit,
		"reason": fmt.Sprintf("the body is larger than the %d bytes this server takes; send a smaller one", limit)})
}

// limitReader is http.MaxBytesReader that remembers it was exceeded (the
// standard one tells only the server's own ResponseWriter, which a wrapped
// writer hides).
type limitReader struct {
	rc       io.ReadCloser
	left     int64
	limit    int64
	exceeded bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.exceeded {
		return 0, &http.MaxBytesError{Limit: l.limit}
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Read one byte more than allowed, to tell "exactly the limit" from
	// "over it" without waiting for the next call.
	if int64(len(p))-1 > l.left {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	if int64(n) <= l.left {
		l.left -= int64(n)
		return n, err
	}
	n = int(l.left)
	l.left = 0
	l.exceeded = true
	return n, &http.MaxBytesError{Limit: l.limit}
}

func (l *limitReader) Close() error { return l.rc.Close() }

// limitWriter replaces the handler's answer with the 413 once the body was
// cut, if the handler had not answered before.
type limitWriter struct {
	passthrough
	r        *http.Request
	limit    int64
	body     *limitReader
	wrote    bool // the handler's answer (or the 413) has started
	replaced bool // the 413 went in place of the handler's answer
}

func (w *limitWriter) replace() {
	w.wrote, w.replaced = true, true
	tooLarge(w.ResponseWriter, w.r, w.limit)
}

func (w *limitWriter) WriteHeader(code int) {
	switch {
	case w.replaced:
	case !w.wrote && w.body.exceeded:
		w.replace()
	default:
		if code >= 200 {
			w.wrote = true
		}
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *limitWriter) Write(b []byte) (int, error) {
	if !w.wrote && w.body.exceeded {
		w.replace()
	}
	if w.replaced {
		return len(b), nil // the handler's words for the failure are not sent
	}
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *limitWriter) Flush() {
	if !w.wrote && w.body.exceeded {
		w.replace()
	}
	w.wrote = true
	flush(w.ResponseWriter)
}
