package proxy

import (
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// rewrite prepares the net/http path's outbound request: the instance is
// chosen later, by pickTransport, and the forwarded fields are the
// pipeline's (see forwarded). ReverseProxy has already removed
// X-Forwarded-* from Out when Rewrite is used.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "instance" // set per attempt by pickTransport

	in := pr.In
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	f := h.forwarded(remoteIP(in.RemoteAddr), proto, in.Host, stdHeaders(in.Header))
	if !f.trusted {
		pr.Out.Header.Del("Forwarded")
	}
	pr.Out.Header.Set("X-Forwarded-For", f.forwardedFor)
	pr.Out.Header.Set("X-Forwarded-Proto", f.proto)
	pr.Out.Header.Set("X-Forwarded-Host", f.host)
	pr.Out.Header.Set("X-Real-IP", f.realIP)
}

func (h *Handler) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range h.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// realIP walks an X-Forwarded-For chain from the right and returns the first
// address that is not a trusted proxy: the client as far as we can tell.
func (h *Handler) realIP(xff string) string {
	parts := strings.Split(xff, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		s := strings.TrimSpace(parts[i])
		a, err := netip.ParseAddr(s)
		if err != nil {
			return s // not an address: stop trusting the chain here
		}
		if !h.isTrusted(a) {
			return s
		}
	}
	return strings.TrimSpace(parts[0])
}

func remoteIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// newRequestID returns 128 random bits in hex.
func newRequestID() string {
	var id [32]byte
	fillRequestID(&id)
	return string(id[:])
}

// fillRequestID writes a new request id into id, allocating nothing.
func fillRequestID(id *[32]byte) {
	var b [16]byte
	x, y := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(x>>(8*i)), byte(y>>(8*i))
	}
	hex.Encode(id[:], b[:])
}

// clientKey is what a rate or connection limit counts by, for a peer at
// ip with the request fields in: "ip", the client (the real one when the
// peer is a trusted proxy), or "header:NAME", that field's values.
func (h *Handler) clientKey(ip, spec string, in headerSource) string {
	if name, ok := strings.CutPrefix(spec, "header:"); ok {
		return in.Values(name)
	}
	if peer, err := netip.ParseAddr(ip); err == nil && h.isTrusted(peer) {
		if xff := in.Values("X-Forwarded-For"); xff != "" {
			return h.realIP(xff + ", " + ip)
		}
	}
	return ip
}
