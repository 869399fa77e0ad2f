package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"unsafe"

	"github.com/herdhq/herd/internal/h1"
	"github.com/herdhq/herd/internal/urlpath"
)

// Both paths route and forward a request by its normalized path (see
// internal/urlpath): unreserved escapes decoded, dot segments removed, runs
// of slashes merged unless Options.KeepSlashes, so that /public/../admin/x
// is /admin/x to herd as to the instance. A path that climbs above / or is
// malformed gets a 400. The query goes on as it came.

// pathRefusal is the reason a path is refused with.
func pathRefusal(err error) string { return "the request path is refused: " + err.Error() }

// normalize sets c.target, the target the fast path routes and forwards:
// c.req.Target itself when its path is already normal (no allocation), or
// the normalized path and the query, in c.targetBuf.
func (c *clientConn) normalize(keepSlashes bool) error {
	p := targetPath(c.req.Target)
	s := bytesString(p)
	n, err := urlpath.Normalize(s, keepSlashes)
	if err != nil {
		return &h1.Error{Status: http.StatusBadRequest, Reason: pathRefusal(err)}
	}
	if len(n) == len(s) && unsafe.StringData(n) == unsafe.StringData(s) {
		c.target = c.req.Target
		return nil
	}
	c.targetBuf = append(append(c.targetBuf[:0], n...), c.req.Target[len(p):]...)
	c.target = c.targetBuf
	return nil
}

// normalizeURL does the same for the net/http path: r.URL's path becomes
// the normalized one, or the returned reason says why it is refused. A
// target that is no path ("*", an authority) is left as it is.
func (h *Handler) normalizeURL(r *http.Request) (refused string) {
	raw := r.URL.EscapedPath()
	if !strings.HasPrefix(raw, "/") {
		return ""
	}
	n, err := urlpath.Normalize(raw, h.keepSlashes)
	if err != nil {
		return pathRefusal(err)
	}
	if n == raw {
		return ""
	}
	p, err := url.PathUnescape(n)
	if err != nil {
		return pathRefusal(err)
	}
	r.URL.Path, r.URL.RawPath = p, n
	return ""
}
