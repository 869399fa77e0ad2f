package session

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// shopHandler is the app under the middleware in these tests.
func shopHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		if err := Put(r.Context(), "cart", r.URL.Query().Get("v")); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		v, _, err := Get[string](r.Context(), "cart")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, v)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := FromContext(r.Context()).SetUser(r.Context(), r.URL.Query().Get("user")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := FromContext(r.Context()).Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "streamed first; ")
		http.NewResponseController(w).Flush()
		Put(r.Context(), "cart", r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/noop", func(w http.ResponseWriter, r *http.Request) {})
	return mux
}

type tclient struct {
	t   *testing.T
	srv *httptest.Server
}

// get requests path with cookie (if not empty) and returns the body and
// the session cookie the response set (nil: none).
func (c tclient) get(path, token string) (int, string, *http.Cookie, http.Header) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.srv.URL+path, nil)
	if token != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: token})
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var got *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "session" {
			if got != nil {
				c.t.Fatalf("%s: two session cookies", path)
			}
			got = ck
		}
	}
	return resp.StatusCode, string(b), got, resp.Header
}

func TestMiddlewareCookie(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			clk := newClock()
			st := &countingStore{Store: NewMemoryStore()}
			m := newManager(st, clk)
			h := m.LoadAndSave(shopHandler())
			srv := httptest.NewServer(h)
			if tls {
				srv = httptest.NewTLSServer(h)
			}
			defer srv.Close()
			c := tclient{t, srv}

			// Nothing put: nothing stored, no cookie.
			if _, _, ck, hdr := c.get("/noop", ""); ck != nil || st.Len() != 0 {
				t.Fatalf("/noop: got cookie %v, %d records; want none", ck, st.Len())
			} else if hdr.Get("Vary") != "Cookie" {
				t.Errorf("Vary: got %q; want Cookie", hdr.Get("Vary"))
			}

			_, _, ck, hdr := c.get("/put?v=socks", "")
			if ck == nil {
				t.Fatal("/put: got no cookie; want one")
			}
			want := http.Cookie{Name: "session", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: tls, MaxAge: 1800}
			if ck.Path != want.Path || !ck.HttpOnly || ck.SameSite != want.SameSite || ck.Secure != want.Secure || ck.MaxAge != want.MaxAge || len(ck.Value) != tokenLen {
				t.Errorf("/put cookie: got %q; want path /, HttpOnly, SameSite=Lax, Secure=%v, Max-Age=1800, a 43-byte token", ck.String(), tls)
			}
			if exp := clk.Now().Add(30 * time.Minute).UTC().Truncate(time.Second); !ck.Expires.Equal(exp) {
				t.Errorf("Expires: got %v; want %v", ck.Expires, exp)
			}
			if cc := hdr.Get("Cache-Control"); !strings.Contains(cc, `no-cache="Set-Cookie"`) {
				t.Errorf("Cache-Control with a cookie: got %q; want no-cache=\"Set-Cookie\"", cc)
			}
			tok := ck.Value

			// Read only, within the touch interval: no cookie, no save.
			_, saves0 := st.counts()
			clk.Advance(time.Minute)
			if _, body, ck, _ := c.get("/get", tok); body != "socks" || ck != nil {
				t.Fatalf("/get: got %q, cookie %v; want socks and no cookie", body, ck)
			}
			if _, saves := st.counts(); saves != saves0 {
				t.Fatalf("/get within the touch interval: got %d saves; want 0", saves-saves0)
			}
			// Past the touch interval: the same token with a later expiry.
			clk.Advance(5 * time.Minute)
			_, body, ck, _ := c.get("/get", tok)
			if body != "socks" || ck == nil || ck.Value != tok {
				t.Fatalf("/get past the touch interval: got %q, cookie %v; want socks and the same token again", body, ck)
			}
			if exp := clk.Now().Add(30 * time.Minute).UTC().Truncate(time.Second); !ck.Expires.Equal(exp) {
				t.Errorf("touched Expires: got %v; want %v", ck.Expires, exp)
			}

			// Login renews: the old token is dead.
			_, _, ck, _ = c.get("/login?user=alice", tok)
			if ck == nil || ck.Value == tok || len(ck.Value) != tokenLen {
				t.Fatalf("/login: got cookie %v; want a new token", ck)
			}
			if _, body, _, _ := c.get("/get", tok); body != "" {
				t.Fatalf("/get with the pre-login token: got %q; want nothing", body)
			}
			tok = ck.Value
			if _, body, _, _ := c.get("/get", tok); body != "socks" {
				t.Fatalf("/get with the new token: got %q; want socks", body)
			}

			// A value put after the headers went is saved (the token is
			// known), but a new session then cannot be made.
			if _, body, ck, _ := c.get("/late?v=shoes", tok); ck != nil || body != "streamed first; " {
				t.Fatalf("/late: got %q, cookie %v; want the body and no cookie", body, ck)
			}
			if _, body, _, _ := c.get("/get", tok); body != "shoes" {
				t.Fatalf("/get after /late: got %q; want shoes", body)
			}
			n := st.Len()
			if _, _, ck, _ := c.get("/late?v=x", ""); ck != nil || st.Len() != n {
				t.Fatalf("/late without a session: got cookie %v, %d records; want none, %d", ck, st.Len(), n)
			}

			// Logout deletes the cookie and the session.
			_, _, ck, _ = c.get("/logout", tok)
			if ck == nil || ck.MaxAge != -1 || ck.Value != "" {
				t.Fatalf("/logout: got cookie %v; want it deleted (Max-Age=0)", ck)
			}
			if _, body, ck, _ := c.get("/get", tok); body != "" || ck != nil {
				t.Fatalf("/get after logout: got %q, cookie %v; want nothing", body, ck)
			}

			// Garbage cookies cost no store lookup.
			loads0, _ := st.counts()
			c.get("/get", "not-a-token")
			if loads, _ := st.counts(); loads != loads0 {
				t.Fatalf("a malformed cookie: got %d loads; want 0", loads-loads0)
			}
		})
	}
}

