package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/herdhq/herd/internal/accesslog"
	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/h1"
	"github.com/herdhq/herd/internal/limits"
)

// fastEligible reports whether a route can be served by the fast path: it
// only proxies, over HTTP/1.1, with what the fast path implements.
func fastEligible(r *Route) bool {
	switch {
	case r.Files != nil, r.Compress != nil, r.Cache != nil, r.Gateway != nil, r.Directory != nil,
		r.Transport.H2C, r.StickyCookie != "", r.Pool == nil:
		return false
	case r.HashKey == "", r.HashKey == "ip", r.HashKey == "path", strings.HasPrefix(r.HashKey, "header:"):
		return true
	}
	return false // cookie: and query: keys
}

// fastRoute returns the route for target when the fast path can serve it.
func (h *Handler) fastRoute(target []byte) *route {
	path := target
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	rt := h.match(bytesString(path))
	if rt == nil || rt.upstreams == nil {
		return nil
	}
	return rt
}

// headerEdits are a route's HeaderRules compiled for the fast path.
type headerEdits struct {
	drop     []string // names removed or replaced
	defaults []headerEdit
	set, add []headerEdit
}

type headerEdit struct{ name, value string }

func compileEdits(hr *HeaderRules) headerEdits {
	var e headerEdits
	e.drop = append(e.drop, hr.Remove...)
	for k, v := range hr.Defaults {
		e.defaults = append(e.defaults, headerEdit{http.CanonicalHeaderKey(k), v})
	}
	for k, v := range hr.Set {
		e.drop = append(e.drop, k)
		e.set = append(e.set, headerEdit{http.CanonicalHeaderKey(k), v})
	}
	for k, v := range hr.Add {
		e.add = append(e.add, headerEdit{http.CanonicalHeaderKey(k), v})
	}
	return e
}

// exchange is one request on the fast path.
type exchange struct {
	h     *Handler
	rt    *route
	c     *clientConn
	start time.Time

	id       string // X-Request-Id, the client's or a new one
	newID    bool
	buffered int  // body bytes in c.buf
	streamed bool // body bytes were read from the client beyond c.buf

	status       int
	bytesSent    int64
	logged       bool // done ran: before the last write, when that is known
	upstream     string
	upstreamTime time.Duration
}

// serveFast serves the request parsed into c.req by rt and reports whether
// the connection can carry another one.
func (h *Handler) serveFast(c *clientConn, rt *route) bool {
	ex := exchange{h: h, rt: rt, c: c, start: time.Now()}
	req := &c.req
	if id := h1.Get(req.Fields, "X-Request-Id"); len(id) > 0 {
		ex.id = bytesString(id)
	} else {
		fillRequestID(&c.newID)
		ex.id, ex.newID = bytesString(c.newID[:]), true
	}
	ex.buffered = int(min(req.ContentLength, int64(c.end-c.start-req.HeadLen)))
	keep := ex.serve()
	c.unwatch()
	if c.gone.Load() {
		ex.status, keep = StatusClientClosed, false
	}
	if !ex.logged {
		ex.done()
	}
	if keep {
		c.start += req.HeadLen + ex.buffered
	}
	return keep
}

// bodyPending: some of the request body is neither buffered nor read, so
// the connection cannot carry another request unless it is.
func (ex *exchange) bodyPending() bool {
	return int64(ex.buffered) < ex.c.req.ContentLength && !ex.streamed
}

func (ex *exchange) serve() bool {
	h, rt, c := ex.h, ex.rt, ex.c
	req := &c.req
	header := func(name string) string { return h1.Values(req.Fields, name) }
	if rl := rt.Rate; rl != nil {
		wait, ok, retry := rl.Reserve(context.Background(), h.clientKey(c.remoteIP, rl.Key, header), ex.start)
		if !ok {
			return ex.fail(rl.Status, "too many requests from this client: the limit is "+rl.Desc, limits.RetryAfterSeconds(retry))
		}
		if wait > 0 { // within the burst: delayed to the rate, as NGINX does
			time.Sleep(wait)
		}
	}
	if cl := rt.Conns; cl != nil {
		key := h.clientKey(c.remoteIP, cl.Key, header)
		if !cl.Acquire(key) {
			return ex.fail(cl.Status, fmt.Sprintf("too many requests in flight from this client: the limit is %d", cl.Max), "")
		}
		defer cl.Release(key)
	}
	if rt.MaxBody > 0 && req.ContentLength > rt.MaxBody {
		return ex.fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is %d bytes; this route takes at most %d", req.ContentLength, rt.MaxBody), "")
	}
	return ex.proxy()
}

