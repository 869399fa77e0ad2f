package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/herdhq/herd/internal/accesslog"
	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/h1"
	"github.com/herdhq/herd/internal/limits"
)

// This file is the pipeline both paths run (see doc.go): admit → pick and
// retry → forward headers → respond → record. Each step is a function
// here; the net/http path (proxy.go, transport.go) and the fast path
// (fast.go) call them and supply only how bytes move.

// headerSource reads a request's header fields, whichever path parsed
// them.
type headerSource interface {
	// Get returns the first value of the field name, or "".
	Get(name string) string
	// Values returns every value of name joined by ", ", as one field.
	Values(name string) string
}

// stdHeaders are the net/http path's request fields.
type stdHeaders http.Header

func (h stdHeaders) Get(name string) string { return http.Header(h).Get(name) }

func (h stdHeaders) Values(name string) string {
	vs := http.Header(h).Values(name)
	if len(vs) == 1 {
		return vs[0]
	}
	return strings.Join(vs, ", ")
}

// fastHeaders are the fast path's request fields, parsed in place. Get's
// string points into the connection's buffer: it is valid while the
// request is.
type fastHeaders h1.Request

func (r *fastHeaders) Get(name string) string { return bytesString(h1.Get(r.Fields, name)) }

func (r *fastHeaders) Values(name string) string { return h1.Values(r.Fields, name) }

// refusal is an answer herd gives instead of forwarding the request:
// status 0 lets it through, StatusClientClosed means the client left and
// gets nothing.
type refusal struct {
	status     int
	reason     string
	retryAfter string // seconds, for Retry-After
}

// admission is what admit let in: release gives back its place under the
// connection limit.
type admission struct {
	conns *ConnLimit
	key   string
}

func (a admission) release() {
	if a.conns != nil {
		a.conns.Release(a.key)
	}
}

// admit applies the route's limits to a request from the peer at ip with
// the given fields and declared body length (-1: unknown): the rate limit
// (a request within the burst waits for its turn, as NGINX's limit_req
// without nodelay), the connection limit, and max_body. It waits at most
// until ctx is done, which is the client leaving: that is a refusal with
// StatusClientClosed. When the refusal's status is 0, the caller must
// release the admission once the request is done.
func (h *Handler) admit(ctx context.Context, rt *route, ip string, fields headerSource, contentLength int64, start time.Time) (admission, refusal) {
	if rl := rt.Rate; rl != nil {
		wait, ok, retry := rl.Reserve(ctx, h.clientKey(ip, rl.Key, fields), start)
		if !ok {
			return admission{}, refusal{rl.Status, "too many requests from this client: the limit is " + rl.Desc, limits.RetryAfterSeconds(retry)}
		}
		if wait > 0 { // within the burst: delayed to the rate, as NGINX does
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return admission{}, refusal{status: StatusClientClosed}
			}
		}
	}
	var a admission
	if cl := rt.Conns; cl != nil {
		key := h.clientKey(ip, cl.Key, fields)
		if !cl.Acquire(key) {
			return a, refusal{status: cl.Status, reason: fmt.Sprintf("too many requests in flight from this client: the limit is %d", cl.Max)}
		}
		a = admission{conns: cl, key: key}
	}
	if rt.MaxBody > 0 && contentLength > rt.MaxBody {
		a.release()
		return admission{}, refusal{status: http.StatusRequestEntityTooLarge, reason: fmt.Sprintf("the body is %d bytes; this route takes at most %d", contentLength, rt.MaxBody)}
	}
	return a, refusal{}
}

// sender moves one request to an instance and its response head back, the
// part of "pick and retry" that differs between the paths.
type sender interface {
	// send sends the request to b and reads the response head, returning
	// its status. An error of type clientError is the client's side
	// failing (it left).
	send(b *balance.Backend) (status int, err error)
	// discard drops the response head send read, for a retry on its
	// status.
	discard()
	// resendable reports whether the request can be sent again: none of
	// its body was read from the client yet.
	resendable() bool
}

