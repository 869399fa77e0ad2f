// Package httpkit is the seed's createOptimizedApp for Go: the middleware a
// Go web app under herd puts in front of its handlers, each one usable on
// its own and stacked in the right order by New.
//
//	mw, err := httpkit.New(httpkit.Options{Logger: slog.Default()})
//	if err != nil { ... }
//	srv := &http.Server{Handler: mw(mux)}
//
// The stack, outermost first, and why in that order:
//
//   - RequestID: keeps a sane incoming X-Request-Id (herd's proxy sets one)
//     or makes one, puts it on the response and in the request's context,
//     so every later layer (the log line, the 500 body) can name it.
//   - AccessLog: one slog line per request with the status and the bytes
//     that really went to the client (after compression).
//   - SecurityHeaders: helmet v7's default headers (DefaultSecurityHeaders);
//     a handler may still set its own, which win.
//   - Compress: gzip (and zstd) through klauspost/compress gzhttp, level 6
//     and a 1 KB threshold as in the seed, never for a request carrying
//     X-No-Compression, never for already-compressed types.
//   - ETag: buffers a 200 answer to GET or HEAD (up to a bound), gives it a
//     weak ETag of the uncompressed body and answers If-None-Match with 304.
//     It sits inside Compress so that the tag names the content, not one
//     encoding of it (a weak tag may be shared by both).
//   - BodyLimit: a JSON 413 for a body over the limit, by Content-Length
//     before the handler runs, or as soon as a chunked body crosses it.
//   - Recover: a panicking handler becomes a JSON 500 if nothing was sent
//     yet; otherwise the connection is aborted (http.ErrAbortHandler), as
//     net/http does, so a client never takes half an answer for a whole one.
//     It is innermost so its 500 passes through the layers above like any
//     other answer (logged, with security headers).
//
// Every error body is JSON: {"error": "...", ...} with the request id.
//
// # Cost
//
// On the machine the figures in README.md were taken on, the whole stack
// adds a few microseconds and a handful of allocations to a small JSON
// answer; see README.md for the numbers and how to take them again
// (go test -bench . ./httpkit).
package httpkit
