package config

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, defaults and validates the config at path. On any
// problem it returns Errors listing every one, in line order, and no config.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the path is already in front of the message
		}
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the config: %v; create it, or name another file with -f", err)}}
	}
	return Parse(path, data)
}

// Parse is Load on data already read; file names it in messages, and
// relative cwd: paths resolve against its folder.
//
// Decoding problems and validation problems are reported together, but a
// key that could not be decoded is not validated too: a command with an
// unterminated quote is not also reported as missing.
func Parse(file string, data []byte) (*Config, error) {
	doc, p := parseYAML(file, data)
	if p != nil {
		return nil, Errors{*p}
	}
	c := &Config{File: file, lines: map[string]int{}}
	d := newDecoder(file, c.lines)
	d.decode(doc, reflect.ValueOf(c).Elem(), "")
	c.applyDefaults()
	ps := append(d.problems, c.validate(d.hasFailed)...)
	if len(ps) > 0 {
		return nil, ps.sorted()
	}
	return c, nil
}

// parseYAML returns the top-level mapping of data, or the one problem that
// stops it being read: bad syntax, nothing at all, or not a mapping.
func parseYAML(file string, data []byte) (*yaml.Node, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	err := dec.Decode(&root)
	switch {
	case errors.Is(err, io.EOF):
		return nil, emptyProblem(file)
	case err != nil:
		p := syntaxProblem(file, err)
		return nil, &p
	}
	if len(root.Content) == 0 || isNull(root.Content[0]) {
		return nil, emptyProblem(file)
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, &Problem{File: file, Line: doc.Line,
			Msg: fmt.Sprintf("want a mapping of keys (listen:, apps:, routes:…) at the top, got %s; start with a line like apps:", kindName(doc))}
	}
	// yaml reads one document; a second one (after ---) would be ignored
	// silently, and with it half of someone's config.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p := syntaxProblem(file, err)
		return nil, &p
	default:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, &Problem{File: file, Line: line,
			Msg: "a second YAML document (after ---) is not read; keep one document, with listen:, apps: and routes: in it"}
	}
	return doc, nil
}

func emptyProblem(file string) *Problem {
	return &Problem{File: file, Line: 1,
		Msg: "the config is empty; write at least apps: (with a command for each) and routes: (see the README)"}
}

// syntaxProblem turns a YAML error ("yaml: line 3: …") into a Problem.
func syntaxProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, strings.TrimSpace(after)
			}
		}
	}
	return Problem{File: file, Line: line, Msg: "YAML syntax: " + msg + "; check indentation and quoting"}
}