// errClientGone: the client left before its request was answered.
var errClientGone = fmt.Errorf("proxy: the client went away: %w", context.Canceled)

// clientError is a failure on the client's side of a fast-path exchange.
type clientError struct{ error }

func (e clientError) Unwrap() error { return e.error }

// forward picks an instance of rt's pool and sends the request with s until
// one answers or the retry policy gives up (NGINX's proxy_next_upstream):
// the request is tried again on another instance, within Retry's Tries and
// Timeout (from start) and while s can resend it, when the connection was
// refused (any method: the instance never saw it), or when the attempt
// failed in a way the policy names and the request is idempotent (by
// method or an Idempotency-Key, or any with NonIdempotent). first, if not
// nil, is the acquired backend to try first (a sticky cookie's). tried is
// scratch space for the instances tried. On success the returned backend
// is acquired: the caller releases it when done with the response. Pick
// waits for a ready instance until QueueTimeout or ctx is done; a done ctx
// or a clientError returns errClientGone.
func (rt *route) forward(ctx context.Context, s sender, first *balance.Backend, key string, idem bool, tried []*balance.Backend, start time.Time) (*balance.Backend, error) {
	retry, pool := &rt.Retry, rt.Pool
	for attempt := 1; ; attempt++ {
		b := first
		if attempt > 1 || b == nil {
			var err error
			if b, err = pool.Pick(ctx, rt.Policy, tried, key, rt.QueueTimeout); err != nil {
				switch {
				case ctx.Err() != nil:
					return nil, errClientGone
				case len(tried) > 0 && errors.Is(err, balance.ErrNoBackend):
					return nil, errNoRetryTarget
				}
				return nil, err
			}
		}
		sent := time.Now()
		status, err := s.send(b)
		if err == nil {
			b.Stats.Response(status, time.Since(sent)) // per instance: its own answer, retried or not
		} else if ctx.Err() == nil && !errors.As(err, new(clientError)) {
			b.Stats.Failed() // a proxy error of this instance; the client's leaving is not
		}
		more := attempt < retry.Tries && (retry.Timeout <= 0 || time.Since(start) < retry.Timeout) && s.resendable()
		if err == nil {
			if more && retry.onStatus(status) && (idem || retry.NonIdempotent) {
				// NGINX's proxy_next_upstream http_5xx: nothing reached the client yet.
				s.discard()
				b.Release()
				tried = append(tried, b)
				continue
			}
			return b, nil
		}
		b.Release()
		if ctx.Err() != nil || errors.As(err, new(clientError)) {
			return nil, errClientGone
		}
		if isConnectError(err) || isTimeout(err) {
			b.Fail(time.Now(), pool.MaxFails, pool.FailTimeout)
		}
		if !more || !retry.retryable(idem, err) {
			return nil, err
		}
		tried = append(tried, b)
	}
}

// hashKey is what a hashing policy hashes for spec (Route.HashKey): for a
// request from ip to path with the fields in, "ip", "path", or
// "header:NAME"'s first value; "" for anything else.
func hashKey(spec, ip, path string, in headerSource) string {
	switch spec {
	case "":
		return ""
	case "ip":
		return ip
	case "path":
		return path
	}
	if name, ok := strings.CutPrefix(spec, "header:"); ok {
		return in.Get(name)
	}
	return ""
}

// forwardedFields are the X-Forwarded-* and X-Real-IP fields sent to an
// instance.
type forwardedFields struct {
	forwardedFor, proto, host, realIP string
	// trusted: the peer is a trusted proxy, whose own X-Forwarded-*,
	// X-Real-IP and Forwarded fields are kept; anyone else's are replaced
	// (Forwarded dropped).
	trusted bool
}

