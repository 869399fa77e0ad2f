package httpkit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// onlyReader hides the length of a body, so the client sends it chunked.
type onlyReader struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	const limit = 1000
	// The handler reads the whole body and answers as most do: its own 400
	// when reading fails, the length otherwise.
	var called atomic.Int32
	readAll := func(w http.ResponseWriter, r *http.Request) {
		called.Add(1)
		data, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if !errors.As(err, &mbe) || mbe.Limit != limit {
				t.Errorf("read error %v; want *http.MaxBytesError{Limit: %d}", err, limit)
			}
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		io.WriteString(w, strings.Repeat("x", len(data)))
	}
	answersFirst := func(w http.ResponseWriter, r *http.Request) {
		called.Add(1)
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
		io.Copy(io.Discard, r.Body)
	}
	tests := []struct {
		name       string
		size       int
		chunked    bool
		handler    http.HandlerFunc
		wantStatus int
		wantCalled bool
	}{
		{name: "under, with length", size: 999, handler: readAll, wantStatus: 200, wantCalled: true},
		{name: "exactly the limit", size: limit, handler: readAll, wantStatus: 200, wantCalled: true},
		{name: "over by length: refused before the handler", size: limit + 1, handler: readAll, wantStatus: 413},
		{name: "chunked under", size: 999, chunked: true, handler: readAll, wantStatus: 200, wantCalled: true},
		{name: "chunked exactly the limit", size: limit, chunked: true, handler: readAll, wantStatus: 200, wantCalled: true},
		{name: "chunked over: the handler's 400 becomes the 413", size: 50_000, chunked: true, handler: readAll, wantStatus: 413, wantCalled: true},
		{name: "chunked over after the handler answered", size: 50_000, chunked: true, handler: answersFirst, wantStatus: 202, wantCalled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called.Store(0)
			srv := serve(t, BodyLimit(BodyLimitOptions{Limit: limit})(tt.handler))
			var body io.Reader = strings.NewReader(strings.Repeat("b", tt.size))
			if tt.chunked {
				body = onlyReader{body}
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
			res := do(t, req)
			if res.status != tt.wantStatus {
				t.Fatalf("status %d %q; want %d", res.status, res.body, tt.wantStatus)
			}
			if got := called.Load() > 0; got != tt.wantCalled {
				t.Errorf("handler called %v; want %v", got, tt.wantCalled)
			}
			switch res.status {
			case 413:
				m := jsonBody(t, res)
				if m["error"] != "request body too large" || m["limit"] != float64(limit) {
					t.Errorf("413 body %s; want error and limit %d", res.body, limit)
				}
			case 200:
				if len(res.body) != tt.size {
					t.Errorf("handler read %d bytes; want %d", len(res.body), tt.size)
				}
			}
		})
	}
}

// The 413 closes the connection (the rest of the body is unread); other
// answers keep it.
func TestBodyLimitClosesConnection(t *testing.T) {
	srv := serve(t, BodyLimit(BodyLimitOptions{Limit: 10})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	})))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, tt := range []struct {
		size      int
		wantClose bool
	}{{5, false}, {11, true}} {
		res, err := client.Post(srv.URL, "text/plain", strings.NewReader(strings.Repeat("b", tt.size)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.Close != tt.wantClose {
			t.Errorf("%d bytes: status %d, connection closed %v; want %v", tt.size, res.StatusCode, res.Close, tt.wantClose)
		}
	}
}

// The default limit is the seed's 10 MB: a body of exactly 10 MiB is
// read, a declared length over it is refused before any of it is sent.
func TestBodyLimitDefault(t *testing.T) {
	srv := serve(t, BodyLimit(BodyLimitOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n, err)
	})))
	res := do(t, mustRequest(t, http.MethodPost, srv.URL, strings.NewReader(strings.Repeat("b", 10<<20))))
	if res.status != 200 || string(res.body) != "10485760 <nil>" {
		t.Errorf("10 MiB: %d %q; want 200 and the whole body read", res.status, res.body)
	}

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", 10<<20+1)
	raw, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	if raw.StatusCode != 413 {
		t.Errorf("declared 10 MiB + 1: status %d; want 413 before the body is sent", raw.StatusCode)
	}
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