// proxy picks instances and forwards the request until one answers or the
// retry policy gives up, as pickTransport does for the other path.
func (ex *exchange) proxy() bool {
	rt, c := ex.rt, ex.c
	req := &c.req
	retry := &rt.Retry
	idem := idempotentMethod(bytesString(req.Method)) || h1.Get(req.Fields, "Idempotency-Key") != nil
	key := ex.hashKey()
	tried := c.tried[:0]
	for attempt := 1; ; attempt++ {
		b, err := rt.Pool.Pick(context.Background(), rt.Policy, tried, key, rt.QueueTimeout)
		if err != nil {
			if len(tried) > 0 && errors.Is(err, balance.ErrNoBackend) {
				err = errNoRetryTarget
			}
			return ex.failErr(err)
		}
		ustart := time.Now()
		up, n, err := ex.try(b.Addr, idem)
		ex.upstream, ex.upstreamTime = b.Addr, time.Since(ustart)
		more := attempt < retry.Tries && (retry.Timeout <= 0 || time.Since(ex.start) < retry.Timeout) && !ex.streamed
		if err == nil {
			if more && retry.onStatus(c.res.Status) && (idem || retry.NonIdempotent) {
				// NGINX's proxy_next_upstream http_5xx: nothing reached the client yet.
				up.Close()
				b.Release()
				tried = append(tried, b)
				continue
			}
			keep := ex.respond(up, n)
			b.Release()
			return keep
		}
		b.Release()
		var cerr clientError
		if errors.As(err, &cerr) || c.gone.Load() {
			ex.status = StatusClientClosed
			return false
		}
		if isConnectError(err) || isTimeout(err) {
			b.Fail(time.Now(), rt.Pool.MaxFails, rt.Pool.FailTimeout)
		}
		if !more || !retry.retryable(idem, err) {
			return ex.failErr(err)
		}
		tried = append(tried, b)
	}
}

// hashKey is what a hashing policy hashes (see requestKey).
func (ex *exchange) hashKey() string {
	spec := ex.rt.HashKey
	switch spec {
	case "":
		return ""
	case "ip":
		return ex.c.remoteIP
	case "path":
		path := ex.c.req.Target
		if i := bytes.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		return bytesString(path)
	}
	return bytesString(h1.Get(ex.c.req.Fields, strings.TrimPrefix(spec, "header:")))
}

// clientError is a failure reading the request body from the client.
type clientError struct{ error }

// sendError is a failure writing the request head to an instance.
type sendError struct{ error }

func (e sendError) Unwrap() error { return e.error }

// try sends the request to the instance at addr, on an idle connection if
// there is one, and reads the response head into c.ubuf, returning the
// connection and how many bytes of c.ubuf it filled. An idle connection
// that the instance closed meanwhile (nothing came back) is replaced by a
// new one once, if the request can be sent again: its body is all in
// c.buf, and it is idempotent or was not written at all.
func (ex *exchange) try(addr string, idem bool) (*upstreamConn, int, error) {
	pool := ex.rt.upstreams
	if up := pool.get(addr); up != nil {
		n, err := ex.roundTrip(up)
		if err == nil {
			return up, n, nil
		}
		up.Close()
		var cerr clientError
		var serr sendError
		// A client that left closed up itself (see watchClient).
		if n > 0 || ex.streamed || isTimeout(err) || ex.c.gone.Load() || errors.As(err, &cerr) || (!idem && !errors.As(err, &serr)) {
			return nil, n, err
		}
	}
	up, err := pool.dial(context.Background(), addr)
	if err != nil {
		return nil, 0, err
	}
	n, err := ex.roundTrip(up)
	if err != nil {
		up.Close()
		return nil, n, err
	}
	return up, n, nil
}