// forwarded computes the fields for a request from the peer at ip, over
// proto ("http" or "https"), for host, whose own fields are in.
func (h *Handler) forwarded(ip, proto, host string, in headerSource) forwardedFields {
	if len(h.trusted) > 0 {
		if peer, err := netip.ParseAddr(ip); err == nil && h.isTrusted(peer) {
			xff := ip
			if prior := in.Values("X-Forwarded-For"); prior != "" {
				xff = prior + ", " + ip
			}
			return forwardedFields{
				forwardedFor: xff,
				proto:        firstNonEmpty(in.Get("X-Forwarded-Proto"), proto),
				host:         firstNonEmpty(in.Get("X-Forwarded-Host"), host),
				realIP:       firstNonEmpty(in.Get("X-Real-IP"), h.realIP(xff)),
				trusted:      true,
			}
		}
	}
	return forwardedFields{forwardedFor: ip, proto: proto, host: host, realIP: ip}
}

// headerEdits are a route's HeaderRules, compiled once for both paths:
// drop the fields named in Remove and Set, add each default the instance
// did not send, then Set's and Add's fields.
type headerEdits struct {
	drop     []string // names removed or replaced
	defaults []headerEdit
	set, add []headerEdit
	hsts     string // Strict-Transport-Security for HTTPS requests, if not set
}

type headerEdit struct{ name, value string }

func compileEdits(hr *HeaderRules) headerEdits {
	e := headerEdits{hsts: hr.HSTS}
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

func (e *headerEdits) empty() bool {
	return len(e.drop) == 0 && len(e.defaults) == 0 && len(e.add) == 0 && e.hsts == ""
}

// apply edits the net/http path's response fields h; the fast path applies
// the same edits as it writes the head (see responseHead).
func (e *headerEdits) apply(h http.Header, tls bool) {
	for _, name := range e.drop {
		h.Del(name)
	}
	for _, d := range e.defaults {
		if len(h.Values(d.name)) == 0 {
			h.Set(d.name, d.value)
		}
	}
	for _, d := range e.set {
		h.Add(d.name, d.value) // dropped above
	}
	for _, d := range e.add {
		h.Add(d.name, d.value)
	}
	if e.hsts != "" && tls && h.Get("Strict-Transport-Security") == "" {
		h.Set("Strict-Transport-Security", e.hsts)
	}
}

// preset sets the fields a route adds before its own handler writes (for
// files, where there is no instance's response to edit): the defaults,
// then Set's and Add's fields; the handler may replace them.
func (e *headerEdits) preset(h http.Header) {
	for _, d := range e.defaults {
		h.Set(d.name, d.value)
	}
	for _, d := range e.set {
		h.Set(d.name, d.value)
	}
	for _, d := range e.add {
		h.Add(d.name, d.value)
	}
}

// failed says what a request that could not be forwarded gets, and logs
// it: StatusClientClosed (nothing is sent) when the client left, else the
// status and reason failure maps err to.
func (h *Handler) failed(rt *Route, err error, path, requestID string) (status int, reason string) {
	if errors.Is(err, context.Canceled) {
		h.log.Info("client closed request", "status", StatusClientClosed, "app", rt.App, "path", path, "request_id", requestID)
		return StatusClientClosed, ""
	}
	status, reason = failure(rt, err)
	h.log.Warn("proxy error", "status", status, "app", rt.App, "path", path, "request_id", requestID, "err", err)
	return status, reason
}

// record counts a finished request in the metrics and writes its access
// log line. e holds the route, app, status and duration; the rest of it
// matters only when there is an access log (see logged).
func (h *Handler) record(e *accesslog.Entry) {
	if h.observe != nil {
		h.observe(e.Route, e.App, e.Status, e.Duration)
	}
	if h.accessLog != nil {
		h.accessLog.Log(e)
	}
}

// logged reports whether record writes access log lines, so a path can
// skip gathering what only those need.
func (h *Handler) logged() bool { return h.accessLog != nil }
