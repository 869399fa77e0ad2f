package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/herdhq/herd/session"
)

// A shop's login, cart and logout behind LoadAndSave. With several
// instances, use a RedisStore or an SQLStore on the shared database
// instead of the MemoryStore.
func Example() {
	m := session.New(session.NewMemoryStore())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// SetUser renews the token: a token from before the login is dead.
		if err := session.FromContext(r.Context()).SetUser(r.Context(), r.FormValue("email")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		cart, _, _ := session.Get[[]string](r.Context(), "cart")
		session.Put(r.Context(), "cart", append(cart, r.FormValue("item")))
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		cart, _, _ := session.Get[[]string](r.Context(), "cart")
		fmt.Fprintf(w, "user %q, cart %v", session.FromContext(r.Context()).UserID(), cart)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		session.FromContext(r.Context()).Destroy(r.Context())
	})
	h := m.LoadAndSave(mux)

	var cookie *http.Cookie
	do := func(method, path, form string) {
		r := httptest.NewRequest(method, path, strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		sent := "no cookie"
		for _, c := range w.Result().Cookies() {
			switch {
			case c.MaxAge < 0:
				sent, cookie = "cookie deleted", nil
			case cookie == nil || c.Value != cookie.Value:
				sent, cookie = "new token", c
			}
		}
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%-12s %-14s %s %s", method+" "+path, sent, w.Result().Status, body)))
	}
	do("POST", "/cart", "item=socks")
	do("POST", "/cart", "item=shoes")
	do("POST", "/login", "email=dana@example.com")
	do("GET", "/me", "")
	do("POST", "/logout", "")
	do("GET", "/me", "")
	// Output:
	// POST /cart   new token      200 OK
	// POST /cart   no cookie      200 OK
	// POST /login  new token      200 OK
	// GET /me      no cookie      200 OK user "dana@example.com", cart [socks shoes]
	// POST /logout cookie deleted 200 OK
	// GET /me      no cookie      200 OK user "", cart []
}

// Sessions without HTTP: Load a token, change the session, Commit it.
func ExampleManager_Commit() {
	ctx := context.Background()
	m := session.New(session.NewMemoryStore())
	s, _ := m.Load(ctx, "") // no token: a new session
	session.Put(session.NewContext(ctx, s), "lang", "de")
	token, _ := m.Commit(ctx, s)

	s, _ = m.Load(ctx, token)
	lang, ok, _ := session.Get[string](session.NewContext(ctx, s), "lang")
	fmt.Println(len(token), lang, ok)
	// Output: 43 de true
}