// applyDefaults is the one place defaults are set: zero means default.
func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Admin == "" {
		c.Admin = "127.0.0.1:9090"
	}
	base := filepath.Dir(c.File)
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	if c.Logs.Dir == "" {
		c.Logs.Dir = ".herd/logs"
	}
	if !filepath.IsAbs(c.Logs.Dir) {
		c.Logs.Dir = filepath.Join(base, c.Logs.Dir)
	}
	if c.Logs.MaxSize == 0 {
		c.Logs.MaxSize = 10 << 20
	}
	if c.Logs.MaxFiles == 0 {
		c.Logs.MaxFiles = 5
	}
	setDefault(&c.Logs.MaxAge, 14*24*time.Hour)
	if c.AccessLog.Format == "" {
		c.AccessLog.Format = "combined"
	}
	if c.AccessLog.Path == "" {
		c.AccessLog.Path = filepath.Join(c.Logs.Dir, "access.log")
	} else if c.AccessLog.Path != "stdout" && !filepath.IsAbs(c.AccessLog.Path) {
		c.AccessLog.Path = filepath.Join(base, c.AccessLog.Path)
	}
	if c.TLS.Cert != "" || c.TLS.Key != "" {
		for _, f := range []*string{&c.TLS.Cert, &c.TLS.Key} {
			if *f != "" && !filepath.IsAbs(*f) {
				*f = filepath.Join(base, *f)
			}
		}
		if c.TLS.HTTP2 == nil {
			on := true
			c.TLS.HTTP2 = &on
		}
		setDefault(&c.TLS.HSTSMaxAge, 365*24*time.Hour)
	}
	setDefault(&c.Server.ReadHeaderTimeout, 10*time.Second)
	setDefault(&c.Server.IdleTimeout, 75*time.Second)
	if c.Server.MaxHeaderBytes == 0 {
		c.Server.MaxHeaderBytes = 64 << 10
	}
	if c.Server.FastPath == nil {
		on := true
		c.Server.FastPath = &on
	}
	for _, a := range c.Apps {
		p := "apps." + a.Name
		if a.Instances == 0 {
			a.Instances = 1
		}
		if a.InstanceVar == "" {
			a.InstanceVar = "NODE_APP_INSTANCE"
		}
		if a.Mode == "" {
			a.Mode = ProxyMode
		}
		if a.Ready == (Ready{}) && c.Line(p+".ready") == 0 {
			if a.WaitReady || a.Mode == SharedMode {
				a.Ready.Notify = true
			} else {
				a.Ready.TCP = true
			}
		}
		if a.Autorestart == nil {
			on := true
			a.Autorestart = &on
		}
		setDefault(&a.ListenTimeout, 10*time.Second)
		setDefault(&a.RestartDelay, 100*time.Millisecond)
		setDefault(&a.MinUptime, time.Second)
		setDefault(&a.DrainTimeout, 30*time.Second)
		setDefault(&a.KillTimeout, 5*time.Second)
		setDefault(&a.FailTimeout, 10*time.Second)
		if a.MaxRestarts == 0 {
			a.MaxRestarts = 16
		}
		// For these two, 0 written out is a mistake Validate reports, not
		// a way to ask for the default.
		if a.MaxFails == 0 && c.Line(p+".max_fails") == 0 {
			a.MaxFails = 1
		}
		if a.Reload.Parallel == 0 && c.Line(p+".reload.parallel") == 0 {
			a.Reload.Parallel = 1
		}
		if a.StopSignal == 0 {
			a.StopSignal = Signal(syscall.SIGTERM)
		}
		switch {
		case a.Cwd == "":
			a.Cwd = base
		case !filepath.IsAbs(a.Cwd):
			a.Cwd = filepath.Join(base, a.Cwd)
		}
	}
	for _, a := range c.Apps {
		a.Proxy.applyDefaults()
	}
	for _, u := range c.Upstreams {
		u.Proxy.applyDefaults()
		if u.Health.Path != "" {
			u.Health.applyDefaults()
		}
		if u.MaxFails == 0 {
			u.MaxFails = 1
		}
		setDefault(&u.FailTimeout, 10*time.Second)
		for _, sv := range u.Servers {
			if sv != nil && sv.Weight == 0 {
				sv.Weight = 1
			}
		}
	}
	g := &c.Registry
	setDefault(&g.TTL, 30*time.Second)
	g.Check.Path = cmp.Or(g.Check.Path, "/health")
	g.Check.applyDefaults()
	g.Prefix = cmp.Or(g.Prefix, "herd:")
	g.Advertise = cmp.Or(g.Advertise, "127.0.0.1")
	for _, r := range c.Routes {
		if r.Gateway && r.StripPrefix == nil {
			on := true
			r.StripPrefix = &on
		}
		if r.Root != "" && !filepath.IsAbs(r.Root) {
			r.Root = filepath.Join(base, r.Root)
		}
		if r.Sticky != nil && r.Sticky.Cookie == "" {
			r.Sticky.Cookie = "herd_sticky"
		}
		if r.SecurityHeaders == nil {
			on := true
			r.SecurityHeaders = &on
		}
		if r.MaxBody == 0 {
			r.MaxBody = 10 << 20
		}
		if c := r.Cache; c != nil && c.Valid == nil {
			ten := Duration(10 * time.Minute)
			c.Valid = map[string]Duration{"200": ten, "301": ten, "302": ten}
		}
		if rl := r.RateLimit; rl != nil {
			rl.Key = cmp.Or(rl.Key, "ip")
			rl.Status = cmp.Or(rl.Status, 429)
		}
		if cl := r.ConnLimit; cl != nil {
			cl.Key = cmp.Or(cl.Key, "ip")
			cl.Status = cmp.Or(cl.Status, 429)
		}
		if r.Retry.On == nil {
			r.Retry.On = []string{"error", "timeout"}
		}
		if r.Retry.Tries == 0 {
			r.Retry.Tries = 2
		}
		if r.Compress.Enabled {
			if r.Compress.Level == 0 {
				r.Compress.Level = 5
			}
			if r.Compress.MinSize == 0 {
				r.Compress.MinSize = 1 << 10
			}
			if r.Compress.Zstd == nil {
				on := true
				r.Compress.Zstd = &on
			}
		}
		if r.Balance == "" {
			r.Balance = RoundRobin
		}
		setDefault(&r.QueueTimeout, 5*time.Second)
	}
}

