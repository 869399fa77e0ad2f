package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/herdhq/herd/internal/testenv"
)

// client is a test's HTTP client with no retries of its own (no
// keep-alive) and no cookie jar: the test carries cookies by hand.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// answer is one response, body read to the end.
type answer struct {
	status  int
	body    []byte
	header  http.Header
	cookies []*http.Cookie
}

// do sends method url with body ("" for none) and the given cookie (nil
// for none) and headers (key, value pairs).
func do(t *testing.T, method, url, body string, cookie *http.Cookie, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json; body %s", method, url, ct, out)
	}
	return answer{res.StatusCode, out, res.Header, res.Cookies()}
}

// sessionCookie is the session cookie an answer set, failing the test
// without one.
func sessionCookie(t *testing.T, a answer) *http.Cookie {
	t.Helper()
	for _, c := range a.cookies {
		if c.Name == "session" {
			return c
		}
	}
	t.Fatalf("no session cookie in the answer (status %d, body %s, Set-Cookie %q)", a.status, a.body, a.header.Values("Set-Cookie"))
	return nil
}

// Login, /me and logout on two users instances that share one session
// store: the users database (SQLStore) without Redis, Redis with it.
func TestLoginSessionsAcrossInstances(t *testing.T) {
	stores := map[string]func(t *testing.T) (cfg storeConfig, rdb redis.UniversalClient){
		"sqlite sessions": func(t *testing.T) (storeConfig, redis.UniversalClient) {
			return storeConfig{DataDir: t.TempDir()}, nil
		},
		"postgres sessions": func(t *testing.T) (storeConfig, redis.UniversalClient) {
			return storeConfig{DatabaseURL: freshPostgres(t)}, nil
		},
		"redis sessions": func(t *testing.T) (storeConfig, redis.UniversalClient) {
			r := testenv.StartRedis(t)
			rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
			t.Cleanup(func() { rdb.Close() })
			return storeConfig{DataDir: t.TempDir()}, rdb
		},
	}
	for name, setup := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, rdb := setup(t)
			a := serveWith(t, "users", deps{store: open(t, "users", cfg), redis: rdb}).URL
			b := serveWith(t, "users", deps{store: open(t, "users", cfg), redis: rdb}).URL

			for _, tc := range []struct {
				name, body string
				want       check
			}{
				{"wrong password", `{"email":"alice@example.com","password":"wonderlandx"}`, check{401, "", "email or the password is wrong"}},
				{"unknown email", `{"email":"zed@example.com","password":"wonderland"}`, check{401, "", "email or the password is wrong"}},
				{"no password", `{"email":"alice@example.com"}`, check{400, "password", "required"}},
				{"no email", `{"password":"wonderland"}`, check{400, "email", "required"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := do(t, "POST", a+"/login", tc.body, nil)
					tc.want.verify(t, got.status, got.body)
					if len(got.cookies) != 0 {
						t.Errorf("a failed login set cookies %v", got.cookies)
					}
				})
			}
			got := do(t, "GET", a+"/me", "", nil)
			check{401, "", "not logged in"}.verify(t, got.status, got.body)
			got = do(t, "POST", a+"/logout", "", nil)
			check{401, "", "not logged in"}.verify(t, got.status, got.body)

			// Alice logs in on A (in another case of her email); B knows her.
			got = do(t, "POST", a+"/login", `{"email":"Alice@Example.com","password":"wonderland"}`, nil)
			check{status: 200}.verify(t, got.status, got.body)
			if u := decode[user](t, got.body); u.ID != "usr_alice" {
				t.Errorf("login answered %+v; want alice", u)
			}
			alice := sessionCookie(t, got)
			if !alice.HttpOnly || alice.SameSite != http.SameSiteLaxMode || alice.Path != "/" || alice.Secure {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, Path=/ and, over plain HTTP, not Secure", alice)
			}
			got = do(t, "GET", b+"/me", "", alice)
			check{status: 200}.verify(t, got.status, got.body)
			if u := decode[user](t, got.body); u.ID != "usr_alice" || u.Email != "alice@example.com" {
				t.Errorf("/me on the other instance: %+v; want alice", u)
			}

			// A login with alice's cookie as bob renews the token: alice's
			// token is dead after it (no fixation), bob's works everywhere.
			got = do(t, "POST", b+"/login", `{"email":"bob@example.com","password":"canwefixit"}`, alice)
			check{status: 200}.verify(t, got.status, got.body)
			bob := sessionCookie(t, got)
			if bob.Value == alice.Value {
				t.Fatal("the login kept the session's token")
			}
			got = do(t, "GET", a+"/me", "", alice)
			check{401, "", "not logged in"}.verify(t, got.status, got.body)
			got = do(t, "GET", a+"/me", "", bob)
			check{status: 200}.verify(t, got.status, got.body)
			if u := decode[user](t, got.body); u.ID != "usr_bob" {
				t.Errorf("/me with bob's cookie: %+v", u)
			}

			// Logout on A ends the session on B too, and deletes the cookie.
			got = do(t, "POST", a+"/logout", "", bob)
			check{status: 200}.verify(t, got.status, got.body)
			if c := sessionCookie(t, got); c.MaxAge >= 0 && c.Value != "" {
				t.Errorf("logout's cookie %+v does not delete the session cookie", c)
			}
			got = do(t, "GET", b+"/me", "", bob)
			check{401, "", "not logged in"}.verify(t, got.status, got.body)

			// A user made with a password logs in with it; one made without
			// cannot log in at all.
			got = do(t, "POST", a+"/users", `{"name":"Dora","email":"dora@example.com","password":"explorer1"}`, nil)
			check{status: 201}.verify(t, got.status, got.body)
			dora := decode[user](t, got.body)
			got = do(t, "POST", b+"/login", `{"email":"dora@example.com","password":"explorer1"}`, nil)
			check{status: 200}.verify(t, got.status, got.body)
			got = do(t, "GET", a+"/me", "", sessionCookie(t, got))
			if u := decode[user](t, got.body); got.status != 200 || u.ID != dora.ID {
				t.Errorf("/me as dora: %d %s", got.status, got.body)
			}
			got = do(t, "POST", a+"/users", `{"name":"Eve","email":"eve@example.com"}`, nil)
			check{status: 201}.verify(t, got.status, got.body)
			got = do(t, "POST", a+"/login", `{"email":"eve@example.com","password":"anything1"}`, nil)
			check{401, "", "wrong"}.verify(t, got.status, got.body)
			got = do(t, "POST", a+"/users", `{"name":"Short","email":"short@example.com","password":"2short"}`, nil)
			check{400, "password", "at least 8"}.verify(t, got.status, got.body)
		})
	}
}