// sendThenReadIdle is how long a connection to an instance may have been
// idle for roundTrip to send on it with sendThenRead.
const sendThenReadIdle = 250 * time.Millisecond

// roundTrip writes the request to up and reads the response head, passing
// 1xx informational heads on to the client.
func (ex *exchange) roundTrip(up *upstreamConn) (int, error) {
	c, o := ex.c, &ex.rt.upstreams.opts
	req := &c.req
	up.uses++
	out := ex.requestHead(c.out[:0], o.KeepaliveRequests > 0 && up.uses >= o.KeepaliveRequests)
	body := c.buf[c.start+req.HeadLen : c.start+req.HeadLen+ex.buffered]
	out = append(out, body...)
	c.out = out
	now := time.Now()
	if o.SendTimeout > 0 {
		up.extendWriteDeadline(now, o.SendTimeout)
	}
	if c.ubuf == nil {
		c.ubuf = *upstreamBuffers.Get().(*[]byte)
	}
	n := 0
	// sendThenRead only on a connection that cannot hold news from the
	// instance older than the wait: new, or idle for a moment only. An
	// instance that half-closes idle connections (a FIN, no RST) would
	// otherwise leave the wait hanging, where a read finds the EOF at once.
	fresh := up.idleSince.IsZero() || now.Sub(up.idleSince) < sendThenReadIdle
	if rest := req.ContentLength - int64(ex.buffered); rest > 0 || up.wr == nil || !fresh {
		if _, err := up.Write(out); err != nil {
			return 0, sendError{err}
		}
		if rest > 0 {
			if err := ex.streamBody(up, rest); err != nil {
				return 0, err
			}
		}
		c.watch(up, ex.start)
	} else {
		c.watch(up, ex.start)
		if o.ReadTimeout > 0 {
			up.extendReadDeadline(now, o.ReadTimeout)
		}
		m, werr, rerr := up.wr.sendThenRead(out, c.ubuf)
		if werr != nil {
			return 0, sendError{werr}
		}
		if n = m; rerr != nil {
			if errors.Is(rerr, io.EOF) {
				rerr = io.ErrUnexpectedEOF
			}
			return 0, rerr
		}
	}
	for {
		if n > 0 {
			perr := h1.ParseResponse(c.ubuf[:n], &c.res)
			switch {
			case perr == nil && c.res.Status >= 200:
				return n, nil
			case perr == nil && c.res.Status == http.StatusSwitchingProtocols:
				return n, errors.New("the instance switched protocols unasked")
			case perr == nil: // 100 Continue, 103 Early Hints: passed on
				if _, werr := c.nc.Write(c.ubuf[:c.res.HeadLen]); werr != nil {
					return n, clientError{werr}
				}
				n = copy(c.ubuf, c.ubuf[c.res.HeadLen:n])
				continue
			case perr != h1.ErrIncomplete:
				return n, perr
			case n == len(c.ubuf):
				return n, errors.New("the instance's response head is larger than 16 KiB")
			}
		}
		if o.ReadTimeout > 0 {
			up.extendReadDeadline(time.Now(), o.ReadTimeout)
		}
		m, err := up.Read(c.ubuf[n:])
		n += m
		if err != nil && m == 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
}

// streamBody copies the rest of the request body from the client to up.
func (ex *exchange) streamBody(up *upstreamConn, rest int64) error {
	c, o := ex.c, &ex.rt.upstreams.opts
	ex.streamed = true
	_ = c.nc.SetReadDeadline(time.Time{}) // bodies have no deadline, as in net/http
	if c.ubuf == nil {
		c.ubuf = *upstreamBuffers.Get().(*[]byte)
	}
	for rest > 0 {
		n, err := c.nc.Read(c.ubuf[:min(int64(len(c.ubuf)), rest)])
		if n == 0 && err != nil {
			return clientError{err}
		}
		rest -= int64(n)
		if o.SendTimeout > 0 {
			up.extendWriteDeadline(time.Now(), o.SendTimeout)
		}
		if _, err := up.Write(c.ubuf[:n]); err != nil {
			return err
		}
	}
	return nil
}

// requestHead appends the head sent to the instance: the client's, less
// hop-by-hop fields, with X-Forwarded-* and X-Real-IP set as rewrite does.
func (ex *exchange) requestHead(out []byte, last bool) []byte {
	c, h := ex.c, ex.h
	req := &c.req
	out = append(out, req.Method...)
	out = append(out, ' ')
	out = append(out, req.Target...)
	out = append(out, " HTTP/1.1\r\n"...)
	trusted := false
	if len(h.trusted) > 0 {
		if peer, err := netip.ParseAddr(c.remoteIP); err == nil && h.isTrusted(peer) {
			trusted = true
		}
	}
	for _, f := range req.Fields {
		switch {
		case h1.EqualFold(f.Name, "connection"), h1.EqualFold(f.Name, "keep-alive"),
			h1.EqualFold(f.Name, "x-forwarded-for"), h1.EqualFold(f.Name, "x-forwarded-proto"),
			h1.EqualFold(f.Name, "x-forwarded-host"), h1.EqualFold(f.Name, "x-real-ip"):
			continue
		case !trusted && h1.EqualFold(f.Name, "forwarded"):
			continue
		}
		out = appendField(out, f.Name, f.Value)
	}
	if trusted {
		xff := c.remoteIP
		if prior := h1.Values(req.Fields, "X-Forwarded-For"); prior != "" {
			xff = prior + ", " + c.remoteIP
		}
		out = appendField(out, []byte("X-Forwarded-For"), []byte(xff))
		out = appendField(out, []byte("X-Forwarded-Proto"), orDefault(h1.Get(req.Fields, "X-Forwarded-Proto"), "http"))
		out = appendField(out, []byte("X-Forwarded-Host"), orDefault(h1.Get(req.Fields, "X-Forwarded-Host"), string(req.Host)))
		out = appendField(out, []byte("X-Real-Ip"), orDefault(h1.Get(req.Fields, "X-Real-IP"), h.realIP(xff)))
	} else {
		out = append(out, "X-Forwarded-For: "...)
		out = append(out, c.remoteIP...)
		out = append(out, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...)
		out = append(out, req.Host...)
		out = append(out, "\r\nX-Real-Ip: "...)
		out = append(out, c.remoteIP...)
		out = append(out, "\r\n"...)
	}
	if ex.newID {
		out = append(out, "X-Request-Id: "...)
		out = append(out, ex.id...)
		out = append(out, "\r\n"...)
	}
	if last { // keepalive_requests reached
		out = append(out, "Connection: close\r\n"...)
	}
	return append(out, "\r\n"...)
}

func appendField(out, name, value []byte) []byte {
	out = append(out, name...)
	out = append(out, ": "...)
	out = append(out, value...)
	return append(out, "\r\n"...)
}

func orDefault(v []byte, def string) []byte {
	if len(v) > 0 {
		return v
	}
	return []byte(def)
}

// respond sends the instance's response (its head in c.res, n bytes of
// c.ubuf read) to the client, returns up to the pool when it can carry
// another request, and reports whether the client connection can.
func (ex *exchange) respond(up *upstreamConn, n int) bool {
	c, rt := ex.c, ex.rt
	req, res := &c.req, &c.res
	ex.status = res.Status
	noBody := res.Status == http.StatusNoContent || res.Status == http.StatusNotModified || bytesString(req.Method) == http.MethodHead
	untilClose := !noBody && !res.Chunked && res.ContentLength < 0
	closeClient := req.Close || untilClose
	reuse := !res.Close && !untilClose && !(rt.upstreams.opts.KeepaliveRequests > 0 && up.uses >= rt.upstreams.opts.KeepaliveRequests)

	out := ex.responseHead(c.out[:0], closeClient)
	rest := c.ubuf[res.HeadLen:n]
	var chunks h1.Chunked
	var remaining int64 // body bytes still to read after rest, for a known length
	switch {
	case noBody:
		reuse = reuse && len(rest) == 0
		rest = nil
	case res.Chunked:
		m, done, err := chunks.Scan(rest)
		if err != nil {
			up.Close()
			return ex.failErr(err)
		}
		reuse = reuse && (!done || m == len(rest))
		rest = rest[:m]
		if done {
			noBody = true // nothing more to read
		}
	case res.ContentLength >= 0:
		if int64(len(rest)) > res.ContentLength {
			rest, reuse = rest[:res.ContentLength], false
		}
		remaining = res.ContentLength - int64(len(rest))
	}
	out = append(out, rest...)
	c.out = out
	ex.bytesSent = int64(len(rest))
	complete := noBody || (!res.Chunked && !untilClose && remaining == 0)
	if complete {
		ex.done() // before the client can see the answer, as on the other path
		if !closeClient && c.wr != nil {
			// The answer goes out as readHead starts waiting for the next
			// request (see flushAndWait).
			ex.release(up, reuse)
			c.pending = true
			return true
		}
	}
	if _, err := c.nc.Write(out); err != nil {
		up.Close()
		return false
	}
	if !complete {
		var err error
		complete, err = ex.copyBody(up, &chunks, remaining, untilClose, &reuse)
		if err != nil {
			up.Close()
			return false
		}
	}
	ex.release(up, reuse && complete)
	return !closeClient
}

// release is done with up: back to the pool if reuse, else closed. The
// watch ends first, so that a watcher cannot close a connection another
// request has taken from the pool.
func (ex *exchange) release(up *upstreamConn, reuse bool) {
	ex.c.unwatch()
	if reuse {
		ex.rt.upstreams.put(up)
	} else {
		up.Close()
	}
}

// copyBody copies the rest of a response body from up to the client.
func (ex *exchange) copyBody(up *upstreamConn, chunks *h1.Chunked, remaining int64, untilClose bool, reuse *bool) (bool, error) {
	c, o := ex.c, &ex.rt.upstreams.opts
	chunked := ex.c.res.Chunked
	for {
		if o.ReadTimeout > 0 {
			up.extendReadDeadline(time.Now(), o.ReadTimeout)
		}
		p := c.ubuf
		if !chunked && !untilClose {
			p = p[:min(int64(len(p)), remaining)]
		}
		n, rerr := up.Read(p)
		p = p[:n]
		done := false
		switch {
		case chunked:
			m, end, err := chunks.Scan(p)
			if err != nil {
				return false, err
			}
			if end && m != n {
				*reuse = false
			}
			p, done = p[:m], end
		case !untilClose:
			remaining -= int64(n)
			done = remaining == 0
		}
		if len(p) > 0 {
			if _, err := c.nc.Write(p); err != nil {
				return false, clientError{err}
			}
			ex.bytesSent += int64(len(p))
		}
		if done {
			return true, nil
		}
		if rerr != nil {
			if untilClose && errors.Is(rerr, io.EOF) {
				return true, nil
			}
			return false, rerr
		}
	}
}

// responseHead appends the head sent to the client: the instance's, less
// hop-by-hop fields, edited by the route's header rules.
func (ex *exchange) responseHead(out []byte, closeClient bool) []byte {
	res, edits := &ex.c.res, &ex.rt.edits
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(res.Status), 10)
	out = append(out, ' ')
	if len(res.Reason) > 0 {
		out = append(out, res.Reason...)
	} else {
		out = append(out, http.StatusText(res.Status)...)
	}
	out = append(out, "\r\n"...)
	var hasID, hasDate bool
	var present uint64 // which defaults the instance set
fields:
	for _, f := range res.Fields {
		switch {
		case h1.EqualFold(f.Name, "connection"), h1.EqualFold(f.Name, "keep-alive"),
			h1.EqualFold(f.Name, "proxy-connection"), h1.EqualFold(f.Name, "upgrade"),
			h1.EqualFold(f.Name, "transfer-encoding"):
			continue
		case res.Chunked && h1.EqualFold(f.Name, "content-length"):
			continue
		case h1.EqualFold(f.Name, "x-request-id"):
			hasID = true
		case h1.EqualFold(f.Name, "date"):
			hasDate = true
		}
		name := bytesString(f.Name)
		for _, d := range edits.drop {
			if strings.EqualFold(name, d) {
				continue fields
			}
		}
		for i, d := range edits.defaults {
			if strings.EqualFold(name, d.name) {
				present |= 1 << (i & 63)
			}
		}
		out = appendField(out, f.Name, f.Value)
	}
	for i, d := range edits.defaults {
		if present&(1<<(i&63)) == 0 {
			out = appendEdit(out, d)
		}
	}
	for _, d := range edits.set {
		out = appendEdit(out, d)
	}
	for _, d := range edits.add {
		out = appendEdit(out, d)
	}
	if res.Chunked {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	if !hasID {
		out = append(out, "X-Request-Id: "...)
		out = append(out, ex.id...)
		out = append(out, "\r\n"...)
	}
	if !hasDate {
		out = appendDate(out)
	}
	if closeClient {
		out = append(out, "Connection: close\r\n"...)
	}
	return append(out, "\r\n"...)
}

func appendEdit(out []byte, e headerEdit) []byte {
	out = append(out, e.name...)
	out = append(out, ": "...)
	out = append(out, e.value...)
	return append(out, "\r\n"...)
}

// failErr answers a failed attempt as errorHandler does on the other path.
func (ex *exchange) failErr(err error) bool {
	status, reason := failure(&ex.rt.Route, err)
	ex.h.log.Warn("proxy error", "status", status, "app", ex.rt.App, "path", string(ex.c.req.Target), "request_id", strings.Clone(ex.id), "err", err)
	return ex.fail(status, reason, "")
}

// fail answers an error herd found itself, as JSON, and reports whether the
// connection can go on.
func (ex *exchange) fail(status int, reason, retryAfter string) bool {
	ex.status = status
	closeClient := ex.c.req.Close || ex.bodyPending()
	body := errorJSON(status, ex.rt.App, reason, ex.id)
	ex.bytesSent = int64(len(body))
	ex.done() // before the client can see the answer, as on the other path
	return ex.c.writeError(status, body, ex.id, retryAfter, closeClient) && !closeClient
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

// done records the request in metrics and the access log, as Handler.done.
func (ex *exchange) done() {
	h, rt, req := ex.h, ex.rt, &ex.c.req
	ex.logged = true
	elapsed := time.Since(ex.start)
	if h.observe != nil {
		h.observe(rt.Path, rt.App, ex.status, elapsed)
	}
	if h.accessLog != nil {
		// The strings point into the connection's buffer, which stays as it
		// is until the next request; Log copies what it keeps.
		h.accessLog.Log(&accesslog.Entry{
			Time: ex.start, RemoteAddr: ex.c.remoteIP, Method: bytesString(req.Method), URI: bytesString(req.Target), Proto: "HTTP/1.1",
			Status: ex.status, BytesSent: ex.bytesSent,
			Referer: bytesString(h1.Get(req.Fields, "Referer")), UserAgent: bytesString(h1.Get(req.Fields, "User-Agent")),
			Duration: elapsed, Route: rt.Path, App: rt.App, Upstream: ex.upstream, UpstreamTime: ex.upstreamTime,
			RequestID: ex.id,
		})
	}
}

// bytesString views b as a string without copying; b must not change while
// the string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// appendDate appends a Date field, formatted once a second.
func appendDate(out []byte) []byte {
	now := time.Now().Unix()
	d := cachedDate.Load()
	if d == nil || d.unix != now {
		d = &dateField{unix: now, field: time.Unix(now, 0).UTC().AppendFormat([]byte("Date: "), http.TimeFormat)}
		d.field = append(d.field, "\r\n"...)
		cachedDate.Store(d)
	}
	return append(out, d.field...)
}

type dateField struct {
	unix  int64
	field []byte
}

var cachedDate atomic.Pointer[dateField]
