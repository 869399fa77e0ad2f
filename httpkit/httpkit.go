package httpkit

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
)

// Middleware wraps a handler in another. It is the plain
// func(http.Handler) http.Handler that most Go middleware libraries use.
type Middleware = func(http.Handler) http.Handler

// Options configure New. The zero value turns everything on with the
// seed's settings; each part has its own Disabled switch.
type Options struct {
	// Logger receives the access log and the panics. Default slog.Default().
	Logger *slog.Logger
	// RequestID configures the request id. Default: X-Request-Id.
	RequestID RequestIDOptions
	// AccessLog configures the access log.
	AccessLog AccessLogOptions
	// Security configures the security headers. Default: helmet v7's.
	Security SecurityOptions
	// Compression configures gzip/zstd. Default: level 6, 1 KB minimum.
	Compression CompressionOptions
	// ETag configures weak ETags. Default: bodies up to 1 MiB.
	ETag ETagOptions
	// BodyLimit configures the request body limit. Default 10 MiB, the
	// seed's express.json({limit: "10mb"}).
	BodyLimit BodyLimitOptions
	// Recover configures panic recovery.
	Recover RecoverOptions
}

// New returns the whole stack configured by opts, in the order the package
// doc explains. It fails only on a setting that cannot work (a compression
// level out of range), naming it.
func New(opts Options) (Middleware, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var mws []Middleware
	if !opts.RequestID.Disabled {
		mws = append(mws, RequestID(opts.RequestID))
	}
	if !opts.AccessLog.Disabled {
		al := opts.AccessLog
		if al.Logger == nil {
			al.Logger = logger
		}
		mws = append(mws, AccessLog(al))
	}
	if !opts.Security.Disabled {
		mws = append(mws, SecurityHeaders(opts.Security))
	}
	if !opts.Compression.Disabled {
		c, err := Compress(opts.Compression)
		if err != nil {
			return nil, err
		}
		mws = append(mws, c)
	}
	if !opts.ETag.Disabled {
		mws = append(mws, ETag(opts.ETag))
	}
	if !opts.BodyLimit.Disabled {
		mws = append(mws, BodyLimit(opts.BodyLimit))
	}
	if !opts.Recover.Disabled {
		rc := opts.Recover
		if rc.Logger == nil {
			rc.Logger = logger
		}
		mws = append(mws, Recover(rc))
	}
	return Chain(mws...), nil
}

// Chain stacks mws so that the first one is outermost: Chain(a, b)(h)
// serves a request as a(b(h)).
func Chain(mws ...Middleware) Middleware {
	return func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
}

// writeJSON answers status with body as JSON; the request id, if the
// request has one, goes in the body's request_id.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body map[string]any) {
	if id := RequestIDFrom(r.Context()); id != "" {
		body["request_id"] = id
	}
	data, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(data)+1))
	for _, k := range []string{"ETag", "Last-Modified", "Content-Encoding", "Content-Range"} {
		h.Del(k)
	}
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}