// Behind a proxy that terminates TLS, SHOP_SECURE_COOKIES=1 marks the
// cookie Secure although the request to the instance is plain HTTP.
func TestSecureCookies(t *testing.T) {
	st := open(t, "users", storeConfig{DataDir: t.TempDir()})
	// The seeded hash (before serveWith cheapens it) is carol's password.
	var hash string
	if err := st.DB.QueryRow(`SELECT hash FROM user_passwords WHERE user_id = 'usr_carol'`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("higherfurther")); err != nil {
		t.Errorf("the seeded hash of carol is not of her documented password: %v", err)
	}
	srv := serveWith(t, "users", deps{store: st, secureCookies: true})
	got := do(t, "POST", srv.URL+"/login", `{"email":"carol@example.com","password":"higherfurther"}`, nil)
	check{status: 200}.verify(t, got.status, got.body)
	if c := sessionCookie(t, got); !c.Secure || !c.HttpOnly {
		t.Errorf("cookie %+v: want Secure and HttpOnly", c)
	}
}

// With Redis down, a login is a 503 that says why, not a 500.
func TestLoginWithSessionStoreDown(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	srv := serveWith(t, "users", deps{store: open(t, "users", storeConfig{DataDir: t.TempDir()}), redis: rdb})
	got := do(t, "POST", srv.URL+"/login", `{"email":"carol@example.com","password":"higherfurther"}`, nil)
	check{status: 200}.verify(t, got.status, got.body)
	carol := sessionCookie(t, got)
	r.Stop()
	got = do(t, "GET", srv.URL+"/me", "", carol)
	check{503, "", "session store is unavailable"}.verify(t, got.status, got.body)
	r.Start()
	ctx := context.Background()
	_ = rdb.Ping(ctx) // the pool's dead connections go first
	got = do(t, "GET", srv.URL+"/me", "", carol)
	// The Redis was empty when it started again (no persistence): the
	// session is gone, which is a 401, not an error.
	check{401, "", "not logged in"}.verify(t, got.status, got.body)
}
