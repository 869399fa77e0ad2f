package svcclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seen records what a test server was sent.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (s *seen) add(r *http.Request) int {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(b))) // for the handler
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	s.body = append(s.body, string(b))
	return len(s.reqs)
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *seen) req(i int) (*http.Request, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[i], s.body[i]
}

// serve starts a server whose handler answers the n-th request (from 1).
func serve(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, s.add(r))
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fast keeps retries and breakers out of a test's way unless it is about them.
func fast(opts ...Option) []Option {
	return append([]Option{WithTimeout(5 * time.Second), WithBreaker(1000, time.Second)}, opts...)
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

func TestGatewayRoundTrip(t *testing.T) {
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/users/":
			var u user
			if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
				writeJSON(w, 400, map[string]string{"error": "Bad Request", "reason": err.Error()})
				return
			}
			u.ID = "usr_1"
			writeJSON(w, http.StatusCreated, u)
		case r.Method == http.MethodGet && r.URL.Path == "/api/users/usr_1":
			writeJSON(w, 200, user{ID: "usr_1", Email: "a@b.c?" + r.URL.RawQuery})
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	})
	c := New(Gateway(srv.URL+"/api/"), fast()...)
	ctx := context.Background()

	var created user
	if err := c.Post(ctx, "users", "/", user{Email: "a@b.c"}, &created); err != nil {
		t.Fatal(err)
	}
	if created != (user{ID: "usr_1", Email: "a@b.c"}) {
		t.Errorf("Post decoded %+v", created)
	}
	r, body := s.req(0)
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept %q", got)
	}
	if body != `{"id":"","email":"a@b.c"}` {
		t.Errorf("body %s", body)
	}

	var got user
	if err := c.Get(ctx, "users", "/usr_1?fields=email", &got); err != nil {
		t.Fatal(err)
	}
	if got.Email != "a@b.c?fields=email" {
		t.Errorf("Get decoded %+v", got)
	}
	if r, _ := s.req(1); r.Header.Get("Content-Type") != "" {
		t.Errorf("GET without body has Content-Type %q", r.Header.Get("Content-Type"))
	}

	// A 204 leaves out alone.
	keep := user{ID: "keep"}
	if err := c.Do(ctx, http.MethodDelete, "users", "/usr_1", nil, &keep); err != nil {
		t.Fatal(err)
	}
	if keep.ID != "keep" {
		t.Errorf("204 changed out to %+v", keep)
	}
}

func TestBadCalls(t *testing.T) {
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		_, _ = io.WriteString(w, "not json")
	})
	c := New(Gateway(srv.URL), fast()...)
	ctx := context.Background()
	tests := []struct {
		name, service, path string
		in                  any
		want                string
	}{
		{"relative path", "users", "usr_1", nil, `path "usr_1" does not start with /`},
		{"no service", "", "/x", nil, `invalid service name ""`},
		{"service with slash", "a/b", "/x", nil, `invalid service name "a/b"`},
		{"unencodable body", "users", "/x", func() {}, "encoding the request body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Do(ctx, http.MethodPut, tt.service, tt.path, tt.in, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "svcclient: PUT ") {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if n := s.count(); n != 0 {
		t.Errorf("server saw %d requests", n)
	}

	// A 2xx that does not decode is not retried.
	var out user
	err := c.Get(ctx, "users", "/x", &out)
	if err == nil || !strings.Contains(err.Error(), "decoding the response body") {
		t.Errorf("err = %v", err)
	}
	if n := s.count(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestRequestIDPropagation(t *testing.T) {
	type served struct {
		ctxID, headerID, timeoutMs string
		deadline                   time.Duration
		hasDeadline                bool
	}
	var mu sync.Mutex
	var got []served
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dl, ok := r.Context().Deadline()
		mu.Lock()
		got = append(got, served{RequestID(r.Context()), r.Header.Get("X-Request-Id"), r.Header.Get("X-Request-Timeout-Ms"), time.Until(dl), ok})
		n := len(got)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway) // so the second call is a retry
			return
		}
		writeJSON(w, 200, map[string]string{})
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := New(Gateway(srv.URL), fast(WithTimeout(3*time.Second))...)

	// The id in ctx is sent, and the server's ctx has it.
	ctx := WithRequestID(context.Background(), "req-123")
	if err := c.Get(ctx, "users", "/", nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 2 || got[0].ctxID != "req-123" || got[1].ctxID != "req-123" || got[0].headerID != "req-123" {
		t.Errorf("server saw %+v, want the id req-123 twice", got)
	}
	got = got[:0]
	mu.Unlock()
	// Without one, the call makes one, the same for each attempt.
	if err := c.Get(context.Background(), "users", "/", nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(got))
	}
	if got[0].ctxID == "" || got[0].ctxID != got[1].ctxID || got[0].headerID != got[0].ctxID {
		t.Errorf("attempts were sent ids %q and %q", got[0].ctxID, got[1].ctxID)
	}
	for _, s := range got {
		ms, err := strconv.Atoi(s.timeoutMs)
		if err != nil || ms <= 0 || ms > 3000 {
			t.Errorf("X-Request-Timeout-Ms %q, want 1..3000", s.timeoutMs)
		}
		if !s.hasDeadline || s.deadline > 3*time.Second {
			t.Errorf("server ctx deadline in %v (set %v), want within 3s", s.deadline, s.hasDeadline)
		}
	}
}

