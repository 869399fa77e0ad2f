package httpkit

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
)

// CompressionOptions configure Compress.
type CompressionOptions struct {
	// Disabled leaves Compress out of New's stack.
	Disabled bool
	// Level is the gzip level, 1 (fastest) to 9 (smallest). Default 6, the
	// seed's balance between size and CPU.
	Level int
	// MinSize is the smallest body compressed, in bytes; a smaller one is
	// not worth the gzip header and the CPU. Default 1024, the seed's 1 KB.
	MinSize int
	// NoZstd offers gzip only. Default false: zstd is offered too and
	// preferred by clients that accept both (it is faster for the same size).
	NoZstd bool
	// Compressible decides by Content-Type (as sent, parameters included)
	// whether a body is worth compressing. Default Compressible.
	Compressible func(contentType string) bool
}

// NoCompressionHeader is the request header that turns compression off for
// one request, as the seed's filter does: any non-empty value counts.
const NoCompressionHeader = "X-No-Compression"

// Compressible is Compress's default filter: false for media and archive
// types that are compressed already (images other than SVG and BMP, audio,
// video, fonts in WOFF, zip, gzip, zstd, 7z, rar, PDF, ...) and for server-sent
// events (text/event-stream), whose events must not wait for MinSize
// bytes; true for anything else, the empty type included.
func Compressible(contentType string) bool {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	if !gzhttp.DefaultContentTypeFilter(ct) {
		return false // video/, audio/, image/jp*, *zip*, *compress*, *zstd*, ...
	}
	switch {
	case strings.HasPrefix(ct, "image/"):
		return ct == "image/svg+xml" || ct == "image/bmp" || ct == "image/x-icon" || ct == "image/vnd.microsoft.icon"
	case strings.HasPrefix(ct, "font/woff"), ct == "application/font-woff":
		return false
	case ct == "application/pdf", ct == "application/vnd.rar", ct == "application/ogg", ct == "application/x-bzip2":
		return false
	case ct == "text/event-stream":
		return false
	}
	return true
}

// Compress returns middleware that compresses responses with gzip or zstd
// (klauspost/compress gzhttp) when the client accepts it, the body is at
// least MinSize bytes and of a Compressible type, and the request has no
// X-No-Compression header. A response that already has a Content-Encoding,
// or a Content-Range, goes as it is. It fails on a Level out of range.
func Compress(opts CompressionOptions) (Middleware, error) {
	level := opts.Level
	if level == 0 {
		level = 6
	}
	if level < 1 || level > 9 {
		return nil, fmt.Errorf("httpkit: compression level %d: write 1 (fastest) to 9 (smallest), or 0 for the default 6", opts.Level)
	}
	minSize := opts.MinSize
	if minSize == 0 {
		minSize = 1024
	}
	if minSize < 0 {
		return nil, fmt.Errorf("httpkit: compression min size %d: write a size in bytes, or 0 for the default 1024", opts.MinSize)
	}
	filter := opts.Compressible
	if filter == nil {
		filter = Compressible
	}
	wrap, err := gzhttp.NewWrapper(
		gzhttp.CompressionLevel(level),
		gzhttp.MinSize(minSize),
		gzhttp.EnableZstd(!opts.NoZstd),
		gzhttp.ContentTypeFilter(filter),
	)
	if err != nil {
		return nil, fmt.Errorf("httpkit: compression: %w", err)
	}
	return func(next http.Handler) http.Handler {
		compressed := wrap(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(NoCompressionHeader) != "" {
				next.ServeHTTP(w, r)
				return
			}
			compressed.ServeHTTP(w, r)
		})
	}, nil
}
