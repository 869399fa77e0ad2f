package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/herdhq/herd/internal/accesslog"
	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/h1"
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
	rt := h.match(bytesString(targetPath(target)))
	if rt == nil || rt.upstreams == nil {
		return nil
	}
	return rt
}

// targetPath is the path of a request target: what precedes its query.
func targetPath(target []byte) []byte {
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}

// exchange is one request on the fast path, and the buffers it keeps
// between the requests of one connection. It reads the request the
// connection parsed (c.req, c.buf) and moves bytes through the
// connection's methods; the connection never touches its fields.
type exchange struct {
	h     *Handler
	rt    *route
	c     *clientConn
	start time.Time

	id       string // X-Request-Id, the client's or a new one
	newID    bool
	newIDBuf [32]byte // the request id herd made, if it did
	buffered int      // body bytes in the connection's buffer
	streamed bool     // body bytes were read from the client beyond those

	res   h1.Response
	out   []byte // the head going out next, to the instance or the client
	ubuf  []byte // reads from instances
	tried [4]*balance.Backend

	// For send: the request's idempotency, and what the attempt got.
	idem bool
	up   *upstreamConn
	n    int // bytes of ubuf the attempt filled

	status       int
	bytesSent    int64
	logged       bool // done ran: before the last write, when that is known
	upstream     string
	upstreamTime time.Duration
}

// close gives the exchange's buffers back when its connection ends.
func (ex *exchange) close() {
	if b := ex.ubuf; b != nil {
		ex.ubuf = nil // before Put: the pool keeps a pointer to b, not to the field
		upstreamBuffers.Put(&b)
	}
}

// serveFast serves the request the connection parsed into c.req by rt,
// with ex (the connection's), and reports whether the connection can carry
// another one.
func (h *Handler) serveFast(ex *exchange, c *clientConn, rt *route) bool {
	// A new exchange, keeping the buffers: out, ubuf, and the fields of
	// res, which ParseResponse reuses.
	*ex = exchange{h: h, rt: rt, c: c, start: time.Now(), out: ex.out, ubuf: ex.ubuf, res: h1.Response{Fields: ex.res.Fields[:0]}}
	req := &c.req
	if h.onServe != nil {
		h.onServe(pathFast, bytesString(req.Target))
	}
	if id := h1.Get(req.Fields, "X-Request-Id"); len(id) > 0 {
		ex.id = bytesString(id)
	} else {
		fillRequestID(&ex.newIDBuf)
		ex.id, ex.newID = bytesString(ex.newIDBuf[:]), true
	}
	ex.buffered = c.bufferedBody()
	keep := ex.serve()
	c.unwatch()
	if c.gone.Load() {
		ex.status, keep = StatusClientClosed, false
	}
	if !ex.logged {
		ex.done()
	}
	if keep {
		c.consume(req.HeadLen + ex.buffered)
	}
	return keep
}

// bodyPending: some of the request body is neither buffered nor read, so
// the connection cannot carry another request unless it is.
func (ex *exchange) bodyPending() bool {
	return int64(ex.buffered) < ex.c.req.ContentLength && !ex.streamed
}

// serve runs the pipeline (see pipeline.go): admit, then forward.
func (ex *exchange) serve() bool {
	h, rt, c := ex.h, ex.rt, ex.c
	req := &c.req
	adm, no := h.admit(c.context(), rt, c.remoteIP, (*fastHeaders)(req), req.ContentLength, ex.start)
	switch no.status {
	case 0:
		defer adm.release()
	case StatusClientClosed:
		ex.status = StatusClientClosed
		return false
	default:
		return ex.fail(no.status, no.reason, no.retryAfter)
	}
	return ex.proxy()
}

// proxy forwards the request (the pipeline's pick and retry, with ex as
// the sender) and sends the answer to the client.
func (ex *exchange) proxy() bool {
	rt, req := ex.rt, &ex.c.req
	ex.idem = idempotent(bytesString(req.Method), (*fastHeaders)(req))
	key := hashKey(rt.HashKey, ex.c.remoteIP, bytesString(targetPath(ex.c.target)), (*fastHeaders)(req))
	b, err := rt.forward(ex.c.context(), ex, nil, key, ex.idem, ex.tried[:0], ex.start)
	if err != nil {
		if errors.Is(err, errClientGone) {
			ex.status = StatusClientClosed
			return false
		}
		return ex.failErr(err)
	}
	keep := ex.respond(ex.up, ex.n)
	b.Release()
	return keep
}

