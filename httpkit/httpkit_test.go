package httpkit

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// The stack as New builds it: each layer sees what the order promises.
func TestNew(t *testing.T) {
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	mw, err := New(Options{Logger: logger, BodyLimit: BodyLimitOptions{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	page := strings.Repeat("<li>a product</li>\n", 200)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), 400)
		}
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	srv := serve(t, mw(mux))

	first := get(t, srv.URL+"/page", "Accept-Encoding", "gzip")
	tag := first.header.Get("ETag")
	tests := []struct {
		name       string
		res        result
		wantStatus int
		wantEnc    string
		wantTag    string
		check      func(t *testing.T, r result)
	}{
		{name: "page: gzip, weak tag of the content", res: first, wantStatus: 200, wantEnc: "gzip", wantTag: WeakETag([]byte(page)),
			check: func(t *testing.T, r result) {
				if string(r.body) != page {
					t.Errorf("page body differs after gunzip")
				}
			}},
		{name: "same tag for an identity client", res: get(t, srv.URL+"/page"), wantStatus: 200, wantTag: tag},
		{name: "If-None-Match: 304", res: get(t, srv.URL+"/page", "Accept-Encoding", "gzip", "If-None-Match", tag), wantStatus: 304, wantTag: tag},
		{name: "X-No-Compression", res: get(t, srv.URL+"/page", "Accept-Encoding", "gzip", "X-No-Compression", "1"), wantStatus: 200, wantTag: tag},
		{name: "413 JSON, with headers", res: do(t, mustRequest(t, "POST", srv.URL+"/upload", onlyReader{strings.NewReader(strings.Repeat("x", 5000))})),
			wantStatus: 413, check: func(t *testing.T, r result) {
				if m := jsonBody(t, r); m["limit"] != float64(100) || m["request_id"] != r.header.Get("X-Request-Id") {
					t.Errorf("413 body %s", r.body)
				}
			}},
		{name: "500 JSON, with headers", res: get(t, srv.URL+"/panic"), wantStatus: 500, check: func(t *testing.T, r result) {
			if m := jsonBody(t, r); m["error"] != "internal server error" {
				t.Errorf("500 body %s", r.body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.res
			if r.status != tt.wantStatus {
				t.Errorf("status %d; want %d", r.status, tt.wantStatus)
			}
			if got := r.header.Get("Content-Encoding"); got != tt.wantEnc {
				t.Errorf("Content-Encoding %q; want %q", got, tt.wantEnc)
			}
			if got := r.header.Get("ETag"); got != tt.wantTag {
				t.Errorf("ETag %q; want %q", got, tt.wantTag)
			}
			if r.header.Get("X-Frame-Options") != "SAMEORIGIN" || r.header.Get("Content-Security-Policy") == "" {
				t.Errorf("security headers missing: %v", r.header)
			}
			if len(r.header.Get("X-Request-Id")) != 32 {
				t.Errorf("X-Request-Id %q; want a made one", r.header.Get("X-Request-Id"))
			}
			if r.header.Get("X-Powered-By") != "" {
				t.Errorf("X-Powered-By %q", r.header.Get("X-Powered-By"))
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
	// One access-log line per request, the failures included, and the panic.
	if n := strings.Count(logs.String(), `"msg":"request"`); n != len(tests) {
		t.Errorf("%d access-log lines; want %d:\n%s", n, len(tests), logs.String())
	}
	if !strings.Contains(logs.String(), `"status":413`) || !strings.Contains(logs.String(), `"status":500`) || !strings.Contains(logs.String(), `"panic":"boom"`) {
		t.Errorf("log lacks the 413, the 500 or the panic:\n%s", logs.String())
	}
}

func TestNewDisabled(t *testing.T) {
	mw, err := New(Options{
		RequestID: RequestIDOptions{Disabled: true}, AccessLog: AccessLogOptions{Disabled: true},
		Security: SecurityOptions{Disabled: true}, Compression: CompressionOptions{Disabled: true},
		ETag: ETagOptions{Disabled: true}, BodyLimit: BodyLimitOptions{Disabled: true}, Recover: RecoverOptions{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, mw(text("text/plain", 4096)))
	res := get(t, srv.URL, "Accept-Encoding", "gzip")
	for _, k := range []string{"Content-Encoding", "ETag", "X-Request-Id", "X-Frame-Options"} {
		if v := res.header.Get(k); v != "" {
			t.Errorf("%s: %q with everything disabled", k, v)
		}
	}
}