func TestMiddleware(t *testing.T) {
	long := strings.Repeat("x", 129)
	tests := []struct {
		name, id, timeout string
		keepID            bool
		deadline          time.Duration // 0: none expected
	}{
		{name: "id kept", id: "abc-123", keepID: true},
		{name: "no id", id: ""},
		{name: "id too long", id: long},
		{name: "id with space", id: "a b"},
		{name: "timeout", id: "t1", keepID: true, timeout: "1500", deadline: 1500 * time.Millisecond},
		{name: "zero timeout", timeout: "0"},
		{name: "negative timeout", timeout: "-5"},
		{name: "junk timeout", timeout: "soon"},
		{name: "huge timeout", timeout: "99999999999999999", deadline: 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctxID, headerID string
			var dl time.Time
			var hasDL bool
			h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctxID, headerID = RequestID(r.Context()), r.Header.Get("X-Request-Id")
				dl, hasDL = r.Context().Deadline()
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.id != "" {
				r.Header.Set("X-Request-Id", tt.id)
			}
			if tt.timeout != "" {
				r.Header.Set("X-Request-Timeout-Ms", tt.timeout)
			}
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, r)
			end := time.Now()

			echoed := w.Header().Get("X-Request-Id")
			if ctxID == "" || echoed != ctxID || headerID != ctxID {
				t.Errorf("ctx id %q, header id %q, echoed %q", ctxID, headerID, echoed)
			}
			if tt.keepID && ctxID != tt.id {
				t.Errorf("id %q, want %q", ctxID, tt.id)
			}
			if !tt.keepID && (ctxID == tt.id || len(ctxID) != 32) {
				t.Errorf("id %q, want a fresh one", ctxID)
			}
			if tt.id != "" && r.Header.Get("X-Request-Id") != tt.id {
				t.Errorf("the caller's request was changed")
			}
			switch {
			case tt.deadline == 0 && hasDL:
				t.Errorf("deadline set, want none")
			case tt.deadline != 0 && (!hasDL || dl.Before(start.Add(tt.deadline)) || dl.After(end.Add(tt.deadline))):
				t.Errorf("deadline %v after start (set %v), want %v", dl.Sub(start), hasDL, tt.deadline)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	failThenOK := func(fails, status int) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if n <= fails {
				writeJSON(w, status, map[string]string{"error": http.StatusText(status), "reason": "try " + strconv.Itoa(n)})
				return
			}
			writeJSON(w, 200, map[string]string{"id": "ok"})
		}
	}
	tests := []struct {
		name     string
		method   string
		key      string // idempotency key
		opts     []Option
		handler  func(w http.ResponseWriter, r *http.Request, n int)
		requests int
		status   int // StatusOf the error; 0 for success
	}{
		{"GET 503 twice then 200", "GET", "", nil, failThenOK(2, 503), 3, 0},
		{"GET 502 once then 200", "GET", "", nil, failThenOK(1, 502), 2, 0},
		{"GET 504 always", "GET", "", nil, failThenOK(9, 504), 3, 504},
		{"GET 503 with one attempt", "GET", "", []Option{WithRetries(1)}, failThenOK(9, 503), 1, 503},
		{"GET 503 with five attempts", "GET", "", []Option{WithRetries(5)}, failThenOK(4, 503), 5, 0},
		{"PUT 503 once", "PUT", "", nil, failThenOK(1, 503), 2, 0},
		{"DELETE 503 once", "DELETE", "", nil, failThenOK(1, 503), 2, 0},
		{"POST 503 is not retried", "POST", "", nil, failThenOK(2, 503), 1, 503},
		{"PATCH 502 is not retried", "PATCH", "", nil, failThenOK(2, 502), 1, 502},
		{"POST 503 with key", "POST", "ord_1", nil, failThenOK(2, 503), 3, 0},
		{"GET 500 is not retried", "GET", "", nil, failThenOK(2, 500), 1, 500},
		{"GET 404 is not retried", "GET", "", nil, failThenOK(2, 404), 1, 404},
		{"GET 409 with key is not retried", "GET", "k", nil, failThenOK(2, 409), 1, 409},
		{"GET 429 without Retry-After", "GET", "", nil, failThenOK(1, 429), 2, 0},
		{"GET 429 Retry-After 0", "GET", "", nil, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(429)
				return
			}
			writeJSON(w, 200, map[string]string{})
		}, 2, 0},
		{"GET 429 Retry-After 60 stops", "GET", "", nil, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(429)
		}, 1, 429},
		{"GET dropped connection", "GET", "", nil, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
				return
			}
			writeJSON(w, 200, map[string]string{})
		}, 2, 0},
		{"POST dropped connection is not retried", "POST", "", nil, func(w http.ResponseWriter, r *http.Request, n int) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, s := serve(t, tt.handler)
			c := New(Gateway(srv.URL), fast(tt.opts...)...)
			ctx := context.Background()
			if tt.key != "" {
				ctx = WithIdempotencyKey(ctx, tt.key)
			}
			var in any
			if tt.method == "POST" || tt.method == "PUT" {
				in = map[string]int{"amount": 5}
			}
			err := c.Do(ctx, tt.method, "svc", "/things", in, nil)
			if got := StatusOf(err); got != tt.status {
				t.Errorf("StatusOf(%v) = %d, want %d", err, got, tt.status)
			}
			if tt.status == 0 && tt.requests > 1 && err != nil {
				t.Errorf("err = %v", err)
			}
			if tt.name == "POST dropped connection is not retried" && err == nil {
				t.Errorf("err = nil")
			}
			if got := s.count(); got != tt.requests {
				t.Errorf("server saw %d requests, want %d", got, tt.requests)
			}
			// Every attempt sends the whole body and the key.
			for i := range s.count() {
				r, body := s.req(i)
				if in != nil && body != `{"amount":5}` {
					t.Errorf("attempt %d sent body %q", i+1, body)
				}
				if got := r.Header.Get("Idempotency-Key"); got != tt.key {
					t.Errorf("attempt %d sent Idempotency-Key %q, want %q", i+1, got, tt.key)
				}
			}
		})
	}
}

