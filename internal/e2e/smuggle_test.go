package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// smuggling are requests whose framing two readers could read apart (the
// start of request smuggling), after the cases of public smuggling
// corpora; herd must refuse each (400, or 501 for a transfer coding it
// does not know, as RFC 9112 §6.1 says) and send none of it on.
var smuggling = []struct{ name, raw string }{
	{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"two differing Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"},
	{"a list in Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde"},
	{"chunked, identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
	{"chunked not last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n"},
	{"xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
	{"space before the colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"},
	{"bare LF in a header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nX-B: b\r\n\r\n"},
	{"NUL in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"},
	{"a control byte in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x0bb\r\n\r\n"},
	{"an invalid header name", "GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n"},
	{"no Host", "GET / HTTP/1.1\r\n\r\n"},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"},
	{"absolute-form with another Host", "GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"a negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"},
}

// badChunks are chunked bodies that break down mid-way. herd streams a
// request body to the instance as it arrives (NGINX's
// proxy_request_buffering off), so the head may reach the instance; the
// body must never arrive whole, and the client gets a 400, not a 502.
var badChunks = []struct{ name, raw string }{
	{"a chunk size with a sign", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+4\r\nabcd\r\n0\r\n\r\n"},
	{"a chunk with a bad size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n"},
	{"a chunk longer than its size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n"},
}

// TestSmugglingIsRefused sends each case over a raw socket, as the first
// request of a connection, to herd with its default front (the fast path,
// whose h1 parser refuses them before anything is handed to net/http); an
// upstream that is a bare TCP listener in this test records whether a
// request ever reached it.
func TestSmugglingIsRefused(t *testing.T) {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	var reached, whole atomic.Int64 // requests whose head, and whose body too, arrived
	var last atomic.Value
	go func() {
		for {
			c, err := upstream.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				reached.Add(1)
				if _, err := io.Copy(io.Discard, req.Body); err == nil {
					whole.Add(1)
				}
				last.Store(req.Method + " " + req.RequestURI + fmt.Sprintf(" %v", req.Header))
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP
upstreams:
  raw:
    servers: [{url: "http://%s"}]
routes:
  - path: /
    to: raw
`, upstream.Addr()))
	send := func(t *testing.T, raw string) int {
		t.Helper()
		c, err := net.DialTimeout("tcp", h.public, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, raw)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("no answer: %v", err)
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range smuggling {
		t.Run(tc.name, func(t *testing.T) {
			before := reached.Load()
			if status := send(t, tc.raw); status != 400 && status != 501 {
				t.Errorf("answered %d; want 400 (501 for an unknown transfer coding)", status)
			}
			if reached.Load() != before {
				t.Errorf("reached the instance as %v", last.Load())
			}
		})
	}
	for _, tc := range badChunks {
		t.Run(tc.name, func(t *testing.T) {
			before := whole.Load()
			if status := send(t, tc.raw); status != 400 {
				t.Errorf("answered %d; want 400 (the client's body, not the instance, failed)", status)
			}
			if whole.Load() != before {
				t.Errorf("the instance read the whole malformed body as %v", last.Load())
			}
		})
	}
}
