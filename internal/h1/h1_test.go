package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, raw string
		want      error
		target    string
		length    int64
		close     bool
	}{
		{"plain GET", "GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: wrk\r\n\r\n", nil, "/a?b=c", 0, false},
		{"POST with a body", "POST /p HTTP/1.1\r\nHost: x:80\r\nContent-Length: 5\r\n\r\nhello", nil, "/p", 5, false},
		{"Connection: close", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: Close\r\n\r\n", nil, "/", 0, true},
		{"incomplete", "GET / HTTP/1.1\r\nHost: x\r\n", ErrIncomplete, "", 0, false},
		{"CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", ErrAmbiguousLength, "", 0, false},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", ErrAmbiguousLength, "", 0, false},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", ErrUnsupported, "", 0, false},
		{"two equal lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", ErrUnsupported, "", 0, false},
		{"two differing lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ErrLength, "", 0, false},
		{"a list as length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n", ErrLength, "", 0, false},
		{"negative length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", ErrLength, "", 0, false},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", ErrUnsupported, "", 0, false},
		{"no Host", "GET / HTTP/1.1\r\nA: b\r\n\r\n", ErrHosts, "", 0, false},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrHosts, "", 0, false},
		{"odd Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", ErrUnsupported, "", 0, false},
		{"absolute target", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", ErrUnsupported, "", 0, false},
		{"absolute target, another Host", "GET http://evil.example/a HTTP/1.1\r\nHost: x\r\n\r\n", ErrAuthority, "", 0, false},
		{"absolute target, userinfo", "GET http://x@evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n", ErrAuthority, "", 0, false},
		{"escaped target", "GET /a%2fb HTTP/1.1\r\nHost: x\r\n\r\n", ErrUnsupported, "", 0, false},
		{"upgrade", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", ErrUnsupported, "", 0, false},
		{"expect", "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", ErrUnsupported, "", 0, false},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n", ErrObsFold, "", 0, false},
		{"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\tc\r\n\r\n", ErrObsFold, "", 0, false},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", ErrFieldName, "", 0, false},
		{"space in a name", "GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", ErrFieldName, "", 0, false},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", ErrBareLF, "", 0, false},
		{"a bare LF inside a CRLF head", "GET / HTTP/1.1\r\nHost: x\r\nA: b\nC: d\r\n\r\n", ErrBareLF, "", 0, false},
		{"control in value", "GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n", ErrFieldValue, "", 0, false},
		{"vertical tab in value", "GET / HTTP/1.1\r\nHost: x\r\nA: b\x0bc\r\n\r\n", ErrFieldValue, "", 0, false},
		{"garbage", "HELLO\r\n\r\n", ErrUnsupported, "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			err := ParseRequest([]byte(tc.raw), &r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v; want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if string(r.Target) != tc.target || r.ContentLength != tc.length || r.Close != tc.close {
				t.Errorf("target %q length %d close %v; want %q %d %v", r.Target, r.ContentLength, r.Close, tc.target, tc.length, tc.close)
			}
			if r.HeadLen != strings.Index(tc.raw, "\r\n\r\n")+4 {
				t.Errorf("HeadLen %d", r.HeadLen)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name, raw string
		status    int // 0: an error
		length    int64
		chunked   bool
		close     bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n", 200, 13, false, false},
		{"chunked", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", 201, -1, true, false},
		{"no reason", "HTTP/1.1 204\r\n\r\n", 204, -1, false, false},
		{"until close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 200, -1, false, true},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 200, 1, false, true},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", 200, 1, false, false},
		{"chunked beats length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 200, -1, true, true},
		{"two lengths that differ", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 0, 0, false, false},
		{"gzip transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 0, false, false},
		{"not HTTP", "ICY 200 OK\r\n\r\n", 0, 0, false, false},
		{"bad code", "HTTP/1.1 2x0 OK\r\n\r\n", 0, 0, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			err := ParseResponse([]byte(tc.raw), &r)
			if tc.status == 0 {
				var e *Error
				if !errors.As(err, &e) || e.Status != 502 {
					t.Fatalf("error %v; want a 502 *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || r.ContentLength != tc.length || r.Chunked != tc.chunked || r.Close != tc.close {
				t.Errorf("got %d %d %v %v; want %d %d %v %v", r.Status, r.ContentLength, r.Chunked, r.Close, tc.status, tc.length, tc.chunked, tc.close)
			}
		})
	}
}

// TestChunkedEnds feeds chunked bodies, with extensions and trailers, in
// every split into two reads, and checks the end is found exactly.
func TestChunkedEnds(t *testing.T) {
	bodies := []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
	}
	const next = "HTTP/1.1 200 OK\r\n"
	for _, body := range bodies {
		data := []byte(body + next)
		for split := 0; split <= len(data); split++ {
			var c Chunked
			n1, done, err := c.Scan(data[:split])
			if err != nil {
				t.Fatalf("%q split %d: %v", body, split, err)
			}
			total := n1
			if !done {
				n2, done2, err := c.Scan(data[split:])
				if err != nil || !done2 {
					t.Fatalf("%q split %d: done %v err %v", body, split, done2, err)
				}
				total += n2
			}
			if total != len(body) {
				t.Fatalf("%q split %d: body of %d bytes; want %d", body, split, total, len(body))
			}
		}
	}
	for _, bad := range []string{"x\r\n", "5\r\nhelloX", "5\nhello", "\r\n", "fffffffffffffffff\r\n"} {
		var c Chunked
		if _, _, err := c.Scan([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzParseRequest checks the parser against net/http: a head it accepts
// must be one net/http reads the same way (method, target, host, fields,
// length), so the fast path never sees a request differently from the rest
// of herd.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /a?b HTTP/1.1\r\nHost: x:1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"))
	f.Add([]byte("PUT /x HTTP/1.1\r\nHost: [::1]\r\nX-A:  b \r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r Request
		if err := ParseRequest(raw, &r); err != nil {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("accepted a head net/http refuses (%v): %q", err, raw)
		}
		if req.Method != string(r.Method) || req.RequestURI != string(r.Target) || req.Host != string(r.Host) {
			t.Fatalf("read %s %s %s; net/http %s %s %s", r.Method, r.Target, r.Host, req.Method, req.RequestURI, req.Host)
		}
		if req.ContentLength != r.ContentLength && !(req.ContentLength == -1 && r.ContentLength == 0) {
			t.Fatalf("length %d; net/http %d", r.ContentLength, req.ContentLength)
		}
		if req.Close != r.Close {
			t.Fatalf("close %v; net/http %v", r.Close, req.Close)
		}
		for _, fl := range r.Fields {
			name := http.CanonicalHeaderKey(string(fl.Name))
			if name == "Host" {
				continue
			}
			if !containsString(req.Header.Values(name), string(fl.Value)) {
				t.Fatalf("field %s: %q; net/http has %q", name, fl.Value, req.Header.Values(name))
			}
		}
		if r.HeadLen > len(raw) {
			t.Fatalf("HeadLen %d past the input", r.HeadLen)
		}
	})
}

// FuzzChunked checks the scanner against net/http's chunked reader: where
// one finds a complete body, the other agrees on it.
func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), 3)
	f.Add([]byte("3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\nrest"), 7)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		var c Chunked
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		n, done, err := c.Scan(data[:split])
		if err == nil && !done {
			var n2 int
			n2, done, err = c.Scan(data[split:])
			n += n2
		}
		if err != nil || !done {
			return
		}
		// net/http must decode data[:n] to its end without error.
		resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + string(data[:n])
		res, rerr := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if _, rerr = io.Copy(io.Discard, res.Body); rerr != nil {
			t.Fatalf("net/http refuses a body the scanner accepts: %v: %q", rerr, data[:n])
		}
	})
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzParseResponse checks the response parser against net/http's: a head
// it accepts, net/http accepts too, and both agree on status, framing and
// whether the connection closes.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r Response
		if err := ParseResponse(raw, &r); err != nil {
			return
		}
		if r.HeadLen > len(raw) {
			t.Fatalf("HeadLen %d past the input", r.HeadLen)
		}
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw[:r.HeadLen])), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("accepted a head net/http refuses (%v): %q", err, raw)
		}
		defer res.Body.Close()
		if res.StatusCode != r.Status {
			t.Fatalf("status %d; net/http %d", r.Status, res.StatusCode)
		}
		chunked := len(res.TransferEncoding) > 0 && res.TransferEncoding[0] == "chunked"
		if chunked != r.Chunked {
			t.Fatalf("chunked %v; net/http %v (%q)", r.Chunked, chunked, raw)
		}
		bodyless := r.Status/100 == 1 || r.Status == 204 || r.Status == 304
		if !r.Chunked && !bodyless && res.ContentLength != r.ContentLength {
			t.Fatalf("length %d; net/http %d (%q)", r.ContentLength, res.ContentLength, raw)
		}
		// Both framings: the parser closes the connection after it (RFC
		// 9112 §6.1 asks that of an intermediary); net/http does not.
		both := r.Chunked && len(Get(r.Fields, "content-length")) > 0
		// Close says what the head says; a body that runs to the close
		// (no length, not chunked) is the caller's to see, as net/http
		// folds both into Close.
		untilClose := !r.Chunked && r.ContentLength < 0
		if !bodyless && !both && res.Close != (r.Close || untilClose) {
			t.Fatalf("close %v, until close %v; net/http %v (%q)", r.Close, untilClose, res.Close, raw)
		}
		for _, fl := range r.Fields {
			name := http.CanonicalHeaderKey(string(fl.Name))
			if name == "Transfer-Encoding" || name == "Content-Length" || name == "Connection" {
				continue // net/http moves them to fields of Response
			}
			if !containsString(res.Header.Values(name), string(fl.Value)) {
				t.Fatalf("field %s: %q; net/http has %q", name, fl.Value, res.Header.Values(name))
			}
		}
	})
}