func TestMiddlewareCookieOptions(t *testing.T) {
	tests := []struct {
		name       string
		cookie     Cookie
		tls        bool
		wantSecure bool
		check      func(t *testing.T, ck *http.Cookie)
	}{
		{"SecureAlways over http", Cookie{Secure: SecureAlways}, false, true, nil},
		{"SecureNever over https", Cookie{Secure: SecureNever}, true, false, nil},
		{"SessionOnly", Cookie{SessionOnly: true}, false, false, func(t *testing.T, ck *http.Cookie) {
			if ck.MaxAge != 0 || !ck.Expires.IsZero() {
				t.Errorf("got Max-Age %d Expires %v; want neither", ck.MaxAge, ck.Expires)
			}
		}},
		{"name, path, domain, strict", Cookie{Name: "sid", Path: "/app", Domain: "example.com", SameSite: http.SameSiteStrictMode}, false, false, func(t *testing.T, ck *http.Cookie) {
			if ck.Path != "/app" || ck.Domain != "example.com" || ck.SameSite != http.SameSiteStrictMode {
				t.Errorf("got %q; want Path=/app Domain=example.com SameSite=Strict", ck.String())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Manager{Store: NewMemoryStore(), Cookie: tt.cookie}
			h := m.LoadAndSave(shopHandler())
			srv := httptest.NewServer(h)
			if tt.tls {
				srv = httptest.NewTLSServer(h)
			}
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL + "/put?v=1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cks := resp.Cookies()
			if len(cks) != 1 {
				t.Fatalf("got %d cookies; want 1", len(cks))
			}
			if cks[0].Secure != tt.wantSecure || !cks[0].HttpOnly {
				t.Errorf("got %q; want Secure=%v, HttpOnly", cks[0].String(), tt.wantSecure)
			}
			if tt.check != nil {
				tt.check(t, cks[0])
			}
		})
	}
}

func TestMiddlewareStoreFailure(t *testing.T) {
	down := errors.New("store down")
	st := &countingStore{Store: NewMemoryStore()}
	var logged strings.Builder
	m := &Manager{Store: st, Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	srv := httptest.NewServer(m.LoadAndSave(shopHandler()))
	defer srv.Close()
	c := tclient{t, srv}
	_, _, ck, _ := c.get("/put?v=1", "")
	st.mu.Lock()
	st.failSv = down
	st.mu.Unlock()
	if code, body, _, _ := c.get("/put?v=2", ck.Value); code != 500 || strings.Contains(body, "ok") {
		t.Fatalf("a failed save: got %d %q; want 500 without the handler's body", code, body)
	}
	st.mu.Lock()
	st.failLoad, st.failSv = down, nil
	st.mu.Unlock()
	if code, _, _, _ := c.get("/get", ck.Value); code != 500 {
		t.Fatalf("a failed load: got %d; want 500", code)
	}
	if !strings.Contains(logged.String(), "store down") {
		t.Errorf("log: got %q; want the store's error", logged.String())
	}
	// Back: used again.
	st.mu.Lock()
	st.failLoad = nil
	st.mu.Unlock()
	if code, body, _, _ := c.get("/get", ck.Value); code != 200 || body != "1" {
		t.Fatalf("store back: got %d %q; want 200 1", code, body)
	}
}

func TestNoSession(t *testing.T) {
	ctx := t.Context()
	if _, _, err := Get[int](ctx, "a"); !errors.Is(err, ErrNoSession) {
		t.Errorf("Get: got %v; want ErrNoSession", err)
	}
	if err := Put(ctx, "a", 1); !errors.Is(err, ErrNoSession) {
		t.Errorf("Put: got %v; want ErrNoSession", err)
	}
	if err := Remove(ctx, "a"); !errors.Is(err, ErrNoSession) {
		t.Errorf("Remove: got %v; want ErrNoSession", err)
	}
}

// TestMiddlewareLateTokenChange: a renewal after the headers went cannot
// reach the client; it is logged, and the 103 before the real answer does
// not commit the session early.
func TestMiddlewareLateTokenChange(t *testing.T) {
	var logged strings.Builder
	m := &Manager{Store: NewMemoryStore(), Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	mux := http.NewServeMux()
	mux.Handle("/", shopHandler())
	mux.HandleFunc("/late-renew", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "body first")
		FromContext(r.Context()).Renew(r.Context())
	})
	mux.HandleFunc("/hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		Put(r.Context(), "cart", "after-hints")
	})
	srv := httptest.NewServer(m.LoadAndSave(mux))
	defer srv.Close()
	c := tclient{t, srv}
	_, _, ck, _ := c.get("/hints", "")
	if ck == nil {
		t.Fatal("a Put after a 103: got no cookie; want one")
	}
	if _, body, _, _ := c.get("/get", ck.Value); body != "after-hints" {
		t.Fatalf("/get: got %q; want after-hints", body)
	}
	if _, _, got, _ := c.get("/late-renew", ck.Value); got != nil {
		t.Fatalf("a renewal after the headers: got cookie %v; want none (too late)", got)
	}
	if !strings.Contains(logged.String(), "headers were already sent") {
		t.Errorf("log: got %q; want the late renewal reported", logged.String())
	}
}
