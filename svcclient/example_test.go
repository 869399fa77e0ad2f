package svcclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/herdhq/herd/svcclient"
)

// A users service, behind svcclient.Middleware, as herd's gateway would
// reach it under /api/users.
func usersService() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		id := r.PathValue("id")
		if id != "usr_1" {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"error":      "Not Found",
				"reason":     fmt.Sprintf("no user with id %q", id),
				"request_id": svcclient.RequestID(r.Context()),
			})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"id": id, "name": "Ada"})
	})
	return svcclient.Middleware(mux)
}

func ExampleClient_Get() {
	gateway := httptest.NewServer(usersService())
	defer gateway.Close()

	peers := svcclient.New(svcclient.Gateway(gateway.URL+"/api"), svcclient.WithTimeout(2*time.Second))
	ctx := svcclient.WithRequestID(context.Background(), "req-42")

	var u struct{ ID, Name string }
	if err := peers.Get(ctx, "users", "/usr_1", &u); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(u.ID, u.Name)

	err := peers.Get(ctx, "users", "/usr_x", &u)
	fmt.Println(svcclient.StatusOf(err))
	var e *svcclient.Error
	if errors.As(err, &e) {
		fmt.Println(e)
	}
	// Output:
	// usr_1 Ada
	// 404
	// users: 404 Not Found: no user with id "usr_x" (request req-42)
}

func ExampleWithIdempotencyKey() {
	var attempts atomic.Int32
	payments := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"captured","key":%q}`, r.Header.Get("Idempotency-Key"))
	}))
	defer payments.Close()

	peers := svcclient.New(svcclient.Gateway(payments.URL))
	// The key lets the client retry the POST: payments charges once per key.
	ctx := svcclient.WithIdempotencyKey(context.Background(), "ord_7")
	var pay struct{ Status, Key string }
	err := peers.Post(ctx, "payments", "/", map[string]int{"amount_cents": 1250}, &pay)
	fmt.Println(err, attempts.Load(), pay.Status, pay.Key)
	// Output: <nil> 2 captured ord_7
}

func ExampleMiddleware() {
	h := svcclient.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, hasDeadline := r.Context().Deadline()
		fmt.Fprintln(w, svcclient.RequestID(r.Context()), hasDeadline)
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Request-Id", "abc")
	r.Header.Set("X-Request-Timeout-Ms", "1500")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Body)
	fmt.Print(string(body))
	fmt.Println(w.Header().Get("X-Request-Id"))
	// Output:
	// abc true
	// abc
}

func ExampleRegistry() {
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"services": [{"name": "users", "kind": "app", "healthy": 2, "instances": [
			{"id": "0", "url": "http://127.0.0.1:41001", "healthy": true, "state": "ready"},
			{"id": "1", "url": "http://127.0.0.1:41002", "healthy": false, "state": "backoff"},
			{"id": "2", "url": "http://127.0.0.1:41003", "healthy": true, "state": "ready"}]}]}`)
	}))
	defer admin.Close()

	r := svcclient.Registry(admin.URL, 2*time.Second)
	for range 3 {
		u, _ := r.Resolve(context.Background(), "users")
		fmt.Println(u)
	}
	_, err := r.Resolve(context.Background(), "orders")
	fmt.Println(svcclient.StatusOf(err))
	// Output:
	// http://127.0.0.1:41001
	// http://127.0.0.1:41003
	// http://127.0.0.1:41001
	// 404
}
