package httpkit

import (
	"net/http"
	"strings"
	"testing"
)

func TestCompress(t *testing.T) {
	tests := []struct {
		name     string
		opts     CompressionOptions
		accept   string
		noComp   string // X-No-Compression
		ct       string
		size     int
		encoded  bool // the handler sends Content-Encoding: br itself
		wantEnc  string
		wantVary bool
	}{
		{name: "gzip over 1 KB", accept: "gzip", ct: "application/json", size: 2048, wantEnc: "gzip", wantVary: true},
		{name: "under 1 KB as is", accept: "gzip", ct: "application/json", size: 1000, wantEnc: "", wantVary: true},
		{name: "exactly 1 KB", accept: "gzip", ct: "text/html; charset=utf-8", size: 1024, wantEnc: "gzip", wantVary: true},
		{name: "MinSize changed", opts: CompressionOptions{MinSize: 100}, accept: "gzip", ct: "text/plain", size: 200, wantEnc: "gzip", wantVary: true},
		{name: "zstd preferred", accept: "gzip, zstd", ct: "text/plain", size: 4096, wantEnc: "zstd", wantVary: true},
		{name: "NoZstd", opts: CompressionOptions{NoZstd: true}, accept: "gzip, zstd", ct: "text/plain", size: 4096, wantEnc: "gzip", wantVary: true},
		{name: "client takes none", accept: "", ct: "text/plain", size: 4096, wantEnc: "", wantVary: true},
		{name: "X-No-Compression", accept: "gzip", noComp: "1", ct: "text/plain", size: 4096, wantEnc: ""},
		{name: "X-No-Compression empty is not set (as in JS)", accept: "gzip", noComp: "", ct: "text/plain", size: 4096, wantEnc: "gzip", wantVary: true},
		{name: "png is compressed already", accept: "gzip", ct: "image/png", size: 4096, wantEnc: "", wantVary: true},
		{name: "jpeg", accept: "gzip", ct: "image/jpeg", size: 4096, wantEnc: "", wantVary: true},
		{name: "svg is text", accept: "gzip", ct: "image/svg+xml", size: 4096, wantEnc: "gzip", wantVary: true},
		{name: "zip", accept: "gzip", ct: "application/zip", size: 4096, wantEnc: "", wantVary: true},
		{name: "gzip file", accept: "gzip", ct: "application/gzip", size: 4096, wantEnc: "", wantVary: true},
		{name: "woff2", accept: "gzip", ct: "font/woff2", size: 4096, wantEnc: "", wantVary: true},
		{name: "video", accept: "gzip", ct: "video/mp4", size: 4096, wantEnc: "", wantVary: true},
		{name: "event stream", accept: "gzip", ct: "text/event-stream", size: 4096, wantEnc: "", wantVary: true},
		{name: "encoded by the handler", accept: "gzip", ct: "text/plain", size: 4096, encoded: true, wantEnc: "br", wantVary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := Compress(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			inner := text(tt.ct, tt.size)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.encoded {
					w.Header().Set("Content-Encoding", "br")
				}
				inner.ServeHTTP(w, r)
			})
			srv := serve(t, mw(h))
			headers := []string{"Accept-Encoding", tt.accept}
			if tt.noComp != "" {
				headers = append(headers, NoCompressionHeader, tt.noComp)
			}
			res := get(t, srv.URL, headers...)
			if got := res.header.Get("Content-Encoding"); got != tt.wantEnc {
				t.Errorf("Content-Encoding %q; want %q", got, tt.wantEnc)
			}
			if got := strings.Contains(res.header.Get("Vary"), "Accept-Encoding"); got != tt.wantVary {
				t.Errorf("Vary %q; want Accept-Encoding %v", res.header.Get("Vary"), tt.wantVary)
			}
			if len(res.body) != tt.size {
				t.Errorf("body %d bytes after decoding; want %d", len(res.body), tt.size)
			}
			if tt.wantEnc == "gzip" || tt.wantEnc == "zstd" {
				if res.raw >= tt.size {
					t.Errorf("%d bytes on the wire for %d of text; want fewer", res.raw, tt.size)
				}
			}
		})
	}
}

func TestCompressOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts CompressionOptions
		want string
	}{
		{"level too high", CompressionOptions{Level: 10}, "compression level 10"},
		{"level negative", CompressionOptions{Level: -2}, "compression level -2"},
		{"min size negative", CompressionOptions{MinSize: -1}, "min size -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compress(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compress(%+v) = %v; want an error with %q", tt.opts, err, tt.want)
			}
			if _, err := New(Options{Compression: tt.opts}); err == nil {
				t.Errorf("New with %+v: no error", tt.opts)
			}
		})
	}
}

func TestCompressible(t *testing.T) {
	for ct, want := range map[string]bool{
		"": true, "text/html; charset=utf-8": true, "application/json": true, "image/svg+xml": true,
		"IMAGE/PNG": false, "image/webp": false, "image/avif": false, "audio/ogg": false,
		"application/x-7z-compressed": false, "application/zstd": false, "application/pdf": false,
		"text/event-stream; charset=utf-8": false,
	} {
		if got := Compressible(ct); got != want {
			t.Errorf("Compressible(%q) = %v; want %v", ct, got, want)
		}
	}
}
