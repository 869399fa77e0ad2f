package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzhttp"

	"github.com/herdhq/herd/internal/accesslog"
	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/limits"
)

// Route sends requests under Path to the instances in Pool.
type Route struct {
	// Path is a path prefix; "/" matches every path, "/api" matches /api and
	// /api/..., not /apiary.
	Path string
	// App names the app, for errors, logs and metrics.
	App string
	// Pool holds the app's ready instances.
	Pool *balance.Pool
	// Policy picks among them.
	Policy balance.Policy
	// QueueTimeout bounds the wait for a ready instance; zero: no wait, a
	// 503 at once when none is ready. (herd's config defaults it to 5s.)
	QueueTimeout time.Duration
	// HashKey says what a KeyPolicy hashes: "ip" (also ip_hash's),
	// "header:NAME", "cookie:NAME", "query:NAME" or "path".
	HashKey string
	// StickyCookie, if set, names the cookie that pins a client to the
	// backend that first served it; StickyMaxAge is its lifetime (0: session).
	StickyCookie string
	StickyMaxAge time.Duration
	// Retry says when to try another instance.
	Retry RetryPolicy
	// Transport tunes the connections to Pool; the first route of a pool
	// sets it for all of them.
	Transport TransportOptions
	// Rate, if set, limits requests per client (NGINX's limit_req).
	Rate *RateLimit
	// Conns, if set, limits requests in flight per client (limit_conn).
	Conns *ConnLimit
	// Cache, if set, keeps responses in memory (see Cache).
	Cache *Cache
	// Gateway, if set, makes the route an API gateway: /PATH/NAME/rest goes
	// to the service NAME (an app or upstream), whose own route options
	// these are; an unknown NAME is a 404 JSON naming the services.
	Gateway map[string]Route
	// Directory, for a gateway, finds the services that are not in
	// Gateway: those registered with herd's service registry. They get
	// this route's own options.
	Directory Directory
	// StripPrefix, for a gateway, forwards /rest instead of the full path.
	StripPrefix bool
	// Files, if set, serves the route instead of the pool (see Static).
	Files http.Handler
	// Compress, if set, compresses responses (see Compression).
	Compress *Compression
	// Headers edit the route's responses.
	Headers HeaderRules
	// MaxBody bounds request bodies; a larger one gets 413. Zero: no
	// bound. (herd's config defaults it to 10 MiB.)
	MaxBody int64
}

// registeredTransport tunes the connections to a Directory service when its
// gateway route sets no Transport, which is so for every gateway herd's
// config builds: the config has proxy options for apps and upstreams, none
// for registered services. These are the config's ProxyOptions defaults
// (internal/config/defaults.go; TestDefaultsAreConfigs keeps them equal)
// until the config offers registry proxy options and internal/app passes
// them as the gateway route's Transport; then this goes.
var registeredTransport = TransportOptions{
	ConnectTimeout: 3 * time.Second, ReadTimeout: 60 * time.Second, SendTimeout: 60 * time.Second,
	Keepalive: 256, KeepaliveTimeout: 4 * time.Second,
}

// Directory finds services by name at request time.
type Directory interface {
	// Pool returns the pool of the service name, or nil.
	Pool(name string) *balance.Pool
	// Names lists the services, for the 404 of an unknown one.
	Names() []string
}

// RateLimit applies a limits.Rate to a route's requests.
type RateLimit struct {
	limits.Limiter
	Key    string // "ip" or "header:NAME"
	Status int    // 429 or 503
	Desc   string // for the error, e.g. "10r/s with a burst of 5"
}

// ConnLimit applies a limits.Conns to a route's requests.
type ConnLimit struct {
	*limits.Conns
	Key    string
	Status int
	Max    int
}

// Compression configures gzip/zstd of a route's responses.
type Compression struct {
	Level   int      // gzip level 1–9
	MinSize int      // bytes; smaller responses go as they are
	Types   []string // content types; nil: gzhttp's defaults
	Zstd    bool     // offer zstd too
}