func TestErrorDecoding(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	tests := []struct {
		name    string
		status  int
		ctype   string
		body    string
		want    Error
		wantMsg string
	}{
		{
			name: "JSON", status: 400, body: `{"error":"Bad Request","reason":"email must contain @","field":"email","request_id":"r1"}`,
			want:    Error{Service: "users", Status: 400, Message: "Bad Request", Reason: "email must contain @", Field: "email", RequestID: "r1"},
			wantMsg: "users: 400 Bad Request: email must contain @ (request r1)",
		},
		{
			name: "herd's gateway", status: 503, body: `{"error":"Service Unavailable","app":"payments","reason":"no instance of app \"payments\" was ready within 5s","request_id":"r2"}`,
			want:    Error{Service: "users", Status: 503, Message: "Service Unavailable", Reason: `no instance of app "payments" was ready within 5s`, RequestID: "r2"},
			wantMsg: `users: 503 Service Unavailable: no instance of app "payments" was ready within 5s (request r2)`,
		},
		{
			name: "text", status: 404, body: "404 page not found\n",
			want:    Error{Service: "users", Status: 404, Message: "Not Found", Reason: "404 page not found", RequestID: "sent"},
			wantMsg: "users: 404 Not Found: 404 page not found (request sent)",
		},
		{
			name: "long text", status: 418, body: long,
			want: Error{Service: "users", Status: 418, Message: "I'm a teapot", Reason: long[:200], RequestID: "sent"},
		},
		{
			name: "empty", status: 409, body: "",
			want:    Error{Service: "users", Status: 409, Message: "Conflict", RequestID: "sent"},
			wantMsg: "users: 409 Conflict (request sent)",
		},
		{
			name: "field only", status: 422, body: `{"field":"qty"}`,
			want:    Error{Service: "users", Status: 422, Message: "Unprocessable Entity", Field: "qty", RequestID: "sent"},
			wantMsg: "users: 422 Unprocessable Entity: field qty (request sent)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			c := New(Gateway(srv.URL), fast(WithRetries(1))...)
			err := c.Get(WithRequestID(context.Background(), "sent"), "users", "/usr_x", nil)
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("err = %v (%T), want an *Error", err, err)
			}
			if *e != tt.want {
				t.Errorf("got  %+v\nwant %+v", *e, tt.want)
			}
			if tt.wantMsg != "" && e.Error() != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", e.Error(), tt.wantMsg)
			}
			if want := "svcclient: GET users /usr_x: " + e.Error(); err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
			if s.count() != 1 {
				t.Errorf("server saw %d requests", s.count())
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("connection refused"), 0},
		{&Error{Status: 404}, 404},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", &Error{Status: 402})), 402},
		{fmt.Errorf("x: %w for users", ErrCircuitOpen), 503},
		{context.DeadlineExceeded, 0},
	}
	for _, tt := range tests {
		if got := StatusOf(tt.err); got != tt.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestBreaker(t *testing.T) {
	var healthy atomic.Bool
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if healthy.Load() {
			writeJSON(w, 200, map[string]string{})
			return
		}
		writeJSON(w, 500, map[string]string{"error": "Internal Server Error"})
	})
	const openFor = 100 * time.Millisecond
	c := New(Gateway(srv.URL), WithRetries(1), WithBreaker(3, openFor))
	ctx := context.Background()

	for i := range 3 {
		if got := StatusOf(c.Get(ctx, "users", "/", nil)); got != 500 {
			t.Fatalf("call %d: status %d, want 500", i+1, got)
		}
	}
	// Open: fails fast, without a request.
	err := c.Get(ctx, "users", "/", nil)
	if !errors.Is(err, ErrCircuitOpen) || StatusOf(err) != 503 || !strings.Contains(err.Error(), "users") {
		t.Fatalf("err = %v, want the open circuit of users", err)
	}
	if n := s.count(); n != 3 {
		t.Fatalf("server saw %d requests, want 3", n)
	}
	// Other services have their own breaker.
	if err := c.Get(ctx, "products", "/", nil); StatusOf(err) != 500 {
		t.Errorf("products: err = %v, want a 500", err)
	}

	// After openFor one call goes through, and its success closes the breaker.
	healthy.Store(true)
	time.Sleep(openFor)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = c.Get(ctx, "users", "/", nil)
		if err == nil || !errors.Is(err, ErrCircuitOpen) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after openFor: %v", err)
	}
	for range 5 {
		if err := c.Get(ctx, "users", "/", nil); err != nil {
			t.Fatalf("closed again: %v", err)
		}
	}
}

