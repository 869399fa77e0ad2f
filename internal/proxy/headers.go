package proxy

import (
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// rewrite prepares the outbound request. The instance is chosen later, by
// pickTransport. Incoming X-Forwarded-* and X-Real-IP headers are kept only
// from trusted proxies; ReverseProxy has already removed X-Forwarded-* from
// Out when Rewrite is used.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "instance" // set per attempt by pickTransport

	in := pr.In
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	clientIP := remoteIP(in.RemoteAddr)
	peer, _ := netip.ParseAddr(clientIP)
	if peer.IsValid() && h.isTrusted(peer) {
		prior := strings.Join(in.Header.Values("X-Forwarded-For"), ", ")
		xff := clientIP
		if prior != "" {
			xff = prior + ", " + clientIP
		}
		pr.Out.Header.Set("X-Forwarded-For", xff)
		pr.Out.Header.Set("X-Forwarded-Proto", firstNonEmpty(in.Header.Get("X-Forwarded-Proto"), proto))
		pr.Out.Header.Set("X-Forwarded-Host", firstNonEmpty(in.Header.Get("X-Forwarded-Host"), in.Host))
		pr.Out.Header.Set("X-Real-IP", firstNonEmpty(in.Header.Get("X-Real-IP"), h.realIP(xff)))
		return
	}
	pr.Out.Header.Del("Forwarded")
	pr.Out.Header.Set("X-Forwarded-For", clientIP)
	pr.Out.Header.Set("X-Forwarded-Proto", proto)
	pr.Out.Header.Set("X-Forwarded-Host", in.Host)
	pr.Out.Header.Set("X-Real-IP", clientIP)
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

// limitKey is what a rate or connection limit counts by: "ip", the client
// (the real one when the peer is a trusted proxy), or "header:NAME".
func (h *Handler) limitKey(r *http.Request, spec string) string {
	return h.clientKey(remoteIP(r.RemoteAddr), spec, func(name string) string {
		return strings.Join(r.Header.Values(name), ", ")
	})
}

// clientKey is limitKey for a peer at ip, with header returning a request
// header's values joined by commas.
func (h *Handler) clientKey(ip, spec string, header func(name string) string) string {
	if name, ok := strings.CutPrefix(spec, "header:"); ok {
		return header(name)
	}
	if peer, err := netip.ParseAddr(ip); err == nil && h.isTrusted(peer) {
		if xff := header("X-Forwarded-For"); xff != "" {
			return h.realIP(xff + ", " + ip)
		}
	}
	return ip
}