func (h *HealthCheck) applyDefaults() {
	setDefault(&h.Interval, 5*time.Second)
	setDefault(&h.Timeout, 2*time.Second)
	h.Passes = cmp.Or(h.Passes, 1)
	h.Fails = cmp.Or(h.Fails, 2)
}

func (o *ProxyOptions) applyDefaults() {
	setDefault(&o.ConnectTimeout, 3*time.Second)
	setDefault(&o.ReadTimeout, 60*time.Second)
	setDefault(&o.SendTimeout, 60*time.Second)
	setDefault(&o.KeepaliveTimeout, 4*time.Second)
	if o.Keepalive == 0 {
		o.Keepalive = 256
	}
}

func setDefault(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// Validate checks a decoded, defaulted config and returns Errors with every
// problem, in line order, or nil. It stats cwd folders and looks up
// commands, and binds nothing (see CheckListeners).
func (c *Config) Validate() error {
	if ps := c.validate(nil); len(ps) > 0 {
		return ps.sorted()
	}
	return nil
}

// validate is Validate, leaving out keys for which skip (if not nil) is true:
// those that already had a problem while decoding.
func (c *Config) validate(skip func(path string) bool) Errors {
	var ps Errors
	checked := func(path string) bool { return skip == nil || !skip(path) }
	add := func(path, format string, args ...any) {
		if checked(path) {
			ps = append(ps, c.Problem(path, fmt.Sprintf(format, args...)))
		}
	}
	// missing reports that a required key under parent is not there; it
	// names parent, the place to add it.
	missing := func(parent, key, msg string) {
		if checked(parent + "." + key) {
			ps = append(ps, c.Problem(parent, msg))
		}
	}
	hosts := map[string]string{}
	for _, key := range []string{"listen", "admin"} {
		addr := c.Listen
		if key == "admin" {
			addr = c.Admin
		}
		if host, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			add(key, "%q is not an address; write host:port like 127.0.0.1:8080, or :8080 for every interface", addr)
		} else {
			hosts[key] = host
		}
	}
	if _, lport, _ := net.SplitHostPort(c.Listen); len(hosts) == 2 && lport != "0" && sameListener(c.Listen, c.Admin) {
		add("admin", "the admin listener cannot share %s with listen; pick another port, like admin: 127.0.0.1:9090", c.Admin)
	}

	names := make([]string, 0, len(c.Apps))
	apps := map[string]bool{}
	for _, a := range c.Apps {
		names = append(names, a.Name)
		apps[a.Name] = true
	}
	for i, u := range c.Upstreams {
		p := "upstreams." + u.Name
		if apps[u.Name] {
			add(p, "%q is also an app; give the upstream another name", u.Name)
		}
		apps[u.Name] = true
		names = append(names, u.Name)
		serving := 0
		for j, sv := range u.Servers {
			sp := fmt.Sprintf("%s.servers.%d", p, j)
			if sv == nil {
				continue
			}
			if _, err := upstreamHostPort(sv.URL); err != nil {
				add(sp+".url", "%v", err)
			}
			if sv.Weight < 0 || sv.MaxConns < 0 {
				add(sp, "weight and max_conns cannot be negative")
			}
			if !sv.Down && !sv.Backup {
				serving++
			}
		}
		if u.Health != (HealthCheck{}) {
			u.Health.validate(p+".health", add)
		}
		u.Proxy.validate(p+".proxy", add)
		if len(u.Servers) == 0 {
			add(p, "no servers; add servers: [{url: http://127.0.0.1:9000}]")
		} else if serving == 0 {
			add(p+".servers", "every server is down or a backup, so none takes requests; make one a regular server")
		}
		_ = i
	}
	if len(c.Apps) == 0 && len(c.Upstreams) == 0 && checked("apps") {
		ps = append(ps, Problem{File: c.File, Line: max(c.Line("apps"), 1), Path: "apps",
			Msg: "no apps; add one, like apps: {web: {command: ./server, instances: 2}}"})
	}
	for _, a := range c.Apps {
		p := "apps." + a.Name
		a.Proxy.validate(p+".proxy", add)
		cwdOK := true
		if st, err := os.Stat(a.Cwd); err != nil {
			cwdOK = false
			add(p+".cwd", "folder %s does not exist; create it or fix the path (relative paths start at the config's folder)", a.Cwd)
		} else if !st.IsDir() {
			cwdOK = false
			add(p+".cwd", "%s is a file, not a folder; name the folder the app runs in", a.Cwd)
		}
		switch {
		case a.Mode == SharedMode && a.Listen == "":
			add(p+".mode", "shared_socket needs the address to share; add listen:, like listen: :3000")
		case a.Mode == SharedMode:
			if _, _, err := net.SplitHostPort(a.Listen); err != nil {
				add(p+".listen", "%q is not an address; write host:port like 127.0.0.1:3000, or :3000", a.Listen)
			}
			if !a.Ready.Notify {
				add(p+".ready", "a shared_socket app is ready when it says so (ready: {notify: true}); probes would reach any instance")
			}
		case a.Listen != "":
			add(p+".listen", "listen: is only for mode: shared_socket; in proxy mode herd gives each instance its own PORT")
		}
		switch {
		case len(a.Command) == 0:
			missing(p, "command", "no command; add command: with the program to run and its arguments, like command: ./server --port $PORT")
		case !cwdOK:
			// A relative program cannot be looked for; the cwd problem says why.
		case a.Interpreter != "":
			if msg := checkExecutable(a.Interpreter, a.Cwd); msg != "" {
				add(p+".interpreter", "%s", msg)
			}
		case a.Build != "" && strings.Contains(a.Command[0], "/"):
			// The build makes the program; a missing one is its failure.
		default:
			if msg := checkExecutable(a.Command[0], a.Cwd); msg != "" {
				add(p+".command", "%s", msg)
			}
		}
		if a.Instances < 1 {
			add(p+".instances", "%d instances cannot run; write 1 or more, or \"max\"", a.Instances)
		}
		if a.WaitReady && !a.Ready.Notify {
			add(p+".wait_ready", "wait_ready: true means ready: {notify: true}, but ready says otherwise; keep one of them")
		}
		if a.CronRestart != "" {
			if _, err := cron.ParseStandard(a.CronRestart); err != nil {
				add(p+".cron_restart", "%q is not a cron spec (%v); write 5 fields like \"0 3 * * *\" or @daily", a.CronRestart, err)
			}
		}
		if a.IncrementVar != "" {
			if _, err := strconv.Atoi(a.Env[a.IncrementVar]); err != nil {
				add(p+".increment_var", "env has no number named %s to increment; add it under env:, like %s: 3000", a.IncrementVar, a.IncrementVar)
			}
		}
		for _, code := range a.StopExitCodes {
			if code < 0 || code > 255 {
				add(p+".stop_exit_codes", "%d is not an exit code; write codes from 0 to 255", code)
			}
		}
		if n := countModes(a.Ready); n != 1 {
			add(p+".ready", "set exactly one of http: /path, tcp: true or notify: true (got %d), like ready: {http: /health}", n)
		}
		if a.Ready.HTTP != "" && !strings.HasPrefix(a.Ready.HTTP, "/") {
			add(p+".ready.http", "%q is not a path; write one starting with /, like /health", a.Ready.HTTP)
		}
		if a.MaxRestarts < 0 {
			add(p+".max_restarts", "%d is negative; write 0 or more", a.MaxRestarts)
		}
		if a.Reload.Parallel < 1 {
			add(p+".reload.parallel", "%d instances at a time cannot replace any; write 1 or more", a.Reload.Parallel)
		}
		if a.MaxFails < 1 {
			add(p+".max_fails", "%d failures cannot mark an instance down; write 1 or more", a.MaxFails)
		}
		if msg := envKeyProblem(a.InstanceVar); msg != "" {
			add(p+".instance_var", "%s", msg)
		}
		for _, k := range slices.Sorted(maps.Keys(a.Env)) {
			if msg := envKeyProblem(k); msg != "" {
				add(p+".env."+k, "%s", msg)
			}
		}
	}

	if t := c.TLS; t != (TLS{}) {
		switch {
		case t.Cert == "" || t.Key == "":
			add("tls", "tls needs both cert: and key: (PEM files)")
		case t.Listen == "":
			add("tls", "tls needs listen:, the HTTPS address, like listen: :8443")
		default:
			if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
				add("tls.cert", "cannot load the certificate and key: %v; check the two files", err)
			}
			if _, _, err := net.SplitHostPort(t.Listen); err != nil {
				add("tls.listen", "%q is not an address; write host:port like :8443", t.Listen)
			}
		}
	}
	switch c.AccessLog.Format {
	case "combined", "json", "off":
	default:
		add("access_log.format", "unknown format %q; write combined, json or off", c.AccessLog.Format)
	}
	if c.Server.MaxHeaderBytes < 4<<10 {
		add("server.max_header_bytes", "%s is too small for real clients; write 4K or more", c.Server.MaxHeaderBytes)
	}
	if c.Logs.MaxSize < 1<<20 {
		add("logs.max_size", "%s is too small to rotate by; write 1M or more", c.Logs.MaxSize)
	}
	if c.Logs.MaxFiles < 0 {
		add("logs.max_files", "%d is negative; write how many rotated files to keep, like 5", c.Logs.MaxFiles)
	}
	for _, a := range c.Apps {
		for i, w := range a.Watch {
			path := w
			if !filepath.IsAbs(path) {
				path = filepath.Join(a.Cwd, path)
			}
			if _, err := os.Stat(path); err != nil {
				add(fmt.Sprintf("apps.%s.watch", a.Name), "watch path %d, %s, does not exist; fix it or remove it", i, path)
			}
		}
		for _, pat := range a.IgnoreWatch {
			if _, err := filepath.Match(pat, ""); err != nil {
				add("apps."+a.Name+".ignore_watch", "%q is not a glob pattern; write one like *.log or tmp", pat)
			}
		}
		if a.LogType != "" && a.LogType != "json" && a.LogType != "text" {
			add("apps."+a.Name+".log_type", "unknown log_type %q; write json or text", a.LogType)
		}
	}
	shared := map[string]bool{}
	for _, a := range c.Apps {
		shared[a.Name] = a.Mode == SharedMode
	}
	allShared := len(c.Apps) > 0 && !slices.ContainsFunc(c.Apps, func(a *App) bool { return a.Mode != SharedMode })
	if len(c.Routes) == 0 && checked("routes") && !allShared {
		ps = append(ps, Problem{File: c.File, Line: max(c.Line("routes"), 1), Path: "routes",
			Msg: "no routes; add one, like routes: [{path: /, to: web}]"})
	}
	paths := map[string]int{}
	for i, r := range c.Routes {
		p := "routes." + strconv.Itoa(i)
		switch {
		case r.Path == "":
			missing(p, "path", "no path; add path: / (or a prefix like /api)")
		case !strings.HasPrefix(r.Path, "/"):
			add(p+".path", "%q must start with /; write /%s", r.Path, r.Path)
		default:
			if first, dup := paths[r.Path]; dup {
				add(p+".path", "path %s is already routed by routes.%d; remove one", r.Path, first)
			}
			paths[r.Path] = i
		}
		switch {
		case r.Serve != "":
			if r.Serve != "health" && r.Serve != "services" {
				add(p+".serve", "unknown endpoint %q; write serve: health or serve: services", r.Serve)
			} else if r.To != "" || r.Root != "" || r.Gateway {
				add(p+".serve", "a route serves herd's %s, or proxies (to:), files (root:) or services (gateway:); keep one", r.Serve)
			}
		case r.Gateway:
			if r.To != "" || r.Root != "" {
				add(p+".gateway", "a gateway picks the service from the path; remove to: and root:")
			}
		case r.Root != "":
			if r.To != "" {
				add(p+".root", "a route serves files (root:) or proxies (to:), not both; keep one")
			} else if st, err := os.Stat(r.Root); err != nil || !st.IsDir() {
				add(p+".root", "folder %s does not exist; create it or fix the path", r.Root)
			}
		case r.To == "":
			missing(p, "to", "no to:; name the app that serves it, like to: web (or serve files with root: ./public)")
		case !apps[r.To] && len(names) > 0:
			hint := "name one of them or define it under apps:"
			if best := closest(r.To, names); best != "" {
				hint = fmt.Sprintf("did you mean %q?", best)
			}
			add(p+".to", "no app or upstream named %q; %s (apps and upstreams: %s)", r.To, hint, strings.Join(names, ", "))
		case shared[r.To]:
			add(p+".to", "%s is a shared_socket app: clients reach it on its own listen:, not through herd's routes; remove this route or use mode: proxy", r.To)
		}
		switch r.Balance {
		case RoundRobin, LeastConn, RandomTwo, IPHash, Hash:
		default:
			add(p+".balance", "unknown policy %q; write round_robin, least_conn, random_two, ip_hash or hash", r.Balance)
		}
		if c := r.Cache; c != nil {
			if c.Size < 64<<10 {
				add(p+".cache.size", "a cache needs a size bounding its memory, 64K or more, like size: 64M")
			}
			for code := range c.Valid {
				if n, err := strconv.Atoi(code); err != nil || n < 100 || n > 599 {
					add(p+".cache.valid", "%q is not an HTTP status; write statuses like 200: 10m", code)
				}
			}
			if r.Root != "" {
				add(p+".cache", "files under root: are served from disk with ETag; cache is for proxied routes")
			}
		}
		if rl := r.RateLimit; rl != nil {
			if !validRate(rl.Rate) {
				add(p+".rate_limit.rate", "rate %q: write requests per second or minute, like 10r/s or 600r/m", rl.Rate)
			}
			if rl.Burst < 0 || rl.Delay < 0 {
				add(p+".rate_limit", "burst and delay cannot be negative")
			}
			if !validLimitKey(rl.Key) {
				add(p+".rate_limit.key", "key %q: write ip or header:NAME", rl.Key)
			}
			if rl.Status != 429 && rl.Status != 503 {
				add(p+".rate_limit.status", "%d: write 429 or 503", rl.Status)
			}
			if rl.Redis != "" && !strings.HasPrefix(rl.Redis, "redis://") && !strings.HasPrefix(rl.Redis, "rediss://") {
				add(p+".rate_limit.redis", "%q is not a Redis URL; write redis://HOST:PORT/DB, like redis://127.0.0.1:6379/0", rl.Redis)
			}
		}
		if cl := r.ConnLimit; cl != nil {
			if cl.Max < 1 {
				add(p+".conn_limit.max", "write how many requests in flight each client may have, 1 or more")
			}
			if !validLimitKey(cl.Key) {
				add(p+".conn_limit.key", "key %q: write ip or header:NAME", cl.Key)
			}
			if cl.Status != 429 && cl.Status != 503 {
				add(p+".conn_limit.status", "%d: write 429 or 503", cl.Status)
			}
		}
		for _, on := range r.Retry.On {
			switch on {
			case "error", "timeout", "http_502", "http_503", "http_504", "http_429":
			case "off":
				if len(r.Retry.On) > 1 {
					add(p+".retry.on", "off cannot go with other conditions; write [off] alone")
				}
			default:
				add(p+".retry.on", "unknown condition %q; write error, timeout, http_502, http_503, http_504, http_429 or off", on)
			}
		}
		if r.Retry.Tries < 0 {
			add(p+".retry.tries", "%d is negative; write 1 (no retry) or more", r.Retry.Tries)
		}
		if r.Balance == Hash && !validHashKey(r.HashKey) {
			add(p+".hash_key", "balance: hash needs hash_key: header:NAME, cookie:NAME, query:NAME, path or ip (got %q)", r.HashKey)
		}
		if r.HashKey != "" && r.Balance != Hash {
			add(p+".hash_key", "hash_key is only for balance: hash; remove it or set balance: hash")
		}
		if (r.Balance == Hash || r.Balance == IPHash) && r.Sticky != nil {
			add(p+".sticky", "sticky and %s both pin clients; keep one", r.Balance)
		}
		if r.Balance == Hash || r.Balance == IPHash {
			for _, u := range c.Upstreams {
				if u.Name != r.To {
					continue
				}
				for _, sv := range u.Servers {
					if sv != nil && sv.Backup {
						add(p+".balance", "%s with backup servers in upstream %s: hashing would skip backups or move keys when they join, as NGINX refuses too; remove backup or use another policy", r.Balance, u.Name)
						break
					}
				}
			}
		}
	}
	c.validateRegistry(add)
	return ps
}