func TestBreakerIgnores4xx(t *testing.T) {
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 404, map[string]string{"error": "Not Found"})
	})
	c := New(Gateway(srv.URL), WithBreaker(2, time.Minute))
	for range 10 {
		if err := c.Get(context.Background(), "users", "/", nil); StatusOf(err) != 404 || errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("err = %v, want a 404", err)
		}
	}
	if n := s.count(); n != 10 {
		t.Errorf("server saw %d requests, want 10", n)
	}
}

func TestBreakerCountsRetries(t *testing.T) {
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(503)
	})
	// Each attempt counts: the second call's first attempt trips it, and
	// its retry fails fast.
	c := New(Gateway(srv.URL), WithRetries(3), WithBreaker(4, time.Minute))
	if err := c.Get(context.Background(), "users", "/", nil); StatusOf(err) != 503 || errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("first call: %v", err)
	}
	if err := c.Get(context.Background(), "users", "/", nil); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("second call: %v, want an open circuit", err)
	}
	if n := s.count(); n != 4 {
		t.Errorf("server saw %d requests, want 4", n)
	}
}

func TestDeadline(t *testing.T) {
	release := make(chan struct{})
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release) // before srv.Close, which waits for handlers

	tests := []struct {
		name string
		opts []Option
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"WithTimeout", []Option{WithTimeout(time.Second)}, func() (context.Context, context.CancelFunc) {
			return context.Background(), func() {}
		}},
		{"ctx deadline", nil, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.count()
			c := New(Gateway(srv.URL), fast(append(tt.opts, WithRetries(5))...)...)
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			err := c.Get(ctx, "slow", "/", nil)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %v", took)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a deadline", err)
			}
			if n := s.count() - before; n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