// send implements sender: one attempt on b.
func (ex *exchange) send(b *balance.Backend) (int, error) {
	ustart := time.Now()
	up, n, err := ex.try(b.Addr, ex.idem)
	ex.upstream, ex.upstreamTime = b.Addr, time.Since(ustart)
	if err == nil && ex.c.gone.Load() {
		up.Close()
		err = clientError{errClientGone}
	}
	ex.up, ex.n = up, n
	if err != nil {
		return 0, err
	}
	return ex.res.Status, nil
}

func (ex *exchange) discard() { ex.up.Close() }

func (ex *exchange) resendable() bool { return !ex.streamed }

// sendError is a failure writing the request head to an instance.
type sendError struct{ error }

func (e sendError) Unwrap() error { return e.error }

// try sends the request to the instance at addr, on an idle connection if
// there is one, and reads the response head into ex.ubuf, returning the
// connection and how many bytes of ex.ubuf it filled. An idle connection
// that the instance closed meanwhile (nothing came back) is replaced by a
// new one once, if the request can be sent again: its body is all in
// the connection's buffer, and it is idempotent or was not written at all.
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
	out := ex.requestHead(ex.out[:0], o.KeepaliveRequests > 0 && up.uses >= o.KeepaliveRequests)
	out = append(out, c.body(ex.buffered)...)
	ex.out = out
	now := time.Now()
	if o.SendTimeout > 0 {
		up.extendWriteDeadline(now, o.SendTimeout)
	}
	ex.buffer()
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
		m, werr, rerr := up.wr.sendThenRead(out, ex.ubuf)
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
			perr := h1.ParseResponse(ex.ubuf[:n], &ex.res)
			switch {
			case perr == nil && ex.res.Status >= 200:
				return n, nil
			case perr == nil && ex.res.Status == http.StatusSwitchingProtocols:
				return n, errors.New("the instance switched protocols unasked")
			case perr == nil: // 100 Continue, 103 Early Hints: passed on
				if werr := c.send(ex.ubuf[:ex.res.HeadLen]); werr != nil {
					return n, clientError{werr}
				}
				n = copy(ex.ubuf, ex.ubuf[ex.res.HeadLen:n])
				continue
			case perr != h1.ErrIncomplete:
				return n, perr
			case n == len(ex.ubuf):
				return n, errors.New("the instance's response head is larger than 16 KiB")
			}
		}
		if o.ReadTimeout > 0 {
			up.extendReadDeadline(time.Now(), o.ReadTimeout)
		}
		m, err := up.Read(ex.ubuf[n:])
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
	ex.buffer()
	for rest > 0 {
		n, err := c.readBody(ex.ubuf[:min(int64(len(ex.ubuf)), rest)])
		if n == 0 && err != nil {
			return clientError{err}
		}
		rest -= int64(n)
		if o.SendTimeout > 0 {
			up.extendWriteDeadline(time.Now(), o.SendTimeout)
		}
		if _, err := up.Write(ex.ubuf[:n]); err != nil {
			return err
		}
	}
	return nil
}

