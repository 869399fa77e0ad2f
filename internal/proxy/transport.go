package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herdhq/herd/internal/balance"
)

// newTransport returns the connection pool to one app's instances.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:       nil, // never through an environment proxy: instances are local
		DialContext: (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// Sized for concurrency, not Go's default of 2 per host, which
		// exhausts ephemeral ports under load.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		// Below Node's 5 s keep-alive, so herd never reuses a connection
		// that the instance is closing.
		IdleConnTimeout:       4 * time.Second,
		DisableCompression:    true, // pass Accept-Encoding through untouched
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       16 << 10,
	}
}

// pickTransport chooses an instance for each request and counts it in flight
// until the response body is closed, so a drain waits for streams too.
type pickTransport struct {
	route *Route
	base  http.RoundTripper
}

// RoundTrip implements http.RoundTripper. The request is ReverseProxy's own
// outbound copy, so setting its URL host is safe.
func (t *pickTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	pool := t.route.Pool
	var body *trackedBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &trackedBody{ReadCloser: req.Body}
		req.Body = body
	}
	key := requestKey(req, t.route.HashKey)
	var tried *balance.Backend
	var stuck *balance.Backend // the backend the sticky cookie names, if usable
	if name := t.route.StickyCookie; name != "" {
		if c, err := req.Cookie(name); err == nil {
			stuck = pool.ByToken(c.Value)
		}
	}
	for {
		var b *balance.Backend
		var err error
		if stuck != nil && tried == nil {
			b = stuck
		} else {
			b, err = pool.Pick(ctx, t.route.Policy, tried, key, t.route.QueueTimeout)
		}
		if err != nil {
			if tried != nil && errors.Is(err, balance.ErrNoBackend) {
				return nil, errNoRetryTarget
			}
			return nil, err
		}
		req.URL.Host = b.Addr // b comes acquired
		start := time.Now()
		res, err := t.base.RoundTrip(req)
		if rec, ok := ctx.Value(recorderKey{}).(*recorder); ok {
			rec.upstream, rec.upstreamTime = b.Addr, time.Since(start)
		}
		if err == nil {
			if t.route.StickyCookie != "" && b != stuck {
				res.Header.Add("Set-Cookie", stickyCookie(t.route, b))
			}
			res.Body = releaseOnClose(res, b)
			return res, nil
		}
		b.Release()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if isConnectError(err) || isTimeout(err) {
			b.Fail(time.Now(), pool.MaxFails, pool.FailTimeout)
		}
		if tried != nil || !retryable(req, body, err) {
			return nil, err
		}
		tried = b
	}
}

var errNoRetryTarget = errors.New("proxy: instance failed and no other instance was ready")

// retryable: nothing reached the client yet (RoundTrip failed) and no body
// byte was consumed, and either the connection was refused (the instance
// never saw the request, so any method is safe, as NGINX does), or the
// method is idempotent (or the request carries an Idempotency-Key) and the
// connection was reset before any response byte.
func retryable(req *http.Request, body *trackedBody, err error) bool {
	if body != nil && body.read.Load() {
		return false
	}
	if isConnectError(err) {
		return true
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
	default:
		if req.Header.Get("Idempotency-Key") == "" {
			return false
		}
	}
	if isTimeout(err) {
		return false
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

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
	read atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.read.Store(true)
	}
	return n, err
}

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

// requestKey extracts what a hashing policy hashes from the request.
func requestKey(req *http.Request, spec string) string {
	switch spec {
	case "":
		return ""
	case "ip":
		return remoteIP(req.RemoteAddr)
	case "path":
		return req.URL.Path
	}
	kind, name, _ := strings.Cut(spec, ":")
	switch kind {
	case "header":
		return req.Header.Get(name)
	case "cookie":
		if c, err := req.Cookie(name); err == nil {
			return c.Value
		}
	case "query":
		return req.URL.Query().Get(name)
	}
	return ""
}

// stickyCookie pins the client to b: its value is b's token, not its address.
func stickyCookie(rt *Route, b *balance.Backend) string {
	c := &http.Cookie{Name: rt.StickyCookie, Value: b.Token(), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if rt.StickyMaxAge > 0 {
		c.MaxAge = int(rt.StickyMaxAge.Seconds())
	}
	return c.String()
}
