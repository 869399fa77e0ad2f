package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herdhq/herd/internal/h1"
)

// Server serves a plain-HTTP listener with an HTTP/1.1 fast path: one
// goroutine per client connection parses each request head itself and, when
// the request is a plain one to a route that only proxies, writes it to a
// pooled connection to an instance and copies the response back, with no
// other goroutine involved. Everything else is handed, with the bytes
// already read, to Fallback, a net/http server that keeps the connection
// from then on; pathFor decides which. Both paths run the same pipeline
// (routes, limits, retries, headers, errors, logs and metrics); see the
// package documentation.
type Server struct {
	// Handler returns the proxy for the next request; a reload swaps it.
	Handler func() *Handler
	// Fallback serves what the fast path does not take. Its
	// ReadHeaderTimeout, IdleTimeout and MaxHeaderBytes apply to the fast
	// path too.
	Fallback *http.Server

	handoff  *connQueue
	mu       sync.Mutex
	conns    map[*clientConn]struct{}
	ln       net.Listener
	shutdown atomic.Bool
	active   sync.WaitGroup
}

// clientConn is one client connection on the fast path: it reads and
// parses request heads into its buffer, sends answers, and watches for a
// client that leaves. The request itself is served by an exchange, which
// reads req and moves bytes through the methods below.
type clientConn struct {
	nc         net.Conn
	remoteAddr string
	remoteIP   string
	idle       atomic.Bool // waiting for a request, so Shutdown may close it

	buf        []byte // read buffer: buf[start:end] is unread
	start, end int
	req        h1.Request  // the head readHead parsed, in buf
	target     []byte      // req.Target with its path normalized (see normalize)
	targetBuf  []byte      // target's storage when normalizing changed it
	out        []byte      // the connection's own answers (errors)
	pending    []byte      // an answer that readHead sends, see sendLater
	wr         *waitReader // nil when the connection has no file descriptor
	waitFirst  bool        // see flushAndWait

	// The watch notices a client that leaves while its request waits (in
	// the queue, in the rate limiter) or is with an instance, and closes
	// the instance's connection (NGINX's proxy_ignore_client_abort off);
	// see watch.
	watchMu    sync.Mutex
	watchTimer *time.Timer
	watchArmed bool          // the timer will fire
	watching   bool          // an exchange is under watch
	watchStart time.Time     // when the watched exchange began
	watched    *upstreamConn // the exchange's instance connection, if any
	watchDone  chan struct{} // a watcher runs until closed
	watchRead  int           // bytes the watcher read (the next request's)
	goneCh     chan struct{} // closed when gone is set, made by context's Done
	gone       atomic.Bool
}