// wrap returns h compressing per c (klauspost/compress gzhttp). gzhttp sends
// encoded and partial (Content-Range) responses as they are.
func (c *Compression) wrap(h http.Handler) (http.Handler, error) {
	// gzhttp's option type is unexported, so the two calls are spelt out.
	var wrapper func(http.Handler) http.HandlerFunc
	var err error
	if len(c.Types) > 0 {
		wrapper, err = gzhttp.NewWrapper(gzhttp.CompressionLevel(c.Level), gzhttp.MinSize(c.MinSize), gzhttp.EnableZstd(c.Zstd), gzhttp.ContentTypes(c.Types))
	} else {
		// gzhttp's default list holds every text/ type; a compressed event
		// stream would wait for min_size before the client saw an event.
		wrapper, err = gzhttp.NewWrapper(gzhttp.CompressionLevel(c.Level), gzhttp.MinSize(c.MinSize), gzhttp.EnableZstd(c.Zstd),
			gzhttp.ExceptContentTypes([]string{"text/event-stream"}))
	}
	if err != nil {
		return nil, fmt.Errorf("proxy: compression: %w", err)
	}
	return wrapper(h), nil
}

// HeaderRules edit responses on their way to the client.
type HeaderRules struct {
	Set      map[string]string // replace
	Add      map[string]string // append
	Remove   []string          // delete
	Defaults map[string]string // set where the instance did not (security headers)
	HSTS     string            // Strict-Transport-Security for HTTPS requests, if not set
}

// SecurityHeaders are the defaults a route adds unless told not to, as
// helmet does in the seed; X-Powered-By goes too.
var SecurityHeaders = HeaderRules{
	Remove: []string{"X-Powered-By"},
	Defaults: map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "SAMEORIGIN",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	},
}

// Options configure a Handler.
type Options struct {
	Routes []Route
	// TrustedProxies are the peers whose X-Forwarded-* and X-Real-IP headers
	// are kept; anyone else's are replaced.
	TrustedProxies []netip.Prefix
	// Log receives proxy errors. Nil means slog.Default().
	Log *slog.Logger
	// Observe, if set, is called once per request when it is done, with the
	// status sent (499 when the client went away first).
	Observe func(route, app string, status int, elapsed time.Duration)
	// AccessLog, if set, gets a line per request.
	AccessLog *accesslog.Logger
	// KeepSlashes keeps runs of slashes in request paths (merge_slashes:
	// false); by default they are merged before routing, as NGINX does.
	KeepSlashes bool
}

// Handler is the proxy's http.Handler. It is safe for concurrent use.
type Handler struct {
	routes    []*route // longest path first
	trusted   []netip.Prefix
	log       *slog.Logger
	observe   func(route, app string, status int, elapsed time.Duration)
	accessLog *accesslog.Logger
	// keepSlashes: see Options.KeepSlashes.
	keepSlashes bool

	// onServe, if set, is told which path serves each request, by its
	// target; for tests.
	onServe func(path servePath, target string)
}

type route struct {
	Route
	proxy      *httputil.ReverseProxy
	compressed http.Handler      // proxy behind gzhttp, when Compress is set
	services   map[string]*route // a gateway's, by service name
	registered sync.Map          // a gateway's Directory services: name → *route

	// For the fast path (see Server): its connections to Pool, nil when
	// the route is not one the fast path serves.
	upstreams *upstreamPool
	edits     headerEdits // Headers, compiled for both paths
}

// New returns a Handler for opts. Routes to the same pool share one
// connection pool to its instances.
func New(opts Options) (*Handler, error) {
	h := &Handler{trusted: opts.TrustedProxies, log: opts.Log, observe: opts.Observe, accessLog: opts.AccessLog, keepSlashes: opts.KeepSlashes}
	if h.log == nil {
		h.log = slog.Default()
	}
	transports := map[*balance.Pool]http.RoundTripper{}
	upstreams := map[*balance.Pool]*upstreamPool{}
	for _, r := range opts.Routes {
		rt, err := h.build(r, transports, upstreams)
		if err != nil {
			return nil, err
		}
		if r.Gateway != nil {
			rt.services = map[string]*route{}
			for name, svc := range r.Gateway {
				svc.Path, svc.App = r.Path, name
				if rt.services[name], err = h.build(svc, transports, nil); err != nil {
					return nil, err
				}
			}
		}
		h.routes = append(h.routes, rt)
	}
	sort.SliceStable(h.routes, func(i, j int) bool { return len(h.routes[i].Path) > len(h.routes[j].Path) })
	return h, nil
}

// build makes the handler of one route; routes to one pool share its
// transport, and its fast-path connections when upstreams is not nil (the
// fast path serves top-level routes only).
func (h *Handler) build(r Route, transports map[*balance.Pool]http.RoundTripper, upstreams map[*balance.Pool]*upstreamPool) (*route, error) {
	base, ok := transports[r.Pool]
	if !ok {
		base = newTransport(r.Transport)
		transports[r.Pool] = base
	}
	rt := &route{Route: r, edits: compileEdits(&r.Headers)}
	if upstreams != nil && fastEligible(&r) {
		if rt.upstreams = upstreams[r.Pool]; rt.upstreams == nil {
			rt.upstreams = newUpstreamPool(r.Transport)
			upstreams[r.Pool] = rt.upstreams
		}
	}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite:   h.rewrite,
		Transport: &pickTransport{route: rt, base: base},
		// 0, not -1: ReverseProxy already flushes every write of a
		// stream (text/event-stream, or no Content-Length), while -1 on
		// every response costs an extra write of the headers alone and a
		// timer per request (13 % of throughput, measured).
		FlushInterval:  0,
		BufferPool:     bufferPool{},
		ErrorHandler:   h.errorHandler(&rt.Route),
		ModifyResponse: modifyResponse(rt),
		ErrorLog:       slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	if r.Compress != nil {
		var target http.Handler = rt.proxy
		if r.Files != nil {
			target = r.Files
		}
		c, err := r.Compress.wrap(target)
		if err != nil {
			return nil, err
		}
		rt.compressed = c
	}
	return rt, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if h.onServe != nil {
		h.onServe(pathNetHTTP, r.RequestURI)
	}
	if r.Header.Get("X-Request-Id") == "" {
		r.Header.Set("X-Request-Id", newRequestID())
	}
	rec := &recorder{ResponseWriter: w}
	if reason := h.normalizeURL(r); reason != "" {
		writeError(rec, r, http.StatusBadRequest, "", reason)
		h.done(nil, rec, r, start)
		return
	}
	rt := h.match(r.URL.Path)
	if rt == nil {
		writeError(rec, r, http.StatusNotFound, "", "no route matches this path")
		h.done(nil, rec, r, start)
		return
	}
	served := rt // the gateway's service, once known, for metrics and logs
	defer func() { h.done(served, rec, r, start) }()
	adm, no := h.admit(r.Context(), rt, remoteIP(r.RemoteAddr), stdHeaders(r.Header), r.ContentLength, start)
	switch no.status {
	case 0:
		defer adm.release()
	case StatusClientClosed:
		rec.status = StatusClientClosed
		return
	default:
		if no.retryAfter != "" {
			rec.Header().Set("Retry-After", no.retryAfter)
		}
		writeError(rec, r, no.status, rt.App, no.reason)
		return
	}
	if rt.MaxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(rec, r.Body, rt.MaxBody)
	}
	if rt.Files != nil {
		rt.edits.preset(rec.Header())
		if rt.compressed != nil && r.Header.Get("X-No-Compression") == "" {
			rt.compressed.ServeHTTP(rec, r)
			return
		}
		rt.Files.ServeHTTP(rec, r)
		return
	}
	if h.accessLog != nil {
		// The transport notes the instance and its time on the recorder.
		r = r.WithContext(context.WithValue(r.Context(), recorderKey{}, rec))
	}
	if rt.services != nil {
		svc, rest := serviceOf(rt.Path, r.URL.Path)
		target := rt.services[svc]
		if target == nil && rt.Directory != nil {
			target = h.registered(rt, svc)
		}
		if target == nil {
			names := make([]string, 0, len(rt.services))
			for n := range rt.services {
				names = append(names, n)
			}
			if rt.Directory != nil {
				names = append(names, rt.Directory.Names()...)
			}
			sort.Strings(names)
			writeError(rec, r, http.StatusNotFound, "", fmt.Sprintf("no service named %q behind %s; services: %s", svc, rt.Path, strings.Join(names, ", ")))
			return
		}
		if rt.StripPrefix {
			r.URL.Path, r.URL.RawPath = rest, ""
		}
		served, rt = target, target
	}
	if rt.Cache != nil && r.Header.Get("Upgrade") == "" {
		next := http.Handler(rt.proxy)
		if rt.compressed != nil && r.Header.Get("X-No-Compression") == "" {
			next = rt.compressed
		}
		rec.cacheStatus = rt.Cache.serve(rec, r, next)
		return
	}
	// X-No-Compression opts out, as in the seed; upgrades are never wrapped.
	if rt.compressed != nil && r.Header.Get("X-No-Compression") == "" && r.Header.Get("Upgrade") == "" {
		rt.compressed.ServeHTTP(rec, r)
		return
	}
	rt.proxy.ServeHTTP(rec, r)
}

// registered returns the route to the Directory service name of gateway
// gw, or nil. Routes are built on first use and rebuilt when the service's
// pool is replaced (it left the registry and came back).
func (h *Handler) registered(gw *route, name string) *route {
	pool := gw.Directory.Pool(name)
	if pool == nil {
		return nil
	}
	if v, ok := gw.registered.Load(name); ok && v.(*route).Pool == pool {
		return v.(*route)
	}
	r := gw.Route
	r.Gateway, r.Directory, r.App, r.Pool = nil, nil, name, pool
	if r.Transport == (TransportOptions{}) {
		r.Transport = registeredTransport
	}
	rt, err := h.build(r, map[*balance.Pool]http.RoundTripper{}, nil)
	if err != nil {
		h.log.Error("building the route to a registered service", "service", name, "err", err)
		return nil
	}
	if old, loaded := gw.registered.Swap(name, rt); loaded {
		if t, ok := old.(*route).proxy.Transport.(*pickTransport); ok {
			if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
				c.CloseIdleConnections()
			}
		}
	}
	return rt
}

// done records a finished request of the net/http path (see record).
func (h *Handler) done(rt *route, rec *recorder, r *http.Request, start time.Time) {
	e := accesslog.Entry{Status: rec.Status(), Duration: time.Since(start)}
	if rt != nil {
		e.Route, e.App = rt.Path, rt.App
	}
	if h.logged() {
		e.Time, e.RemoteAddr, e.Method, e.URI, e.Proto = start, remoteIP(r.RemoteAddr), r.Method, r.RequestURI, r.Proto
		e.BytesSent, e.Referer, e.UserAgent = rec.bytes, r.Referer(), r.UserAgent()
		e.Upstream, e.UpstreamTime = rec.upstream, rec.upstreamTime
		e.RequestID, e.CacheStatus = r.Header.Get("X-Request-Id"), rec.cacheStatus
	}
	h.record(&e)
}

type recorderKey struct{}

func (h *Handler) match(path string) *route {
	for _, rt := range h.routes {
		if matchPrefix(rt.Path, path) {
			return rt
		}
	}
	return nil
}

// serviceOf splits a gateway path: under prefix /api, /api/users/7 is
// service "users" with the rest "/7".
func serviceOf(prefix, path string) (service, rest string) {
	p := strings.TrimPrefix(path, strings.TrimSuffix(prefix, "/"))
	p = strings.TrimPrefix(p, "/")
	service, rest, _ = strings.Cut(p, "/")
	return service, "/" + rest
}

// matchPrefix reports whether path is prefix or lies below it.
func matchPrefix(prefix, path string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// modifyResponse returns the request id to the client unless the instance
// set one, and applies the route's header rules.
func modifyResponse(rt *route) func(*http.Response) error {
	edits := &rt.edits
	edit := !edits.empty()
	return func(res *http.Response) error {
		if res.Header.Get("X-Request-Id") == "" {
			if id := res.Request.Header.Get("X-Request-Id"); id != "" {
				res.Header.Set("X-Request-Id", id)
			}
		}
		if edit {
			edits.apply(res.Header, res.Request.TLS != nil)
		}
		return nil
	}
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
