package httpkit

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// serve runs h behind a real net/http server for the test.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// noRetryClient never resends a request and never decompresses on its own,
// so the test sees what the server sent.
func noRetryClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
}

type result struct {
	status int
	header http.Header
	body   []byte // decoded per Content-Encoding
	raw    int    // bytes on the wire
}

// do sends req and reads the whole answer, decoding gzip or zstd.
func do(t *testing.T, req *http.Request) result {
	t.Helper()
	res, err := noRetryClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	body := raw
	switch res.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gzip: %v", err)
		}
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("zstd: %v", err)
		}
	}
	return result{status: res.StatusCode, header: res.Header, body: body, raw: len(raw)}
}

func get(t *testing.T, url string, headers ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(t, req)
}

// jsonBody decodes r's body as a JSON object.
func jsonBody(t *testing.T, r result) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q; want application/json", ct)
	}
	return m
}

// text returns a handler answering n bytes of compressible text as ct.
func text(ct string, n int) http.Handler {
	body := strings.Repeat("herd serves every instance. ", n/28+1)[:n]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		io.WriteString(w, body)
	})
}

// lockedBuffer is a bytes.Buffer for a logger the server's goroutines
// write to while the test reads it. (The race detector cannot see that a
// line written before the answer went out precedes the client's read.)
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