// requestHead appends the head sent to the instance: the client's, less
// hop-by-hop fields, with the pipeline's X-Forwarded-* and X-Real-IP (see
// forwarded).
func (ex *exchange) requestHead(out []byte, last bool) []byte {
	c := ex.c
	req := &c.req
	fw := ex.h.forwarded(c.remoteIP, "http", bytesString(req.Host), (*fastHeaders)(req))
	out = append(out, req.Method...)
	out = append(out, ' ')
	out = append(out, c.target...) // normalized: what herd routed by
	out = append(out, " HTTP/1.1\r\n"...)
	for _, f := range req.Fields {
		switch {
		case h1.EqualFold(f.Name, "connection"), h1.EqualFold(f.Name, "keep-alive"),
			h1.EqualFold(f.Name, "x-forwarded-for"), h1.EqualFold(f.Name, "x-forwarded-proto"),
			h1.EqualFold(f.Name, "x-forwarded-host"), h1.EqualFold(f.Name, "x-real-ip"):
			continue
		case !fw.trusted && h1.EqualFold(f.Name, "forwarded"):
			continue
		}
		out = appendField(out, f.Name, f.Value)
	}
	out = append(out, "X-Forwarded-For: "...)
	out = append(out, fw.forwardedFor...)
	out = append(out, "\r\nX-Forwarded-Proto: "...)
	out = append(out, fw.proto...)
	out = append(out, "\r\nX-Forwarded-Host: "...)
	out = append(out, fw.host...)
	out = append(out, "\r\nX-Real-Ip: "...)
	out = append(out, fw.realIP...)
	out = append(out, "\r\n"...)
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

// respond sends the instance's response (its head in ex.res, n bytes of
// ex.ubuf read) to the client, returns up to the pool when it can carry
// another request, and reports whether the client connection can.
func (ex *exchange) respond(up *upstreamConn, n int) bool {
	c, rt := ex.c, ex.rt
	req, res := &c.req, &ex.res
	ex.status = res.Status
	noBody := res.Status == http.StatusNoContent || res.Status == http.StatusNotModified || bytesString(req.Method) == http.MethodHead
	untilClose := !noBody && !res.Chunked && res.ContentLength < 0
	closeClient := req.Close || untilClose
	reuse := !res.Close && !untilClose && !(rt.upstreams.opts.KeepaliveRequests > 0 && up.uses >= rt.upstreams.opts.KeepaliveRequests)

	out := ex.responseHead(ex.out[:0], closeClient)
	rest := ex.ubuf[res.HeadLen:n]
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
	ex.out = out
	ex.bytesSent = int64(len(rest))
	complete := noBody || (!res.Chunked && !untilClose && remaining == 0)
	if complete {
		ex.done() // before the client can see the answer, as on the other path
		if !closeClient && c.wr != nil {
			// The answer goes out as readHead starts waiting for the next
			// request (see flushAndWait).
			ex.release(up, reuse)
			c.sendLater(out)
			return true
		}
	}
	if err := c.send(out); err != nil {
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
	chunked := ex.res.Chunked
	for {
		if o.ReadTimeout > 0 {
			up.extendReadDeadline(time.Now(), o.ReadTimeout)
		}
		p := ex.ubuf
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
			if err := c.send(p); err != nil {
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
	res, edits := &ex.res, &ex.rt.edits
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

// failErr answers a failed attempt, as errorHandler does on the other
// path.
func (ex *exchange) failErr(err error) bool {
	status, reason := ex.h.failed(&ex.rt.Route, err, bytesString(ex.c.req.Target), strings.Clone(ex.id))
	if status == StatusClientClosed {
		ex.status = status
		return false
	}
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

// done records the fast path's request (see record).
func (ex *exchange) done() {
	h, rt, req := ex.h, ex.rt, &ex.c.req
	ex.logged = true
	e := accesslog.Entry{Route: rt.Path, App: rt.App, Status: ex.status, Duration: time.Since(ex.start)}
	if h.logged() {
		// The strings point into the connection's buffer, which stays as it
		// is until the next request; Log copies what it keeps.
		e.Time, e.RemoteAddr, e.Method, e.URI, e.Proto = ex.start, ex.c.remoteIP, bytesString(req.Method), bytesString(req.Target), "HTTP/1.1"
		e.BytesSent = ex.bytesSent
		e.Referer, e.UserAgent = bytesString(h1.Get(req.Fields, "Referer")), bytesString(h1.Get(req.Fields, "User-Agent"))
		e.Upstream, e.UpstreamTime, e.RequestID = ex.upstream, ex.upstreamTime, ex.id
	}
	h.record(&e)
}

// buffer makes sure the exchange has its buffer for reads from instances.
func (ex *exchange) buffer() {
	if ex.ubuf == nil {
		ex.ubuf = *upstreamBuffers.Get().(*[]byte)
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
