package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// guard wraps the endpoints that change herd or cost it (the registry's
// writes, the actions to come, /debug/pprof). A browser's cross-origin
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
		return csrf.Handler(next)
	}
	want := sha256.Sum256([]byte(token))
	return csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="herd admin"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "Unauthorized",
				Reason: "this endpoint needs Authorization: Bearer TOKEN, the token of admin_auth in herd.yaml"})
			return
		}
		next.ServeHTTP(w, r)
	}))
}
