// Package proxy is herd's HTTP front: it matches a request to a route,
// picks a ready instance of the route's app and forwards the request to it,
// streaming both ways; it answers its own errors as JSON.
//
// # Two paths, one pipeline
//
// A request reaches an instance over one of two paths, which differ only in
// how bytes move:
//
//   - The net/http path: [Handler] is an http.Handler. Go's http.Server
//     parses the request (HTTP/1.x, HTTP/2, TLS), httputil.ReverseProxy
//     copies it (rewrite sets the forwarded fields, modifyResponse edits the
//     response), and pickTransport, its RoundTripper, picks the instance and
//     retries over an http.Transport (newTransport). Files, caches,
//     compression, gateways, sticky cookies, H2C, upgrades and anything
//     unusual take this path.
//   - The fast path: [Server] serves a plain-HTTP listener itself. Per
//     client connection one goroutine (clientConn) parses each head in
//     place (internal/h1), and an exchange writes it to a pooled connection
//     to the instance (upstreamPool) and copies the response back, with no
//     other goroutine involved. pathFor decides,
//     per request, whether the fast path serves it or the connection goes to
//     net/http (Server.Fallback), where it then stays.
//
// Both run the same pipeline (pipeline.go), each step one function:
//
//	admit    Handler.admit: rate limit (waits out a delay within the burst),
//	         connection limit, max_body
//	forward  route.forward: pick an instance (waiting up to queue_timeout
//	         for one to be ready), send, retry per RetryPolicy; a path
//	         supplies a sender for one attempt
//	headers  Handler.forwarded (X-Forwarded-*, X-Real-IP, trusted proxies),
//	         headerEdits (the route's response header rules)
//	respond  failed and failure map an error to a status and a JSON reason
//	record   Handler.record: metrics (Options.Observe) and the access log
//
// A client that leaves is noticed on both paths, while its request waits in
// the rate limiter or the queue, and while an instance has it: the wait ends,
// the instance's connection is closed, nothing is sent, and the request
// counts as [StatusClientClosed] (499). On the net/http path the request's
// context says so; on the fast path a watcher reads from the client once the
// request has waited a moment (clientConn.watch, and the context of
// clientConn.context).
//
// # Options
//
// Route, TransportOptions and RetryPolicy are taken as given: herd's config
// (internal/config) fills in every default, and a zero field means what its
// comment says (usually "off" or "no bound"), never a default of its own.
package proxy
