package httpkit

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestETag(t *testing.T) {
	body := strings.Repeat("a product list ", 100)
	tag := WeakETag([]byte(body))
	plain := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body[:len(body)/2])
		io.WriteString(w, body[len(body)/2:])
	}
	tests := []struct {
		name       string
		opts       ETagOptions
		method     string
		header     []string
		handler    http.HandlerFunc
		wantStatus int
		wantTag    string // "" means none
		wantBody   string
	}{
		{name: "200 GET gets a weak tag", method: "GET", handler: plain, wantStatus: 200, wantTag: tag, wantBody: body},
		{name: "If-None-Match matches: 304", method: "GET", header: []string{"If-None-Match", tag}, handler: plain, wantStatus: 304, wantTag: tag},
		{name: "strong form matches weakly", method: "GET", header: []string{"If-None-Match", strings.TrimPrefix(tag, "W/")}, handler: plain, wantStatus: 304, wantTag: tag},
		{name: "one of a list", method: "GET", header: []string{"If-None-Match", `"x", ` + tag + `, W/"y"`}, handler: plain, wantStatus: 304, wantTag: tag},
		{name: "star", method: "GET", header: []string{"If-None-Match", "*"}, handler: plain, wantStatus: 304, wantTag: tag},
		{name: "another tag: 200", method: "GET", header: []string{"If-None-Match", `W/"5-abc"`}, handler: plain, wantStatus: 200, wantTag: tag, wantBody: body},
		{name: "no-cache asks for the whole answer", method: "GET", header: []string{"If-None-Match", tag, "Cache-Control", "no-cache"}, handler: plain, wantStatus: 200, wantTag: tag, wantBody: body},
		{name: "HEAD gets GET's tag", method: "HEAD", handler: plain, wantStatus: 200, wantTag: tag},
		{name: "HEAD with no body: no tag", method: "HEAD", handler: func(w http.ResponseWriter, r *http.Request) {}, wantStatus: 200},
		{name: "POST: no tag", method: "POST", handler: plain, wantStatus: 200, wantBody: body},
		{name: "404: no tag", method: "GET", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			io.WriteString(w, body)
		}, wantStatus: 404, wantBody: body},
		{name: "over MaxBuffer: as it is, untagged", opts: ETagOptions{MaxBuffer: 100}, method: "GET", handler: plain, wantStatus: 200, wantBody: body},
		{name: "exactly MaxBuffer: tagged", opts: ETagOptions{MaxBuffer: len(body)}, method: "GET", handler: plain, wantStatus: 200, wantTag: tag, wantBody: body},
		{name: "a flush streams: untagged", method: "GET", handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, body[:10])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[10:])
		}, wantStatus: 200, wantBody: body},
		{name: "the handler's own ETag stays", method: "GET", header: []string{"If-None-Match", tag}, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v7"`)
			io.WriteString(w, body)
		}, wantStatus: 200, wantTag: `"v7"`, wantBody: body},
		{name: "empty 200: tagged", method: "GET", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) },
			wantStatus: 200, wantTag: WeakETag(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, ETag(tt.opts)(tt.handler))
			req, _ := http.NewRequest(tt.method, srv.URL, nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			res := do(t, req)
			if res.status != tt.wantStatus {
				t.Errorf("status %d; want %d", res.status, tt.wantStatus)
			}
			if got := res.header.Get("ETag"); got != tt.wantTag {
				t.Errorf("ETag %q; want %q", got, tt.wantTag)
			}
			if string(res.body) != tt.wantBody {
				t.Errorf("body %d bytes; want %d", len(res.body), len(tt.wantBody))
			}
			if res.status == 304 && res.header.Get("Content-Type") != "" {
				t.Errorf("304 with Content-Type %q", res.header.Get("Content-Type"))
			}
			if tt.wantTag != "" && res.status == 200 && tt.method == "GET" && res.header.Get("Content-Length") != strconv.Itoa(len(tt.wantBody)) {
				t.Errorf("Content-Length %q; want %d", res.header.Get("Content-Length"), len(tt.wantBody))
			}
		})
	}
}

// Every instance of an app must give one body one tag.
func TestWeakETagStable(t *testing.T) {
	tests := []struct{ body, want string }{
		{"", `W/"0-0"`},
		// CRC-64/XZ's published check value for "123456789".
		{"123456789", `W/"9-995dc9bbdf1939fa"`},
	}
	for _, tt := range tests {
		if got := WeakETag([]byte(tt.body)); got != tt.want {
			t.Errorf("WeakETag(%q) = %s; want %s", tt.body, got, tt.want)
		}
	}
}