// validate checks an app's or upstream's proxy: options at path p.
func (o *ProxyOptions) validate(p string, add func(path, format string, args ...any)) {
	if o.Keepalive < 0 {
		add(p+".keepalive", "%d is negative; write the idle connections to keep, like 256", o.Keepalive)
	}
	switch {
	case o.KeepaliveRequests < 0:
		add(p+".keepalive_requests", "%d is negative; write a number of requests, like 1000, or leave it out for no limit", o.KeepaliveRequests)
	case o.KeepaliveRequests > 0 && o.H2C:
		add(p+".keepalive_requests", "with h2c every request shares one connection, so closing it after N requests would cut the others; remove one of the two")
	}
}

// validate checks an active health check at path p.
func (h HealthCheck) validate(p string, add func(path, format string, args ...any)) {
	if !strings.HasPrefix(h.Path, "/") {
		add(p+".path", "health checks need a path starting with /, like path: /health")
	}
	if h.Status != 0 && (h.Status < 100 || h.Status > 599) {
		add(p+".status", "%d is not an HTTP status; write one like 200 (or leave it out for any 2xx)", h.Status)
	}
}

// validateRegistry checks registry:; problems go through add.
func (c *Config) validateRegistry(add func(path, format string, args ...any)) {
	g := c.Registry
	if g.Redis != "" && !strings.HasPrefix(g.Redis, "redis://") && !strings.HasPrefix(g.Redis, "rediss://") {
		add("registry.redis", "%q is not a Redis URL; write redis://HOST:PORT/DB, like redis://127.0.0.1:6379/0", g.Redis)
	}
	if g.TTL != 0 && time.Duration(g.TTL) < time.Second {
		add("registry.ttl", "%s is too short for a heartbeat; write 1s or more, like ttl: 30s", time.Duration(g.TTL))
	}
	g.Check.validate("registry.check", add)
	if g.Advertise != "" && net.ParseIP(g.Advertise) == nil && strings.ContainsAny(g.Advertise, ":/ ") {
		add("registry.advertise", "%q is not a host; write an address or name like 10.0.0.5", g.Advertise)
	}
	for i, name := range g.Require {
		if name == "" {
			add("registry.require."+strconv.Itoa(i), "an empty name; write the name of a service")
		}
	}
}

