package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// guard wraps the endpoints that change herd or cost it (the registry's
// writes, the dashboard's actions, /debug/pprof). A browser's cross-origin
// write is refused always, so a web page cannot drive a loopback admin
// listener (CSRF); with a token, every request needs
// `Authorization: Bearer TOKEN`, compared in constant time.
func guard(token string, next http.Handler) http.Handler {
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, errorBody{Error: "Forbidden",
			Reason: "a cross-origin request from a browser cannot change herd; send it from the admin listener's own origin or from a non-browser client"})
	}))
	if token == "" {
		return csrf.Handler(addressedByIP(next))
	}
	return csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokenOK(token, r) {
			unauthorized(w)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// addressedByIP refuses a request whose Host is a name other than
// localhost. Without a token the listener is on loopback, where a page
// from anywhere can still reach it through a name of its own that it
// points at 127.0.0.1 (DNS rebinding): to the browser that is the page's
// own origin, so the CSRF check lets it through; the Host header gives it
// away.
func addressedByIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		if net.ParseIP(host) == nil && host != "localhost" && !strings.HasSuffix(host, ".localhost") {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "Forbidden",
				Reason: "without admin_auth's token, herd takes writes only at an IP address or localhost, not at the name " + host +
					" (a web page could point a name of its own at this machine); use http://127.0.0.1:PORT or set admin_auth"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenOK reports whether r carries `Authorization: Bearer token`,
// compared in constant time (of the digests, so the length leaks nothing).
func tokenOK(token string, r *http.Request) bool {
	want := sha256.Sum256([]byte(token))
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return ok && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="herd admin"`)
	writeJSON(w, http.StatusUnauthorized, errorBody{Error: "Unauthorized",
		Reason: "this endpoint needs Authorization: Bearer TOKEN, the token of admin_auth in herd.yaml"})
}
