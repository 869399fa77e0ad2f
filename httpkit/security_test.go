package httpkit

import (
	"net/http"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	helmet := map[string]string{
		"Content-Security-Policy":           "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
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
	tests := []struct {
		name    string
		opts    SecurityOptions
		handler http.HandlerFunc
		want    map[string]string // "" means absent
	}{
		{name: "helmet v7 defaults", want: helmet},
		{name: "no X-Powered-By, no COEP", want: map[string]string{"X-Powered-By": "", "Cross-Origin-Embedder-Policy": ""}},
		{name: "the seed's: CSP off", opts: SecurityOptions{Omit: []string{"content-security-policy"}},
			want: map[string]string{"Content-Security-Policy": "", "X-Frame-Options": "SAMEORIGIN"}},
		{name: "Set replaces and adds", opts: SecurityOptions{Set: map[string]string{"X-Frame-Options": "DENY", "Permissions-Policy": "camera=()"}},
			want: map[string]string{"X-Frame-Options": "DENY", "Permissions-Policy": "camera=()", "Referrer-Policy": "no-referrer"}},
		{name: "the handler's own value wins",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Security-Policy", "default-src 'none'")
			},
			want: map[string]string{"Content-Security-Policy": "default-src 'none'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Handler(tt.handler)
			if tt.handler == nil {
				h = text("text/plain", 10)
			}
			// An outer layer that sets X-Powered-By, as some frameworks do.
			outer := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Powered-By", "Express")
					next.ServeHTTP(w, r)
				})
			}
			srv := serve(t, outer(SecurityHeaders(tt.opts)(h)))
			res := get(t, srv.URL)
			for k, want := range tt.want {
				if got := res.header.Get(k); got != want {
					t.Errorf("%s: %q; want %q", k, got, want)
				}
			}
		})
	}
	if got := len(DefaultSecurityHeaders()); got != len(helmet) {
		t.Errorf("DefaultSecurityHeaders has %d headers; want helmet's %d", got, len(helmet))
	}
}