// sameListener reports whether two host:port addresses would collide: the
// same port, on the same host or where either is every interface.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb {
		return false
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || any(ha) || any(hb)
}

func countModes(r Ready) int {
	n := 0
	for _, on := range []bool{r.HTTP != "", r.TCP, r.Notify} {
		if on {
			n++
		}
	}
	return n
}

// envKeyProblem says what is wrong with an environment variable name, or "".
// Only what the OS cannot carry is refused: names like NODE.ENV are unusual
// but legal.
func envKeyProblem(k string) string {
	switch {
	case k == "":
		return "a variable needs a name; write NAME: value"
	case strings.Contains(k, "="):
		name, value, _ := strings.Cut(k, "=")
		return fmt.Sprintf("%q holds =, which ends a variable's name; write %s: %s", k, name, value)
	case strings.ContainsRune(k, 0):
		return fmt.Sprintf("%q holds a NUL byte; use letters, digits and _", k)
	}
	return ""
}

// checkExecutable returns why prog cannot be run from cwd, or "".
func checkExecutable(prog, cwd string) string {
	if !strings.Contains(prog, "/") {
		_, err := exec.LookPath(prog)
		switch {
		case errors.Is(err, exec.ErrDot):
			return fmt.Sprintf("%q is found only through a relative folder in PATH; write its path, like ./%s", prog, prog)
		case err != nil:
			return fmt.Sprintf("%q is not in PATH (%s); install it, or if you build it yourself, write its path like ./bin/%s", prog, os.Getenv("PATH"), prog)
		}
		return ""
	}
	path := prog
	if !filepath.IsAbs(path) {
		path = filepath.Join(cwd, path)
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Sprintf("%s not found (looked for %s); build it first or fix the path", prog, path)
	case st.IsDir():
		return fmt.Sprintf("%s is a folder (%s); name the program inside it", prog, path)
	case !st.Mode().IsRegular():
		return fmt.Sprintf("%s is not a regular file (%s); name the program itself", prog, path)
	case st.Mode()&0o111 == 0:
		return fmt.Sprintf("%s is not executable; chmod +x it", prog)
	}
	return ""
}