// writeError sends an error answer with a JSON body, as writeError does on
// the other path.
func (c *clientConn) writeError(status int, body []byte, id, retryAfter string, closeConn bool) bool {
	out := append(c.out[:0], "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(status)...)
	out = append(out, "\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	if id != "" {
		out = append(out, "X-Request-Id: "...)
		out = append(out, id...)
		out = append(out, "\r\n"...)
	}
	if retryAfter != "" {
		out = append(out, "Retry-After: "...)
		out = append(out, retryAfter...)
		out = append(out, "\r\n"...)
	}
	out = appendDate(out)
	if closeConn {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	out = append(out, body...)
	c.out = out
	_, err := c.nc.Write(out)
	return err == nil
}

// bufferedBody is how many bytes of the request's body are in buf.
func (c *clientConn) bufferedBody() int {
	return int(min(c.req.ContentLength, int64(c.end-c.start-c.req.HeadLen)))
}

// body returns the first n bytes of the request's body, from buf.
func (c *clientConn) body(n int) []byte {
	at := c.start + c.req.HeadLen
	return c.buf[at : at+n]
}

// consume is done with the request: its n bytes leave buf.
func (c *clientConn) consume(n int) { c.start += n }

// readBody reads more of the request's body from the client, with no
// deadline, as in net/http.
func (c *clientConn) readBody(p []byte) (int, error) {
	_ = c.nc.SetReadDeadline(time.Time{})
	return c.nc.Read(p)
}

// send writes p to the client.
func (c *clientConn) send(p []byte) error {
	_, err := c.nc.Write(p)
	return err
}

// sendLater keeps p, a complete answer, for readHead to send as it starts
// waiting for the next request (see flushAndWait). p must stay as it is
// until then.
func (c *clientConn) sendLater(p []byte) { c.pending = p }

// context returns the request's context on the fast path: done when the
// client leaves. Asking for its Done channel puts the exchange under watch
// (see waitWatch), so waiting on it notices the client leaving; a request
// whose body is still to be read cannot be watched, and its Done channel
// then closes only if a watch that starts later (with an instance) sees
// the client leave.
func (c *clientConn) context() context.Context { return connContext{c} }

type connContext struct{ c *clientConn }

func (connContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (connContext) Value(any) any               { return nil }

func (x connContext) Err() error {
	if x.c.gone.Load() {
		return context.Canceled
	}
	return nil
}

func (x connContext) Done() <-chan struct{} {
	c := x.c
	c.watchMu.Lock()
	if c.goneCh == nil {
		c.goneCh = make(chan struct{})
		if c.gone.Load() {
			close(c.goneCh)
		}
	}
	done := c.goneCh
	c.watchMu.Unlock()
	c.waitWatch()
	return done
}

// watchDelay is how long a request is with an instance before herd starts
// watching its client: quick requests never pay for the goroutine.
const watchDelay = 100 * time.Millisecond

// watch puts the exchange with up, begun at start, under watch; on a
// retry, a watcher that already runs goes on watching for the new
// attempt. The timer is not moved per request: once armed, it fires, and
// re-arms itself for the exchange then in progress, if any (see
// watchTimeout), so a connection carrying quick requests touches it a few
// times a second at most.
func (c *clientConn) watch(up *upstreamConn, start time.Time) {
	if c.end == len(c.buf) {
		return // no room for the byte the watcher reads
	}
	c.watchMu.Lock()
	if !c.watching {
		c.watching, c.watchStart = true, start
	}
	c.watched = up
	c.armWatch()
	c.watchMu.Unlock()
}

// waitWatch puts an exchange that waits without an instance (queued, or
// delayed by the rate limit) under watch, if its body is all in buf: the
// watcher reads from the client, which must not take a byte of the body.
func (c *clientConn) waitWatch() {
	if c.end == len(c.buf) || c.bufferedBody() < int(c.req.ContentLength) {
		return
	}
	c.watchMu.Lock()
	if !c.watching {
		c.watching, c.watchStart = true, time.Now()
	}
	c.armWatch()
	c.watchMu.Unlock()
}

// armWatch sets the timer that starts the watcher, unless it is set or the
// watcher runs. watchMu is held.
func (c *clientConn) armWatch() {
	if c.watchDone == nil && !c.watchArmed {
		c.watchArmed = true
		if c.watchTimer == nil {
			c.watchTimer = time.AfterFunc(watchDelay, c.watchTimeout)
		} else {
			c.watchTimer.Reset(watchDelay)
		}
	}
}

// watchTimeout starts the watcher if the exchange under watch is older
// than watchDelay, or waits for it to be.
func (c *clientConn) watchTimeout() {
	c.watchMu.Lock()
	if !c.watching || c.watchDone != nil {
		c.watchArmed = false
		c.watchMu.Unlock()
		return
	}
	if left := watchDelay - time.Since(c.watchStart); left > 0 {
		c.watchTimer.Reset(left)
		c.watchMu.Unlock()
		return
	}
	c.watchArmed = false
	done := make(chan struct{})
	c.watchDone = done
	// Under watchMu, so that unwatch's deadline, which ends the watcher,
	// comes after this one.
	_ = c.nc.SetReadDeadline(time.Time{})
	c.watchMu.Unlock()
	defer close(done)
	c.watchClient()
}

// watchClient reads from the client while the exchange goes on: an error
// or EOF means it left, so the request's context is done and the
// instance's connection is closed, which ends the exchange; a byte is the
// next request's and is kept.
func (c *clientConn) watchClient() {
	n, err := c.nc.Read(c.buf[c.end : c.end+1])
	c.watchRead = n
	if n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.watchMu.Lock()
		c.gone.Store(true)
		if c.goneCh != nil {
			close(c.goneCh)
		}
		up := c.watched
		c.watchMu.Unlock()
		if up != nil {
			up.Close()
		}
	}
}

// unwatch ends the watch, waiting for a watcher that runs.
func (c *clientConn) unwatch() {
	c.watchMu.Lock()
	c.watching, c.watched = false, nil
	done := c.watchDone
	c.watchDone = nil
	c.watchMu.Unlock()
	if done != nil {
		_ = c.nc.SetReadDeadline(longAgo)
		<-done
		_ = c.nc.SetReadDeadline(time.Time{})
		c.end += c.watchRead
		c.watchRead = 0
	}
}

var longAgo = time.Unix(1, 0)

const (
	readBufferSize     = 8 << 10
	upstreamBufferSize = 16 << 10
)

var (
	readBuffers     = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}
	upstreamBuffers = sync.Pool{New: func() any { b := make([]byte, upstreamBufferSize); return &b }}
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.ln = ln
	s.handoff = newConnQueue(ln.Addr())
	s.conns = map[*clientConn]struct{}{}
	s.mu.Unlock()
	fallbackDone := make(chan struct{})
	go func() {
		_ = s.Fallback.Serve(s.handoff)
		close(fallbackDone)
	}()
	defer func() { s.handoff.Close(); <-fallbackDone }()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of file descriptors, as net/http: back off, retry.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := &clientConn{nc: nc, remoteAddr: nc.RemoteAddr().String()}
		c.wr = newWaitReader(nc, &c.idle)
		c.waitFirst = c.wr != nil
		c.remoteIP = remoteIP(c.remoteAddr)
		if !s.track(c) {
			nc.Close()
			return ErrServerClosed
		}
		go s.serveConn(c)
	}
}