// TestCallerDeadlineDoesNotTripBreaker: a caller's own deadline running
// out says nothing about the service, while the client's timeout does.
func TestCallerDeadlineDoesNotTripBreaker(t *testing.T) {
	release := make(chan struct{})
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	call := func(c *Client, ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		return c.Get(ctx, "slow", "/", nil)
	}

	c := New(Gateway(srv.URL), WithTimeout(10*time.Second), WithBreaker(1, time.Minute), WithRetries(1))
	for i := range 3 {
		if err := call(c, context.Background()); errors.Is(err, ErrCircuitOpen) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d with the caller's deadline: %v; want the deadline, not an open circuit", i, err)
		}
	}
	if n := s.count(); n != 3 {
		t.Errorf("server saw %d requests; want all 3", n)
	}

	own := New(Gateway(srv.URL), WithTimeout(100*time.Millisecond), WithBreaker(1, time.Minute), WithRetries(1))
	own.Get(context.Background(), "slow", "/", nil)
	if err := own.Get(context.Background(), "slow", "/", nil); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("after the client's own timeout: %v; want the circuit open", err)
	}
}

func TestDeadlineStopsRetries(t *testing.T) {
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(100 * time.Millisecond)
		w.WriteHeader(503)
	})
	c := New(Gateway(srv.URL), fast(WithRetries(100), WithTimeout(400*time.Millisecond))...)
	start := time.Now()
	err := c.Get(context.Background(), "users", "/", nil)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	if err == nil {
		t.Fatal("err = nil")
	}
	// Whichever ended it, the last answer is reported.
	if StatusOf(err) != 503 && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if n := s.count(); n < 1 || n > 4 {
		t.Errorf("server saw %d requests, want 1 to 4", n)
	}
}

func TestCanceledCallIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		cancel()
		w.WriteHeader(503)
	})
	c := New(Gateway(srv.URL), fast()...)
	err := c.Get(ctx, "users", "/", nil)
	if err == nil {
		t.Fatal("err = nil")
	}
	if n := s.count(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestConcurrentCalls(t *testing.T) {
	srv, s := serve(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n%3 == 0 {
			w.WriteHeader(503)
			return
		}
		writeJSON(w, 200, map[string]string{"path": r.URL.Path})
	})
	c := New(Gateway(srv.URL), fast(WithRetries(5))...)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			svc := fmt.Sprintf("svc%d", i%4)
			var out map[string]string
			if err := c.Get(context.Background(), svc, "/x", &out); err != nil {
				errs <- err
			} else if out["path"] != "/"+svc+"/x" {
				errs <- fmt.Errorf("got %v", out)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.count() < 64 {
		t.Errorf("server saw %d requests", s.count())
	}
}