func validLimitKey(k string) bool {
	name, ok := strings.CutPrefix(k, "header:")
	return k == "ip" || (ok && name != "")
}

// validRate checks NGINX's rate notation, 10r/s or 600r/m.
func validRate(s string) bool {
	num, unit, ok := strings.Cut(s, "r/")
	n, err := strconv.ParseFloat(num, 64)
	return ok && err == nil && n > 0 && (unit == "s" || unit == "m")
}

func validHashKey(k string) bool {
	if k == "path" || k == "ip" {
		return true
	}
	kind, name, ok := strings.Cut(k, ":")
	return ok && name != "" && (kind == "header" || kind == "cookie" || kind == "query")
}

// HostPort is the host:port a server's URL names.
func (s *UpstreamServer) HostPort() string {
	hp, _ := upstreamHostPort(s.URL)
	return hp
}

// upstreamHostPort checks an upstream server URL and returns its host:port.
func upstreamHostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not a server URL; write one like http://127.0.0.1:9000", raw)
	}
	if u.Scheme == "https" {
		return "", fmt.Errorf("%q: https upstreams are not supported yet; use http://", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return "", fmt.Errorf("%q has a path; upstream URLs name a server only, like http://127.0.0.1:9000", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return host, nil
}

// Argv is the command line an instance runs: the interpreter and its
// arguments first, when there is one.
func (a *App) Argv() []string {
	if a.Interpreter == "" {
		return a.Command
	}
	argv := append([]string{a.Interpreter}, a.InterpreterArgs...)
	argv = append(argv, a.NodeArgs...)
	return append(argv, a.Command...)
}

// SelectEnv merges each app's env_NAME block over its env, for
// `herd up --env NAME`. It is an error when no app has such a block.
func (c *Config) SelectEnv(name string) error {
	found := false
	for _, a := range c.Apps {
		set, ok := a.EnvSets[name]
		if !ok {
			continue
		}
		found = true
		if a.Env == nil {
			a.Env = map[string]string{}
		}
		for k, v := range set {
			a.Env[k] = v
		}
	}
	if !found {
		return Errors{{File: c.File, Msg: fmt.Sprintf("--env %s: no app has an env_%s: block; add one or drop --env", name, name)}}
	}
	return nil
}

// App returns the app named name, or nil.
func (c *Config) App(name string) *App {
	for _, a := range c.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// CheckListeners tries to bind the listen and admin addresses and reports
// those already in use, for `herd check`. `herd up` binds them for real.
func CheckListeners(c *Config) Errors {
	var ps Errors
	for _, key := range []string{"listen", "admin"} {
		addr := c.Listen
		if key == "admin" {
			addr = c.Admin
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			ps = append(ps, ListenProblem(c, key, addr, err))
			continue
		}
		l.Close()
	}
	return ps
}

// ListenProblem words a failure to listen on addr, the value of key.
func ListenProblem(c *Config, key, addr string, err error) Problem {
	if errors.Is(err, syscall.EADDRINUSE) {
		return c.Problem(key, fmt.Sprintf("%s is already in use; pick a free port or stop whatever holds it", addr))
	}
	return c.Problem(key, fmt.Sprintf("cannot listen on %s: %v", addr, err))
}
