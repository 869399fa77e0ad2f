package httpkit

import (
	"bufio"
	"net"
	"net/http"
)

// passthrough gives a wrapping ResponseWriter what callers look for by
// type assertion: Unwrap (for http.ResponseController) and Hijack (for
// WebSocket libraries that assert http.Hijacker). Each wrapper writes its
// own Flush, because flushing means something different to each.
type passthrough struct{ http.ResponseWriter }

// Unwrap returns the wrapped writer, for http.ResponseController.
func (p passthrough) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// Hijack hands over the connection, if the writers below allow it.
func (p passthrough) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(p.ResponseWriter).Hijack()
}

// flush flushes w through whatever wrappers it has; a writer that cannot
// flush is left alone, as net/http does.
func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }
