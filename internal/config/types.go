package config

import (
	"net/netip"
	"syscall"
	"time"
)

// Config is a whole herd.yaml. Zero values mean "use the default"; Load
// applies every default in one place (defaults.go, a method per section)
// before Validate runs, so code that takes a loaded Config sets none.
type Config struct {
	// File is the path the config was read from; error messages name it.
	File string `yaml:"-" json:"file"`
	// lines maps dotted key paths to the lines they were written on.
	lines map[string]int
	// Warnings are things in the file that load but are likely mistakes
	// (a bare number of milliseconds too small to be meant), in line
	// order; `herd check` and `herd up` print them.
	Warnings Errors `yaml:"-" json:"warnings,omitempty"`

	// Listen is the public listener address. Default ":8080".
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// Admin is the admin listener (/health, /status, /metrics). Default "127.0.0.1:9090".
	Admin string `yaml:"admin" json:"admin,omitempty"`
	// AdminAuth guards the admin listener's write endpoints. Default: none,
	// which only a loopback admin may have.
	AdminAuth AdminAuth `yaml:"admin_auth" json:"admin_auth,omitempty"`
	// TrustedProxies lists the peers (CIDRs or single addresses) whose incoming
	// X-Forwarded-For/-Proto/-Host and X-Real-IP are believed. Default: none.
	TrustedProxies []Prefix `yaml:"trusted_proxies" json:"trusted_proxies,omitempty"`

	// Apps are the herd-managed apps by name, in file order. In YAML they are
	// a mapping from name to app ("keyed": Name and Line come from the key).
	Apps []*App `yaml:"apps,keyed" json:"apps"`
	// Upstreams are servers herd does not run, by name, in file order; a
	// route's to: names an app or an upstream.
	Upstreams []*Upstream `yaml:"upstreams,keyed" json:"upstreams,omitempty"`
	// Routes map request paths to apps, longest path prefix first.
	Routes []*Route `yaml:"routes" json:"routes,omitempty"`
	// Logs configure the files instance output is written to.
	Logs Logs `yaml:"logs" json:"logs"`
	// AccessLog configures the one line per proxied request.
	AccessLog AccessLog `yaml:"access_log" json:"access_log"`
	// TLS, with a cert and key, adds an HTTPS listener (HTTP/2 on).
	TLS TLS `yaml:"tls" json:"tls,omitempty"`
	// Server configures the public listener's HTTP server.
	Server Server `yaml:"server" json:"server"`
	// Banner is printed once every app is ready, after the addresses herd
	// serves on: what to try first. {listen} and {admin} stand for those
	// addresses. Default: none.
	Banner string `yaml:"banner" json:"banner,omitempty"`
	// Registry configures the service registry behind gateway routes and
	// the admin listener's /services and /health.
	Registry Registry `yaml:"registry" json:"registry"`
}

// AdminAuth is the bearer token the admin listener's writes (POST and
// DELETE /services, the actions to come) and /debug/pprof take. Reads that
// probes and Prometheus need (/health, /metrics, /status, GET /services)
// stay open. With a token, writes need `Authorization: Bearer TOKEN`
// wherever the listener is; without one, an admin listener off loopback is
// refused unless Insecure says so.
type AdminAuth struct {
	// TokenFile holds the token (surrounding whitespace trimmed), like a
	// Kubernetes secret mounted as a file. Default: none.
	TokenFile string `yaml:"token_file" json:"token_file,omitempty"`
	// TokenEnv names the environment variable that holds the token. Default: none.
	TokenEnv string `yaml:"token_env" json:"token_env,omitempty"`
	// Insecure: true lets an admin listener off loopback take writes with
	// no token. Default false.
	Insecure bool `yaml:"insecure" json:"insecure,omitempty"`
	// Token is the token read from TokenFile or TokenEnv when the config
	// was validated; never printed.
	Token string `yaml:"-" json:"-"`
}

// Registry configures herd's service registry. `registry: redis://…` is
// short for `registry: {redis: redis://…}`.
type Registry struct {
	// Redis, a redis:// URL, keeps the registry in Redis, shared by every
	// herd node using it: each publishes its apps' ready instances and sees
	// the others' and every registration. Default: in herd's memory.
	Redis string `yaml:"redis" json:"redis,omitempty"`
	// Prefix starts every Redis key herd writes. Default "herd:".
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// Advertise is the host other nodes reach this node's instances at.
	// Default 127.0.0.1 (one machine).
	Advertise string `yaml:"advertise" json:"advertise,omitempty"`
	// TTL is given to registrations that name none. Default 30s.
	TTL Duration `yaml:"ttl" json:"ttl,omitempty"`
	// Check probes registered services. Default {path: /health, interval: 5s,
	// timeout: 2s, passes: 1, fails: 2}; a registration may name its own path.
	Check HealthCheck `yaml:"check" json:"check"`
	// Require lists the services GET /health needs a ready instance of.
	// Default: every app.
	Require []string `yaml:"require" json:"require,omitempty"`
}

// App is one herd-managed app: a command run as N instances.
type App struct {
	// Name is the key under apps:.
	Name string `yaml:"-" json:"name"`
	// Line is where the app is defined, for messages about it.
	Line int `yaml:"-" json:"line"`

	// Command is split like a shell would (quotes, backslashes) and run without a shell. Required.
	Command Command `yaml:"command" json:"command,omitempty"`
	// Build is a shell command (sh -c) run in Cwd before the instances
	// start and again before each reload or restart, like
	// `go build -o bin/api ./cmd/api`. A failing build stops `herd up`, or
	// the reload, with its output; the running instances keep serving.
	// Apps with the same build and cwd build once. Default: none.
	Build string `yaml:"build" json:"build,omitempty"`
	// Cwd is the working directory; relative paths are relative to the config file's folder.
	// Default: the config file's folder.
	Cwd string `yaml:"cwd" json:"cwd,omitempty"`
	// Env is added to herd's own environment for every instance. Default: none.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// Instances is how many copies run: a number, "max" for one per CPU, or
	// "max-N" for N fewer than the CPUs, at least 1 (PM2's -1 is max-1). Default 1.
	Instances Instances `yaml:"instances" json:"instances,omitempty"`
	// Autoscale lets herd change the number of instances with the load,
	// between its Min and Max; Instances is where it starts. Default: off.
	Autoscale *Autoscale `yaml:"autoscale" json:"autoscale,omitempty"`
	// InstanceVar names the variable that carries the instance index, like PM2's instance_var.
	// Default "NODE_APP_INSTANCE". HERD_INSTANCE is always set too.
	InstanceVar string `yaml:"instance_var" json:"instance_var,omitempty"`
	// Ready says how herd learns an instance is ready. Default {tcp: true};
	// {ipc: true} with wait_ready; {notify: true} in shared_socket mode.
	Ready Ready `yaml:"ready" json:"ready,omitempty"`

	// ListenTimeout bounds the wait for readiness after a spawn. Default 10s.
	ListenTimeout Duration `yaml:"listen_timeout" json:"listen_timeout,omitempty"`
	// RestartDelay is the first backoff delay after a crash; it grows x1.5 to 15s
	// and resets after 30s of uptime. Default 100ms.
	RestartDelay Duration `yaml:"restart_delay" json:"restart_delay,omitempty"`
	// MinUptime: an exit sooner than this after spawn is an unstable restart. Default 1s.
	MinUptime Duration `yaml:"min_uptime" json:"min_uptime,omitempty"`
	// MaxRestarts: more consecutive unstable restarts than this make the
	// instance errored. Default 16 (0 means the default).
	MaxRestarts int `yaml:"max_restarts" json:"max_restarts,omitempty"`
	// DrainTimeout bounds the wait for in-flight requests on stop. Default 30s.
	DrainTimeout Duration `yaml:"drain_timeout" json:"drain_timeout,omitempty"`
	// KillTimeout is the wait between the stop signal and SIGKILL. Default 5s.
	KillTimeout Duration `yaml:"kill_timeout" json:"kill_timeout,omitempty"`
	// StopSignal is sent to the instance's process group on stop. Default SIGTERM.
	StopSignal Signal `yaml:"stop_signal" json:"stop_signal,omitempty"`

	// Autorestart: false leaves an instance stopped after it exits. Default true.
	Autorestart *bool `yaml:"autorestart" json:"autorestart,omitempty"`
	// StopExitCodes: an exit with one of these codes is not restarted (PM2's stop_exit_codes).
	// Default: none (every exit is restarted while Autorestart is on).
	StopExitCodes []int `yaml:"stop_exit_codes" json:"stop_exit_codes,omitempty"`
	// ExpBackoffRestartDelay, if set, starts the backoff series instead of
	// RestartDelay (PM2's name for exponential backoff). Default: none.
	ExpBackoffRestartDelay Duration `yaml:"exp_backoff_restart_delay" json:"exp_backoff_restart_delay,omitempty"`
	// MaxMemoryRestart: an instance whose RSS exceeds this (checked at every
	// sample) is replaced gracefully, like a one-instance reload. It also sets
	// GOMEMLIMIT to 90 % of it unless env sets GOMEMLIMIT. Default: no limit.
	MaxMemoryRestart Size `yaml:"max_memory_restart" json:"max_memory_restart,omitempty"`
	// CronRestart is a cron spec (5 fields, or @daily…) at which the app is
	// reloaded gracefully. Default: none.
	CronRestart string `yaml:"cron_restart" json:"cron_restart,omitempty"`
	// WaitReady: true means ready: {ipc: true} (PM2's name: the app calls
	// process.send('ready')). Default false.
	WaitReady bool `yaml:"wait_ready" json:"wait_ready,omitempty"`
	// Watch reloads the app gracefully when a file under these paths
	// (relative to cwd) changes; `watch: true` watches cwd. For development.
	// Default: no watching.
	Watch WatchPaths `yaml:"watch" json:"watch,omitempty"`
	// IgnoreWatch are glob patterns (matched against each path element and
	// the path relative to cwd) that Watch skips, besides node_modules, .git,
	// .herd and logs. Default: none.
	IgnoreWatch []string `yaml:"ignore_watch" json:"ignore_watch,omitempty"`

	// MergeLogs writes every instance of the app to one file, app.log,
	// instead of app-INDEX.log (PM2's merge_logs). Default false.
	MergeLogs bool `yaml:"merge_logs" json:"merge_logs,omitempty"`
	// LogDateFormat prefixes each line in the files with its time, in Go's
	// layout (2006-01-02 15:04:05) or PM2's (YYYY-MM-DD HH:mm:ss Z). Default: none.
	LogDateFormat string `yaml:"log_date_format" json:"log_date_format,omitempty"`
	// LogType "json" writes each line as {"time","app","instance","message"}. Default: plain text.
	LogType string `yaml:"log_type" json:"log_type,omitempty"`

	// Mode is "proxy" (the default: instances serve on their own PORT behind
	// herd's balancer) or "shared_socket": herd binds Listen and passes that
	// one socket to every instance (fd 3, LISTEN_FDS=1, systemd's protocol),
	// which accept on it directly, like PM2's cluster mode.
	Mode Mode `yaml:"mode" json:"mode,omitempty"`
	// Listen is the address a shared_socket app serves on, e.g. :3000.
	// Required in that mode, refused in proxy mode. Default: none.
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// QueueTimeout (shared_socket only) is how long the shared socket may go
	// without a ready instance before herd accepts from it itself and
	// answers 503 JSON, instead of leaving clients queued in the kernel. In
	// proxy mode a route's queue_timeout does this. Default 5s.
	QueueTimeout Duration `yaml:"queue_timeout" json:"queue_timeout,omitempty"`
	// Interpreter runs the command, as in `node server.js`; InterpreterArgs
	// (or PM2's node_args) go between the two. Default: none, the command
	// is the program.
	Interpreter     string `yaml:"interpreter" json:"interpreter,omitempty"`
	InterpreterArgs Args   `yaml:"interpreter_args" json:"interpreter_args,omitempty"`
	NodeArgs        Args   `yaml:"node_args" json:"node_args,omitempty"`
	// IncrementVar names a numeric variable of env that grows by the instance
	// index in each instance (PM2's increment_var). Default: none.
	IncrementVar string `yaml:"increment_var" json:"increment_var,omitempty"`
	// EnvSets are the env_NAME: blocks; `herd up --env NAME` merges one over env.
	EnvSets map[string]map[string]string `yaml:"env_,prefix" json:"env_sets,omitempty"`

	// Proxy tunes herd's connections to the instances.
	Proxy ProxyOptions `yaml:"proxy" json:"proxy"`
	// Weight of each instance for round_robin and least_conn. Default 1.
	Weight int `yaml:"weight" json:"weight,omitempty"`

	// Reload configures `herd reload` of this app.
	Reload ReloadOptions `yaml:"reload" json:"reload,omitempty"`

	// MaxFails connect errors or timeouts within FailTimeout mark an instance down
	// for FailTimeout, like NGINX max_fails. Default 1; a written 0 is refused
	// (NGINX's "0 turns checks off" is not offered).
	MaxFails int `yaml:"max_fails" json:"max_fails,omitempty"`
	// FailTimeout: see MaxFails. Default 10s.
	FailTimeout Duration `yaml:"fail_timeout" json:"fail_timeout,omitempty"`
}

// Logs say where instance output is written and how much of it is kept:
// each file is rotated when it reaches MaxSize and at midnight, and only
// MaxFiles rotated files younger than MaxAge are kept, so logs never fill
// the disk unbounded.
type Logs struct {
	// Dir holds the files; relative to the config's folder. Default ".herd/logs".
	Dir string `yaml:"dir" json:"dir"`
	// MaxSize rotates a file when it reaches this size. Default 10M.
	MaxSize Size `yaml:"max_size" json:"max_size"`
	// MaxFiles rotated files are kept per log. Default 5.
	MaxFiles int `yaml:"max_files" json:"max_files"`
	// MaxAge removes rotated files older than this. Default 336h (14 days).
	MaxAge Duration `yaml:"max_age" json:"max_age"`
	// Off disables the files; output still goes to herd's stdout and `herd logs`.
	// Default false.
	Off bool `yaml:"off" json:"off,omitempty"`
}

// TLS configures the HTTPS listener.
type TLS struct {
	// Listen is the HTTPS address. Required with a cert, e.g. :8443 (or :443).
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// Cert and Key are PEM files (relative to the config's folder).
	Cert string `yaml:"cert" json:"cert,omitempty"`
	Key  string `yaml:"key" json:"key,omitempty"`
	// RedirectHTTP answers every request on the plain listen: with a 308 to
	// the same URL over HTTPS. Default false.
	RedirectHTTP bool `yaml:"redirect_http" json:"redirect_http,omitempty"`
	// HTTP2 serves HTTP/2 to clients that offer it. Default true.
	HTTP2 *bool `yaml:"http2" json:"http2,omitempty"`
	// HSTSMaxAge: where security_headers is on, HTTPS responses carry
	// Strict-Transport-Security with this max-age. Default 365 days (8760h).
	HSTSMaxAge Duration `yaml:"hsts_max_age" json:"hsts_max_age,omitempty"`
}

// AccessLog says where and how requests are logged.
type AccessLog struct {
	// Format is "combined" (NGINX's, plus request time, upstream address and
	// time, request id), "json", or "off". Default "combined".
	Format string `yaml:"format" json:"format"`
	// Path is a file (relative to the config's folder), or "stdout".
	// Default: access.log in logs.dir, rotated like the instance logs.
	Path string `yaml:"path" json:"path,omitempty"`
}

// Server configures the public HTTP server, against slow and oversized clients.
type Server struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris). Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long. Default 75s (NGINX's keepalive_timeout).
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxHeaderBytes bounds a request's headers; larger ones get 431. Default 64K.
	MaxHeaderBytes Size `yaml:"max_header_bytes" json:"max_header_bytes"`
	// FastPath serves plain HTTP/1.1 proxying on listen: without net/http
	// (see proxy.Server). Default true; false serves everything by net/http.
	FastPath *bool `yaml:"fast_path" json:"fast_path"`
	// MergeSlashes merges runs of slashes in a request path ("//admin" is
	// "/admin") before routing and forwarding, as NGINX's merge_slashes.
	// Default true; false keeps them (dot segments are removed either way).
	MergeSlashes *bool `yaml:"merge_slashes" json:"merge_slashes"`
}

// Compress configures response compression (klauspost/compress gzhttp).
// Responses already encoded, partial (Range), or below MinSize are sent as
// they are, and a request with X-No-Compression is never compressed.
type Compress struct {
	Enabled bool `yaml:"-" json:"enabled"`
	// Level is the gzip level, 1 (fast) to 9 (small). Default 5.
	Level int `yaml:"level" json:"level,omitempty"`
	// MinSize: smaller responses are not worth it. Default 1K, as in the seed.
	MinSize Size `yaml:"min_size" json:"min_size,omitempty"`
	// Types are the content types to compress, "text/*" style prefixes
	// allowed. Default: gzhttp's list (text, JSON, JavaScript, XML, SVG…).
	Types []string `yaml:"types" json:"types,omitempty"`
	// Zstd offers zstd to clients that accept it, preferred over gzip. Default true.
	Zstd *bool `yaml:"zstd" json:"zstd,omitempty"`
}

// Cache configures a route's response cache.
type Cache struct {
	// Size bounds the memory the cache takes, like 64M. Required.
	Size Size `yaml:"size" json:"size"`
	// Valid maps statuses to how long a response that says nothing itself
	// (Cache-Control, Expires) stays fresh. Default {200: 10m, 301: 10m, 302: 10m}.
	Valid map[string]Duration `yaml:"valid" json:"valid,omitempty"`
	// StaleOnError serves an expired copy when the refresh fails or answers 5xx. Default false.
	StaleOnError bool `yaml:"stale_on_error" json:"stale_on_error,omitempty"`
}

// RateLimit is NGINX's limit_req for one route.
type RateLimit struct {
	// Rate is "10r/s" or "600r/m". Required.
	Rate string `yaml:"rate" json:"rate"`
	// Burst requests over the rate are accepted (delayed to the rate); more are refused. Default 0.
	Burst int `yaml:"burst" json:"burst,omitempty"`
	// NoDelay passes the burst at once instead of delaying it. Default false.
	NoDelay bool `yaml:"nodelay" json:"nodelay,omitempty"`
	// Delay passes the first Delay requests of the burst at once, then delays. Default 0.
	Delay int `yaml:"delay" json:"delay,omitempty"`
	// Key is "ip" (the client; behind trusted_proxies, the real client) or
	// "header:NAME". Default "ip".
	Key string `yaml:"key" json:"key,omitempty"`
	// Status refuses with 429 (default) or 503, with Retry-After.
	Status int `yaml:"status" json:"status,omitempty"`
	// Redis, a redis:// URL, keeps the limit's state in Redis so that every
	// herd node on it shares one limit per key (GCRA in a Lua script, one
	// round trip per request; requests pass while Redis is unreachable).
	// Default: in this herd's memory.
	Redis string `yaml:"redis" json:"redis,omitempty"`
}

// ConnLimit is NGINX's limit_conn for one route.
type ConnLimit struct {
	// Max requests in flight per key. Required.
	Max int `yaml:"max" json:"max"`
	// Key as for RateLimit. Default "ip".
	Key string `yaml:"key" json:"key,omitempty"`
	// Status refuses with 429 (default) or 503.
	Status int `yaml:"status" json:"status,omitempty"`
}

// Sticky configures sticky sessions.
type Sticky struct {
	// Cookie is the cookie's name. Default "herd_sticky".
	Cookie string `yaml:"cookie" json:"cookie"`
	// MaxAge is the cookie's lifetime. Default 0: a session cookie.
	MaxAge Duration `yaml:"max_age" json:"max_age,omitempty"`
}

// HeaderRules edit a route's responses.
type HeaderRules struct {
	// Set replaces these headers.
	Set map[string]string `yaml:"set" json:"set,omitempty"`
	// Add appends these headers.
	Add map[string]string `yaml:"add" json:"add,omitempty"`
	// Remove deletes these headers.
	Remove []string `yaml:"remove" json:"remove,omitempty"`
}

// ReloadOptions configure rolling reloads.
type ReloadOptions struct {
	// Parallel is how many instances are replaced at a time. Default 1; a
	// written 0 is refused.
	Parallel int `yaml:"parallel" json:"parallel"`
}

// Upstream is a group of servers herd balances over but does not run,
// like NGINX's upstream block.
type Upstream struct {
	Name string `yaml:"-" json:"name"`
	Line int    `yaml:"-" json:"line"`

	// Servers are the members. Required unless Resolve finds them.
	Servers []*UpstreamServer `yaml:"servers" json:"servers"`
	// Resolve finds (more) servers in DNS and follows its changes, like
	// NGINX Plus's resolve and HAProxy's server-template: for a Kubernetes
	// headless Service, say. Default: none.
	Resolve *Resolve `yaml:"resolve" json:"resolve,omitempty"`
	// MaxFails and FailTimeout: passive health as for apps. Defaults 1 and 10s.
	MaxFails    int      `yaml:"max_fails" json:"max_fails,omitempty"`
	FailTimeout Duration `yaml:"fail_timeout" json:"fail_timeout,omitempty"`
	// Proxy tunes herd's connections to the servers.
	Proxy ProxyOptions `yaml:"proxy" json:"proxy"`
	// Health, when its path is set, probes every server actively; a server
	// failing it takes no requests until it passes again.
	Health HealthCheck `yaml:"health" json:"health,omitempty"`
}

// Resolve is a DNS name whose records are an upstream's servers: the A and
// AAAA records of Name, each at Port, or the targets and ports of the SRV
// records of SRV. It is looked up again every Every; a failed lookup keeps
// the servers of the last one that answered.
type Resolve struct {
	// Name's addresses are servers at Port, e.g. api.default.svc.cluster.local.
	Name string `yaml:"name" json:"name,omitempty"`
	// Port is the servers' port, with Name. Required there.
	Port int `yaml:"port" json:"port,omitempty"`
	// SRV names SRV records instead, e.g. _http._tcp.api.default.svc.cluster.local.
	SRV string `yaml:"srv" json:"srv,omitempty"`
	// Every is the interval between lookups. Default 5s.
	Every Duration `yaml:"every" json:"every,omitempty"`
	// Resolver is the DNS server's host:port. Default: the system's (/etc/resolv.conf).
	Resolver string `yaml:"resolver" json:"resolver,omitempty"`
}

// HealthCheck is an active HTTP health check.
type HealthCheck struct {
	// Path is probed with GET, e.g. /health. Empty: no active check.
	Path string `yaml:"path" json:"path,omitempty"`
	// Interval between probes of a server. Default 5s.
	Interval Duration `yaml:"interval" json:"interval,omitempty"`
	// Timeout of one probe. Default 2s.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// Status is the status expected. Default 0: any 2xx.
	Status int `yaml:"status" json:"status,omitempty"`
	// Passes in a row make a failing server healthy again. Default 1.
	Passes int `yaml:"passes" json:"passes,omitempty"`
	// Fails in a row make a server unhealthy. Default 2.
	Fails int `yaml:"fails" json:"fails,omitempty"`
}

// ProxyOptions tune the connections herd keeps to an app's instances or an
// upstream's servers (NGINX's proxy_*_timeout and keepalive).
type ProxyOptions struct {
	// ConnectTimeout bounds connecting. Default 3s.
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// ReadTimeout bounds the wait between two reads of a response (not the
	// whole response), like NGINX's proxy_read_timeout. Default 60s.
	ReadTimeout Duration `yaml:"read_timeout" json:"read_timeout"`
	// SendTimeout bounds the wait between two writes of a request. Default 60s.
	SendTimeout Duration `yaml:"send_timeout" json:"send_timeout"`
	// Keepalive idle connections are kept per instance or server. Default 256.
	Keepalive int `yaml:"keepalive" json:"keepalive"`
	// KeepaliveTimeout closes an idle connection; keep it below the
	// backend's own (Node's is 5s). Default 4s.
	KeepaliveTimeout Duration `yaml:"keepalive_timeout" json:"keepalive_timeout"`
	// KeepaliveRequests closes a connection after this many requests (the
	// last one goes with Connection: close), like NGINX's
	// keepalive_requests. Default 0: no limit (Go's Transport does not
	// grow per connection, the reason NGINX has a default of 1000).
	KeepaliveRequests int `yaml:"keepalive_requests" json:"keepalive_requests,omitempty"`
	// H2C speaks HTTP/2 without TLS to the backend (prior knowledge), for
	// gRPC-style backends. Default false: HTTP/1.1.
	H2C bool `yaml:"h2c" json:"h2c,omitempty"`
}

// Retry says when a failed request is tried on another instance, like
// NGINX's proxy_next_upstream. Nothing is retried once a byte reached the
// client or the request body was read.
type Retry struct {
	// On lists the conditions: error (connection refused or reset before
	// a response), timeout, http_502, http_503, http_504, http_429; or just
	// off. A refused connection is always retried. Default [error, timeout].
	On []string `yaml:"on" json:"on"`
	// Tries is how many instances a request may try in all. Default 2.
	Tries int `yaml:"tries" json:"tries"`
	// Timeout bounds the time spent trying (NGINX's
	// proxy_next_upstream_timeout). Default 0: no bound.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// NonIdempotent lets POST and PATCH be retried too, after a reset,
	// timeout or status (a refused connection always may be). Default false.
	NonIdempotent bool `yaml:"non_idempotent" json:"non_idempotent,omitempty"`
}

// UpstreamServer is one member of an upstream.
type UpstreamServer struct {
	Line int `yaml:"-" json:"line"`
	// URL is http://host:port. Required.
	URL string `yaml:"url" json:"url"`
	// Weight biases round_robin and least_conn. Default 1.
	Weight int `yaml:"weight" json:"weight,omitempty"`
	// Backup servers get requests only while every other one is down. Default false.
	Backup bool `yaml:"backup" json:"backup,omitempty"`
	// Down keeps the server in the file but out of service. Default false.
	Down bool `yaml:"down" json:"down,omitempty"`
	// MaxConns bounds the requests in flight to it; 0 is no bound. Over it,
	// requests wait for another server or a free slot (queue_timeout).
	MaxConns int `yaml:"max_conns" json:"max_conns,omitempty"`
}

// Route sends requests whose path starts with Path to the app To.
type Route struct {
	Line int `yaml:"-" json:"line"`

	// Path is a path prefix, "/" matching everything. Required; must start with "/".
	Path string `yaml:"path" json:"path,omitempty"`
	// To names an app under apps: or an upstream under upstreams:. Required.
	To string `yaml:"to" json:"to,omitempty"`
	// Balance is round_robin (smooth weighted, default), least_conn,
	// random_two, ip_hash or hash (consistent, on hash_key).
	Balance Balance `yaml:"balance" json:"balance,omitempty"`
	// Gateway makes this route an API gateway, as the seed's APIGateway:
	// PATH/NAME/... goes to the app or upstream NAME, with this route's
	// options; an unknown NAME is a 404 JSON listing the services. Default false.
	Gateway bool `yaml:"gateway" json:"gateway,omitempty"`
	// StripPrefix, for a gateway, forwards only what follows PATH/NAME
	// (/api/users/7 reaches users as /7). Default true.
	StripPrefix *bool `yaml:"strip_prefix" json:"strip_prefix,omitempty"`
	// Serve answers the route with one of herd's own endpoints instead of
	// proxying: "health" (the aggregate health of the admin listener's
	// /health) or "services" (its GET /services), for load balancers and
	// clients that only reach the public listener. Default: none (proxy).
	Serve string `yaml:"serve" json:"serve,omitempty"`
	// Root serves the files of this folder instead of proxying (like NGINX's
	// alias: /static/app.js under path /static is ROOT/app.js), with ETag,
	// Last-Modified and Range. Relative to the config's folder. Default: none.
	Root string `yaml:"root" json:"root,omitempty"`
	// CacheMaxAge sets Cache-Control: public, max-age on files served from
	// Root (the seed's expires). Default 0: none.
	CacheMaxAge Duration `yaml:"cache_max_age" json:"cache_max_age,omitempty"`
	// Retry says when to try another instance.
	Retry Retry `yaml:"retry" json:"retry"`
	// Cache keeps this route's GET responses in memory, as NGINX's proxy_cache.
	// Default: no cache.
	Cache *Cache `yaml:"cache" json:"cache,omitempty"`
	// RateLimit limits requests per client, as NGINX's limit_req. Default: none.
	RateLimit *RateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	// ConnLimit limits requests in flight per client, as NGINX's limit_conn. Default: none.
	ConnLimit *ConnLimit `yaml:"conn_limit" json:"conn_limit,omitempty"`
	// HashKey is what balance: hash hashes: "header:NAME", "cookie:NAME",
	// "query:NAME", "path" or "ip". Required with hash.
	HashKey string `yaml:"hash_key" json:"hash_key,omitempty"`
	// Sticky pins a client to the instance (or server) that first served it,
	// with a cookie; the balance policy picks for clients without one.
	// Default: not sticky.
	Sticky *Sticky `yaml:"sticky" json:"sticky,omitempty"`
	// Compress gzip- or zstd-compresses responses for clients that accept
	// it: `compress: true`, or {level, min_size, types, zstd}. Default off.
	Compress Compress `yaml:"compress" json:"compress,omitempty"`
	// Headers edit the responses of this route (NGINX's add_header and friends).
	// Default: no edits.
	Headers HeaderRules `yaml:"headers" json:"headers,omitempty"`
	// SecurityHeaders adds X-Content-Type-Options: nosniff, X-Frame-Options:
	// SAMEORIGIN and Referrer-Policy: strict-origin-when-cross-origin where
	// the app did not set them, and removes X-Powered-By. Default true.
	SecurityHeaders *bool `yaml:"security_headers" json:"security_headers,omitempty"`
	// MaxBody bounds request bodies; a larger one gets 413 (NGINX's
	// client_max_body_size). Default 10M.
	MaxBody Size `yaml:"max_body" json:"max_body,omitempty"`
	// QueueTimeout bounds how long a request waits for a ready instance before a 503. Default 5s.
	QueueTimeout Duration `yaml:"queue_timeout" json:"queue_timeout,omitempty"`
}

// Autoscale is herd's own autoscaler for one app. Unlike an HPA, which
// sees a pod's CPU, it sees requests: those in flight on each instance and
// those waiting in herd's queue. It adds instances as soon as the load per
// instance is over the target, and removes them (drained, one reload step
// at a time) only after the load has stayed under it for Cooldown.
type Autoscale struct {
	// Min and Max bound the instances. Min defaults to 1; Max is required.
	Min int `yaml:"min" json:"min,omitempty"`
	Max int `yaml:"max" json:"max"`
	// Inflight is the target of requests in flight (or queued) per
	// instance. Default 4, when CPU is not set.
	Inflight int `yaml:"inflight" json:"inflight,omitempty"`
	// CPU is the target CPU per instance, in percent of one core (70 as in
	// the seed's HPA); for shared_socket apps and workers, whose requests
	// herd does not see. Default: none.
	CPU float64 `yaml:"cpu" json:"cpu,omitempty"`
	// Cooldown is how long the load must stay under the target before an
	// instance is removed. Default 30s.
	Cooldown Duration `yaml:"cooldown" json:"cooldown,omitempty"`
}

// Ready is the readiness check of an app: exactly one of HTTP, TCP,
// Notify, IPC, Process. It may be written as one word: `ready: none` or
// `ready: process` (Process), `ready: ipc`, `ready: notify`, `ready: tcp`,
// or a path, `ready: /health` (HTTP).
type Ready struct {
	// HTTP is a path probed with GET on the instance's port; any 2xx or 3xx is ready.
	HTTP string `yaml:"http" json:"http,omitempty"`
	// TCP: ready once the instance's port accepts a connection.
	TCP bool `yaml:"tcp" json:"tcp,omitempty"`
	// Notify: ready once the instance writes READY=1 to $NOTIFY_SOCKET.
	Notify bool `yaml:"notify" json:"notify,omitempty"`
	// IPC: ready once a Node app calls process.send('ready') on the IPC
	// channel herd gives it (PM2's wait_ready).
	IPC bool `yaml:"ipc" json:"ipc,omitempty"`
	// Process: ready once the instance has stayed up min_uptime, for a
	// process that serves no port (a queue worker, a cron job). Such an
	// app needs no route, and no route may send to it.
	Process bool `yaml:"process" json:"process,omitempty"`
}

// Balance names a selection policy.
type Balance string

// The selection policies.
const (
	RoundRobin Balance = "round_robin"
	LeastConn  Balance = "least_conn"
	RandomTwo  Balance = "random_two"
	IPHash     Balance = "ip_hash" // consistent hashing of the client address
	Hash       Balance = "hash"    // consistent hashing of hash_key
)

// Args are arguments, written as a command line or a list; may be empty.
type Args []string

// Command is a command line split into argv. Words may hold $NAME or
// ${NAME}, expanded per instance from its environment ($PORT,
// $HERD_INSTANCE, env:…) when it starts; $$ is a literal $.
type Command []string

// Instances is an instance count; "max" is resolved to runtime.NumCPU() at
// load, "max-N" to runtime.NumCPU()-N but at least 1.
type Instances int

// Duration is a time.Duration written as "1.5s"/"300ms", or as a bare
// number of milliseconds like PM2 (a bare number below 50 gets a warning:
// `listen_timeout: 2` is more likely meant as 2s).
type Duration time.Duration

// Signal is a signal written as "SIGTERM", "TERM" or "15".
type Signal syscall.Signal

// WatchPaths are the paths an app watches: a list, or true for ".".
type WatchPaths []string

// Mode is how clients reach an app's instances.
type Mode string

// The modes.
const (
	ProxyMode  Mode = "proxy"
	SharedMode Mode = "shared_socket"
)

// Size is a number of bytes, written 300M, 1.5G, 512K or as a bare number.
type Size int64

// Prefix is a CIDR or a single address ("127.0.0.1" means 127.0.0.1/32).
type Prefix netip.Prefix
