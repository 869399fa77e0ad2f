package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herdhq/herd/internal/balance"
)

// TransportOptions tune the connections to one pool, on both paths. They
// are taken as given: herd's config fills in its defaults
// (internal/config, ProxyOptions), and a zero field means what its comment
// says, not a default.
type TransportOptions struct {
	// ConnectTimeout bounds a connect to an instance; zero leaves it to
	// the operating system.
	ConnectTimeout time.Duration
	// ReadTimeout bounds the wait between two reads of a response
	// (NGINX's proxy_read_timeout); zero: no bound.
	ReadTimeout time.Duration
	// SendTimeout bounds the wait between two writes of a request
	// (proxy_send_timeout); zero: no bound.
	SendTimeout time.Duration
	// Keepalive is how many idle connections are kept per instance, each
	// for at most KeepaliveTimeout, which should stay below the
	// instance's own keep-alive (Node's is 5 s). When either is zero,
	// no connection is kept idle: each request opens a new one.
	Keepalive        int
	KeepaliveTimeout time.Duration
	// H2C speaks HTTP/2 without TLS to the instances (net/http path only).
	H2C bool
	// KeepaliveRequests closes a connection after this many requests, as
	// NGINX's keepalive_requests: the last one goes with Connection: close.
	// Zero: no limit. Not with H2C, whose streams share one connection.
	KeepaliveRequests int
}

// dialer is the dialer to the instances, on both paths.
func (o *TransportOptions) dialer() *net.Dialer {
	return &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
}

// keepsIdle reports whether idle connections are kept at all.
func (o *TransportOptions) keepsIdle() bool { return o.Keepalive > 0 && o.KeepaliveTimeout > 0 }

// newTransport returns the net/http path's connection pool to one pool's
// instances.
func newTransport(o TransportOptions) *http.Transport {
	dialer := o.dialer()
	dial := dialer.DialContext
	if o.ReadTimeout > 0 || o.SendTimeout > 0 || o.KeepaliveRequests > 0 {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if o.ReadTimeout > 0 || o.SendTimeout > 0 {
				c = &deadlineConn{Conn: c, read: o.ReadTimeout, send: o.SendTimeout}
			}
			if o.KeepaliveRequests > 0 {
				c = &countedConn{Conn: c}
			}
			return c, nil
		}
	}
	idlePerHost := o.Keepalive
	if !o.keepsIdle() {
		idlePerHost = -1 // none: zero would mean net/http's 2
	}
	t := &http.Transport{
		Proxy:       nil, // never through an environment proxy: instances are local
		DialContext: dial,
		// Sized for concurrency, not Go's default of 2 per host, which
		// exhausts ephemeral ports under load.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: idlePerHost,
		// Below the backend's keep-alive, so herd never reuses a connection
		// that the instance is closing.
		IdleConnTimeout:       o.KeepaliveTimeout,
		DisableCompression:    true, // pass Accept-Encoding through untouched
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       16 << 10,
	}
	if o.H2C {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true) // prior knowledge, for http:// backends
	}
	return t
}

// deadlineConn bounds each read and each write, not the whole exchange,
// as NGINX's proxy_read_timeout and proxy_send_timeout do.
type deadlineConn struct {
	net.Conn
	read, send time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if c.read > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.read))
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.send > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.send))
	}
	return c.Conn.Write(p)
}

// countedConn counts the requests sent on a connection, for
// keepalive_requests.
type countedConn struct {
	net.Conn
	uses atomic.Int64
}

// closeAfter returns req with a trace that, when req gets a connection that
// has carried limit-1 requests already, sets req.Close, so the request goes
// with Connection: close and the Transport does not reuse the connection.
// GotConn runs in RoundTrip's goroutine before the request is written, so
// setting the field there is safe.
func closeAfter(req *http.Request, limit int) *http.Request {
	var traced *http.Request
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if c, ok := info.Conn.(*countedConn); ok && c.uses.Add(1) >= int64(limit) {
			traced.Close = true
		}
	}}
	traced = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	return traced
}

// pickTransport chooses an instance for each request and counts it in flight
// until the response body is closed, so a drain waits for streams too.
type pickTransport struct {
	route *route
	base  http.RoundTripper
}

// RoundTrip implements http.RoundTripper: the pipeline's pick and retry
// (see forward) over base. The request is ReverseProxy's own outbound
// copy, so setting its URL host is safe.
func (t *pickTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := t.route
	ctx := req.Context()
	s := &stdSender{base: t.base, req: req}
	if req.Body != nil && req.Body != http.NoBody {
		s.body = &trackedBody{ReadCloser: req.Body}
		req.Body = s.body
	}
	var stuck *balance.Backend // the backend the sticky cookie names, if usable
	if name := rt.StickyCookie; name != "" {
		if c, err := req.Cookie(name); err == nil {
			stuck = rt.Pool.ByToken(c.Value)
		}
	}
	if limit := rt.Transport.KeepaliveRequests; limit > 0 {
		s.req = closeAfter(req, limit)
	}
	s.rec, _ = ctx.Value(recorderKey{}).(*recorder)
	b, err := rt.forward(ctx, s, stuck, requestKey(req, rt.HashKey), idempotent(req.Method, stdHeaders(req.Header)), nil, time.Now())
	if err != nil {
		if s.body != nil {
			if bodyErr := s.body.failed.Load(); bodyErr != nil {
				return nil, &clientBodyError{*bodyErr}
			}
		}
		return nil, err
	}
	res := s.res
	if rt.StickyCookie != "" && b != stuck {
		res.Header.Add("Set-Cookie", stickyCookie(&rt.Route, b))
	}
	res.Body = releaseOnClose(res, b)
	return res, nil
}