func (s *Server) track(c *clientConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.active.Add(1)
	return true
}

func (s *Server) untrack(c *clientConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Done()
}

// Shutdown stops accepting, closes idle connections, waits for requests in
// flight on both paths, as http.Server.Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return <-fallback
}

// closeIdle closes the idle connections and reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return s.Fallback.Close()
}

// serveConn runs the fast path on one connection until it closes or is
// handed to the fallback.
func (s *Server) serveConn(c *clientConn) {
	defer s.untrack(c)
	c.buf = *readBuffers.Get().(*[]byte)
	ex := new(exchange) // the connection's, reused by each request
	handedOff := false
	defer func() {
		if !handedOff {
			if c.pending != nil {
				_ = c.send(c.pending)
			}
			c.nc.Close()
		}
		c.watchMu.Lock()
		if c.watchTimer != nil {
			c.watchTimer.Stop()
		}
		c.watchMu.Unlock()
		readBuffers.Put(&c.buf)
		ex.close()
	}()
	srv := s.Fallback
	first := true
	for {
		err := c.readHead(srv, first)
		first = false
		h := s.Handler()
		rt, path, err := h.pathFor(c, err)
		switch path {
		case pathNetHTTP:
			handedOff = s.handOff(c)
			return
		case pathNone:
			s.headFailed(c, err)
			return
		}
		if !h.serveFast(ex, c, rt) || c.req.Close || s.shutdown.Load() {
			return
		}
	}
}

// servePath says which of the proxy's two paths serves a request.
type servePath int

const (
	pathNone    servePath = iota // neither: the head was malformed, or the client left
	pathFast                     // the fast path: Server's own HTTP/1.1 exchange
	pathNetHTTP                  // the net/http path: Handler.ServeHTTP
)

func (p servePath) String() string {
	return [...]string{"none", "fast", "net/http"}[p]
}

// pathFor is the one place that decides between the paths, for the
// request whose head readHead just read on a fast-path connection (headErr
// is readHead's error). The fast path serves a request, with its route,
// when all of these hold:
//
//   - h1.ParseRequest took the head: HTTP/1.1, origin-form target, one
//     Host, a Content-Length body or none, no Upgrade, Expect, TE, Trailer
//     or Connection naming other fields, no obsolete forms (anything else
//     is h1.ErrUnsupported), and the head fits the 8 KiB read buffer;
//   - the route its path matches only proxies to a pool with what the
//     fast path implements (fastEligible, settled per route by New: no
//     files, cache, compression, gateway, sticky cookie, H2C, or cookie:
//     and query: hash keys).
//
// Any other request goes to net/http (pathNetHTTP): the connection is
// handed off with the bytes read so far and stays on net/http for the
// rest of its life, even if its next requests would suit the fast path, as
// net/http's server owns it from then on. A malformed head gets its 4xx
// and a closed or timed-out connection nothing (pathNone; see headFailed).
// A fast-path head's path is normalized first (see normalize): the route
// is the normalized path's, and a path refused there gets its 400
// (pathNone, with the returned error).
func (h *Handler) pathFor(c *clientConn, headErr error) (*route, servePath, error) {
	switch {
	case errors.Is(headErr, h1.ErrUnsupported), errors.Is(headErr, errHeadTooLarge):
		return nil, pathNetHTTP, headErr
	case headErr != nil:
		return nil, pathNone, headErr
	}
	if err := c.normalize(h.keepSlashes); err != nil {
		return nil, pathNone, err
	}
	if rt := h.fastRoute(c.target); rt != nil {
		return rt, pathFast, nil
	}
	return nil, pathNetHTTP, nil
}

