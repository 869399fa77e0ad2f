package httpkit

import (
	"maps"
	"net/http"
	"slices"
)

// DefaultSecurityHeaders returns the headers helmet v7 sets by default,
// with their values; each call returns a new map the caller may change.
// (helmet v7 leaves Cross-Origin-Embedder-Policy off by default, and so
// does this list. The seed also turns Content-Security-Policy off; a Go app
// that wants that writes Omit: []string{"Content-Security-Policy"}.)
func DefaultSecurityHeaders() map[string]string {
	return map[string]string{
		"Content-Security-Policy": "default-src 'self';base-uri 'self';font-src 'self' https: data:;" +
			"form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';" +
			"script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';" +
			"upgrade-insecure-requests",
		"Cross-Origin-Opener-Policy":        "same-origin",
		"Cross-Origin-Resource-Policy":      "same-origin",
		"Origin-Agent-Cluster":              "?1",
		"Referrer-Policy":                   "no-referrer",
		"Strict-Transport-Security":         "max-age=15552000; includeSubDomains",
		"X-Content-Type-Options":            "nosniff",
		"X-Dns-Prefetch-Control":            "off",
		"X-Download-Options":                "noopen",
		"X-Frame-Options":                   "SAMEORIGIN",
		"X-Permitted-Cross-Domain-Policies": "none",
		"X-Xss-Protection":                  "0",
	}
}

// SecurityOptions configure SecurityHeaders.
type SecurityOptions struct {
	// Disabled leaves SecurityHeaders out of New's stack.
	Disabled bool
	// Set adds headers or replaces the defaults' values, e.g. a
	// Content-Security-Policy of the app's own. Default: none.
	Set map[string]string
	// Omit names default headers not to send, e.g.
	// "Content-Security-Policy" as the seed's helmet({contentSecurityPolicy:
	// false}). Default: none.
	Omit []string
}

// SecurityHeaders sets DefaultSecurityHeaders, changed by opts, on every
// response before the handler runs, so a handler's own value wins; it also
// removes X-Powered-By, as helmet does (net/http never sets one).
func SecurityHeaders(opts SecurityOptions) Middleware {
	set := DefaultSecurityHeaders()
	maps.Copy(set, opts.Set)
	for _, k := range opts.Omit {
		for name := range set {
			if http.CanonicalHeaderKey(name) == http.CanonicalHeaderKey(k) {
				delete(set, name)
			}
		}
	}
	type kv struct {
		key string
		val []string
	}
	// Canonical keys and one []string per header, made once: setting them
	// is then a map assignment per header.
	list := make([]kv, 0, len(set))
	for _, k := range slices.Sorted(maps.Keys(set)) {
		list = append(list, kv{http.CanonicalHeaderKey(k), []string{set[k]}})
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			for _, e := range list {
				h[e.key] = e.val
			}
			delete(h, "X-Powered-By")
			next.ServeHTTP(w, r)
		})
	}
}