// stdSender is the net/http path's sender: one RoundTrip of base per
// attempt.
type stdSender struct {
	base http.RoundTripper
	req  *http.Request
	body *trackedBody // nil without a body
	rec  *recorder    // notes the instance and its time, for the access log
	res  *http.Response
}

func (s *stdSender) send(b *balance.Backend) (int, error) {
	s.req.Close = false // a previous attempt's connection may have been its last
	s.req.URL.Host = b.Addr
	start := time.Now()
	res, err := s.base.RoundTrip(s.req)
	if s.rec != nil {
		s.rec.upstream, s.rec.upstreamTime = b.Addr, time.Since(start)
	}
	if err != nil {
		return 0, err
	}
	s.res = res
	return res.StatusCode, nil
}

func (s *stdSender) discard() {
	_, _ = io.CopyN(io.Discard, s.res.Body, 64<<10)
	s.res.Body.Close()
}

func (s *stdSender) resendable() bool { return s.body == nil || !s.body.read.Load() }

// RetryPolicy says when a request is tried on another instance (NGINX's
// proxy_next_upstream). It is taken as given: herd's config defaults to 2
// tries on error and timeout; the zero value tries once.
type RetryPolicy struct {
	Tries         int           // instances to try in all; 0 or 1: one, no retry
	Timeout       time.Duration // bound on the time spent trying; 0: none
	OnError       bool          // a reset or closed connection before any response byte
	OnTimeout     bool          // a connect or read timeout
	OnStatus      []int         // 502, 503, 504, 429
	NonIdempotent bool          // retry POST and PATCH too (a refused connection always is)
}

func (r RetryPolicy) onStatus(code int) bool { return slices.Contains(r.OnStatus, code) }

// retryable: nothing reached the client yet (RoundTrip failed), and either
// the connection was refused (the instance never saw the request, so any
// method is safe, as in NGINX), or the failure is one the policy retries
// and the request is idempotent (by method or an Idempotency-Key), or the
// policy allows non-idempotent retries.
func (r RetryPolicy) retryable(idempotent bool, err error) bool {
	if isConnectError(err) {
		return true
	}
	if !idempotent && !r.NonIdempotent {
		return false
	}
	if isTimeout(err) {
		return r.OnTimeout
	}
	return r.OnError && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
}

// idempotent reports whether a request may be sent twice: by its method,
// or because it carries an Idempotency-Key.
func idempotent(method string, in headerSource) bool {
	return idempotentMethod(method) || in.Get("Idempotency-Key") != ""
}

func idempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

var errNoRetryTarget = errors.New("proxy: instance failed and no other instance was ready")

func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// trackedBody lets the transport read the request body while remembering
// whether it did; Close is left to the server, so a retry can still send a
// body that was never read.
type trackedBody struct {
	io.ReadCloser
	read   atomic.Bool
	failed atomic.Pointer[error] // a read error other than the end: the client's
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.read.Store(true)
	}
	if err != nil && err != io.EOF {
		b.failed.CompareAndSwap(nil, &err)
	}
	return n, err
}

// clientBodyError is a failed attempt whose cause was reading the
// client's body (malformed chunks, a body over max_body, a client that
// stopped sending), not the instance.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

func (b *trackedBody) Close() error { return nil }

// releaseOnClose wraps res.Body so the backend's in-flight count drops when
// ReverseProxy is done with the response. An upgraded (101) body stays
// writable, which ReverseProxy needs for WebSocket.
func releaseOnClose(res *http.Response, b *balance.Backend) io.ReadCloser {
	if w, ok := res.Body.(io.Writer); ok && res.StatusCode == http.StatusSwitchingProtocols {
		return &releaseRWBody{releaseBody: releaseBody{ReadCloser: res.Body, backend: b}, w: w}
	}
	return &releaseBody{ReadCloser: res.Body, backend: b}
}

type releaseBody struct {
	io.ReadCloser
	backend *balance.Backend
	once    sync.Once
}

func (r *releaseBody) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.backend.Release)
	return err
}

type releaseRWBody struct {
	releaseBody
	w io.Writer
}

func (r *releaseRWBody) Write(p []byte) (int, error) { return r.w.Write(p) }

// requestKey is what a hashing policy hashes for the net/http path's
// request: hashKey's, or a cookie's or query parameter's value, which only
// this path offers (see fastEligible).
func requestKey(req *http.Request, spec string) string {
	kind, name, _ := strings.Cut(spec, ":")
	switch kind {
	case "cookie":
		if c, err := req.Cookie(name); err == nil {
			return c.Value
		}
		return ""
	case "query":
		return req.URL.Query().Get(name)
	}
	return hashKey(spec, remoteIP(req.RemoteAddr), req.URL.Path, stdHeaders(req.Header))
}

// stickyCookie pins the client to b: its value is b's token, not its address.
func stickyCookie(rt *Route, b *balance.Backend) string {
	c := &http.Cookie{Name: rt.StickyCookie, Value: b.Token(), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if rt.StickyMaxAge > 0 {
		c.MaxAge = int(rt.StickyMaxAge.Seconds())
	}
	return c.String()
}