var errHeadTooLarge = errors.New("proxy: request head larger than the fast path's buffer")

// readHead reads until c.buf holds a whole request head and parses it.
// Waiting for the first byte is bounded by the server's IdleTimeout (its
// ReadHeaderTimeout for a new connection), the rest of the head by
// ReadHeaderTimeout.
func (c *clientConn) readHead(srv *http.Server, first bool) error {
	if c.start == c.end {
		c.start, c.end = 0, 0
	}
	wait := srv.IdleTimeout
	if first || wait <= 0 {
		wait = srv.ReadHeaderTimeout
	}
	now, deadline := time.Now(), time.Time{}
	if wait > 0 {
		deadline = now.Add(wait)
	}
	headStarted := c.end > c.start // before flushAndWait reads the next head's first bytes
	if c.pending != nil {
		if err := c.flushAndWait(now, deadline); err != nil {
			return err
		}
	} else {
		_ = c.nc.SetReadDeadline(deadline)
	}
	for {
		if c.end > c.start {
			err := h1.ParseRequest(c.buf[c.start:c.end], &c.req)
			if err != h1.ErrIncomplete {
				return err
			}
			if !headStarted && srv.ReadHeaderTimeout > 0 {
				_ = c.nc.SetReadDeadline(time.Now().Add(srv.ReadHeaderTimeout))
			}
			headStarted = true
		}
		if c.end == len(c.buf) {
			if c.start == 0 {
				return errHeadTooLarge
			}
			c.end = copy(c.buf, c.buf[c.start:c.end])
			c.start = 0
		}
		c.idle.Store(c.end == c.start)
		n, err := c.nc.Read(c.buf[c.end:])
		c.idle.Store(false)
		c.end += n
		if err != nil && (n == 0 || !errors.Is(err, io.EOF)) {
			return err
		}
	}
}

// probeDelay bounds how long flushAndWait trusts that nothing came in
// before it started waiting.
const probeDelay = 10 * time.Millisecond

// flushAndWait sends the pending answer, sets the read deadline and waits
// for the next request with sendThenRead, saving the read that fails with
// EAGAIN nearly always (the client has not had the answer yet). Bytes that
// came in before the wait began, from a client that pipelines, would not
// wake it: the wait is first bounded by probeDelay, after which a read
// finds them, and the connection goes back to plain reads for good.
func (c *clientConn) flushAndWait(now, deadline time.Time) error {
	out := c.pending
	c.pending = nil
	if !c.waitFirst || c.end > c.start {
		_ = c.nc.SetReadDeadline(deadline)
		_, err := c.nc.Write(out)
		return err
	}
	wait := now.Add(probeDelay)
	probing := deadline.IsZero() || wait.Before(deadline)
	if !probing {
		wait = deadline
	}
	_ = c.nc.SetReadDeadline(wait)
	n, werr, err := c.wr.sendThenRead(out, c.buf[c.end:])
	if werr != nil && errors.As(werr, new(errNotSent)) && errors.Is(werr, os.ErrDeadlineExceeded) {
		// Held up past the deadline before the wait began: send as usual,
		// then read below.
		if _, werr = c.nc.Write(out); werr == nil {
			c.idle.Store(true)
		}
		probing, err = true, os.ErrDeadlineExceeded
	}
	if werr != nil {
		return werr
	}
	if probing && errors.Is(err, os.ErrDeadlineExceeded) {
		_ = c.nc.SetReadDeadline(deadline)
		var waited bool
		n, waited, err = c.wr.readOrWait(c.buf[c.end:])
		if n > 0 && !waited {
			c.waitFirst = false // it was there before the wait: a pipelining client
		}
	}
	c.idle.Store(false)
	c.end += n
	return err
}

// headFailed ends a connection whose next head could not be read and that
// pathFor did not hand off: a malformed head gets its 4xx, a closed or
// timed-out connection nothing.
func (s *Server) headFailed(c *clientConn, err error) {
	var herr *h1.Error
	if errors.As(err, &herr) {
		c.writeError(herr.Status, errorJSON(herr.Status, "", herr.Reason, ""), "", "", true)
	}
}

// handOff gives the connection and the bytes read from it to the fallback.
func (s *Server) handOff(c *clientConn) bool {
	_ = c.nc.SetReadDeadline(time.Time{})
	pending := bytes.Clone(c.buf[c.start:c.end])
	return s.handoff.push(&prefixConn{Conn: c.nc, prefix: pending})
}

// prefixConn replays bytes already read from Conn before reading more.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connQueue is the listener the fallback serves: the connections handed
// over by the fast path.
type connQueue struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.closed:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
