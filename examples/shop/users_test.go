package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		srv := serve(t, "users", open(t, "users", cfg), nil)
		// In order: later cases rely on what earlier ones created.
		tests := []struct {
			name, method, path, body string
			want                     check
		}{
			{"create", "POST", "/users", `{"name":" Dave ","email":"Dave@Example.com"}`, check{status: 201}},
			{"create at the root, as through the gateway", "POST", "/", `{"name":"Erin","email":"erin@example.com"}`, check{status: 201}},
			{"duplicate email", "POST", "/users", `{"name":"Other Dave","email":"dave@example.com"}`, check{409, "email", "already exists"}},
			{"duplicate email in another case", "POST", "/users", `{"name":"Alice 2","email":"ALICE@example.COM"}`, check{409, "email", "already exists"}},
			{"no name", "POST", "/users", `{"email":"x@example.com"}`, check{400, "name", "required"}},
			{"blank name", "POST", "/users", `{"name":"   ","email":"x@example.com"}`, check{400, "name", "required"}},
			{"long name", "POST", "/users", `{"name":"` + strings.Repeat("é", 101) + `","email":"x@example.com"}`, check{400, "name", "at most 100"}},
			{"100-character name", "POST", "/users", `{"name":"` + strings.Repeat("é", 100) + `","email":"long@example.com"}`, check{status: 201}},
			{"no email", "POST", "/users", `{"name":"X"}`, check{400, "email", "required"}},
			{"invalid email", "POST", "/users", `{"name":"X","email":"not-an-email"}`, check{400, "email", "not a valid email"}},
			{"email with a display name", "POST", "/users", `{"name":"X","email":"X <x@example.com>"}`, check{400, "email", "not a valid email"}},
			{"unknown field", "POST", "/users", `{"name":"X","emial":"x@example.com"}`, check{400, "emial", "unknown field"}},
			{"wrong type", "POST", "/users", `{"name":5,"email":"x@example.com"}`, check{400, "name", "must be a string"}},
			{"malformed JSON", "POST", "/users", `{"name":"X",`, check{400, "", "malformed JSON"}},
			{"not an object", "POST", "/users", `["X"]`, check{400, "", "must be a JSON object"}},
			{"two objects", "POST", "/users", `{"name":"X","email":"x@example.com"} {}`, check{400, "", "one JSON object"}},
			{"empty body", "POST", "/users", ``, check{400, "", "empty"}},
			{"get a seeded user", "GET", "/users/usr_alice", ``, check{status: 200}},
			{"get at the root", "GET", "/usr_bob", ``, check{status: 200}},
			{"get an unknown user", "GET", "/users/usr_nobody", ``, check{404, "", "no user"}},
			{"list", "GET", "/users", ``, check{status: 200}},
			{"bad limit", "GET", "/users?limit=ten", ``, check{400, "limit", "whole number"}},
			{"zero limit", "GET", "/users?limit=0", ``, check{400, "limit", "whole number"}},
			{"wrong method", "DELETE", "/users/usr_alice", ``, check{405, "", "GET"}},
			{"unknown path", "GET", "/users/usr_alice/friends", ``, check{404, "", "no route"}},
			{"health", "GET", "/health", ``, check{status: 200}},
		}
		for _, tc := range tests {
			status, body := call(t, tc.method, srv.URL+tc.path, tc.body)
			t.Run(tc.name, func(t *testing.T) { tc.want.verify(t, status, body) })
		}
	})
}

func TestUsersCreateAndRead(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		srv := serve(t, "users", open(t, "users", cfg), nil)
		status, body := call(t, "POST", srv.URL+"/users", `{"name":"Dave","email":"Dave@Example.com"}`)
		check{status: 201}.verify(t, status, body)
		created := decode[user](t, body)
		if !strings.HasPrefix(created.ID, "usr_") || len(created.ID) != 20 {
			t.Errorf("id %q, want usr_ and 16 hex digits", created.ID)
		}
		if created.Name != "Dave" || created.Email != "dave@example.com" || created.CreatedAt == "" {
			t.Errorf("created %+v: want name Dave, the email lowercased and created_at", created)
		}

		status, body = call(t, "GET", srv.URL+"/users/"+created.ID, "")
		check{status: 200}.verify(t, status, body)
		if got := decode[user](t, body); got != created {
			t.Errorf("GET answered %+v, POST %+v", got, created)
		}

		status, body = call(t, "GET", srv.URL+"/users", "")
		check{status: 200}.verify(t, status, body)
		list := decode[[]user](t, body)
		if len(list) != 4 || list[0] != created || list[3].ID != "usr_alice" {
			t.Errorf("list %+v: want the new user first, then carol, bob, alice", list)
		}
		status, body = call(t, "GET", srv.URL+"/users?limit=2", "")
		check{status: 200}.verify(t, status, body)
		if list := decode[[]user](t, body); len(list) != 2 || list[1].ID != "usr_carol" {
			t.Errorf("limit=2 gave %+v", list)
		}
	})
}

// Two instances of users, each with its own connection pool, take the same
// new email at once: the database's constraint lets exactly one through.
func TestUsersConcurrentDuplicateEmail(t *testing.T) {
	eachDatabase(t, func(t *testing.T, cfg storeConfig) {
		instances := []string{
			serve(t, "users", open(t, "users", cfg), nil).URL,
			serve(t, "users", open(t, "users", cfg), nil).URL,
		}
		const attempts = 8
		statuses := make([]int, attempts)
		errs := make([]error, attempts)
		var wg sync.WaitGroup
		for i := range attempts {
			wg.Go(func() {
				statuses[i], _, errs[i] = send("POST", instances[i%2]+"/users", `{"name":"Twin","email":"twin@example.com"}`)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		created := 0
		for _, s := range statuses {
			switch s {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
			default:
				t.Errorf("status %d, want 201 or 409", s)
			}
		}
		if created != 1 {
			t.Errorf("%d creates succeeded, want exactly 1 (statuses %v)", created, statuses)
		}
	})
}

// A body over maxBody is httpkit's to refuse, with its JSON 413, whether
// it declares its length (refused before it is read) or comes chunked (cut
// where it crosses the limit); the user is not created. A raw connection
// reads the answer while the body is still being sent: Go's Transport
// reports only its write error when the server answers early and closes.
func TestBodyOverTheLimit(t *testing.T) {
	st := open(t, "users", storeConfig{DataDir: t.TempDir()})
	srv := serve(t, "users", st, nil)
	for _, tc := range []struct {
		name    string
		chunked bool
	}{{"with Content-Length", false}, {"chunked", true}} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			body := bigJSON()
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				if tc.chunked {
					fmt.Fprintf(conn, "POST /users HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
				} else {
					fmt.Fprintf(conn, "POST /users HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				}
			}()
			defer func() { <-sent }() // a write the server cut short fails, and ends
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(res.Body)
			res.Body.Close()
			conn.Close() // ends the write if the server did not read it all
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Error     string `json:"error"`
				Limit     int64  `json:"limit"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(out, &e); err != nil || res.StatusCode != http.StatusRequestEntityTooLarge ||
				e.Error != "request body too large" || e.Limit != maxBody || e.RequestID != res.Header.Get("X-Request-Id") || e.RequestID == "" {
				t.Errorf("got %d %s (%v); want 413 with the limit %d and the request id", res.StatusCode, out, err, maxBody)
			}
		})
	}
	if n := count(t, st, "users", "email = $1", "big@example.com"); n != 0 {
		t.Errorf("%d users with the big body's email; want none", n)
	}
}
