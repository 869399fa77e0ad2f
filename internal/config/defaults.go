package config

import (
	"cmp"
	"path/filepath"
	"syscall"
	"time"
)

// Defaults are set here and nowhere else: each section's applyDefaults
// says the default of each of its fields (the same value its comment in
// types.go gives), and zero means default. The proxy, the supervisor and
// the app wiring take a loaded Config as complete.

// applyDefaults fills every unset field of c, section by section. Relative
// paths (cwd, logs.dir, access_log.path, tls files, root) are made absolute
// against the config file's folder.
func (c *Config) applyDefaults() {
	c.Listen = cmp.Or(c.Listen, ":8080")
	c.Admin = cmp.Or(c.Admin, "127.0.0.1:9090")
	base := c.baseDir()
	if c.AdminAuth.TokenFile != "" {
		c.AdminAuth.TokenFile = absUnder(base, c.AdminAuth.TokenFile)
	}
	c.Logs.applyDefaults(base)
	c.AccessLog.applyDefaults(base, c.Logs.Dir)
	c.TLS.applyDefaults(base)
	c.Server.applyDefaults()
	for _, a := range c.Apps {
		a.applyDefaults(base, c.written("apps."+a.Name))
	}
	for _, u := range c.Upstreams {
		u.applyDefaults()
	}
	c.Registry.applyDefaults()
	for _, r := range c.Routes {
		r.applyDefaults(base)
	}
}

// baseDir is the absolute folder of the config file, which relative paths
// start at.
func (c *Config) baseDir() string {
	base := filepath.Dir(c.File)
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	return base
}

// written returns a function reporting whether key (under prefix) was
// written in the file, for defaults that apply only to keys left out.
func (c *Config) written(prefix string) func(key string) bool {
	return func(key string) bool { return c.Line(prefix+"."+key) != 0 }
}

// absUnder makes a relative path absolute against base; "" stays "".
func absUnder(base, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(base, path)
}

func (l *Logs) applyDefaults(base string) {
	l.Dir = absUnder(base, cmp.Or(l.Dir, ".herd/logs"))
	l.MaxSize = cmp.Or(l.MaxSize, 10<<20)
	l.MaxFiles = cmp.Or(l.MaxFiles, 5)
	setDefault(&l.MaxAge, 14*24*time.Hour)
}

func (a *AccessLog) applyDefaults(base, logsDir string) {
	a.Format = cmp.Or(a.Format, "combined")
	switch a.Path {
	case "":
		a.Path = filepath.Join(logsDir, "access.log")
	case "stdout":
	default:
		a.Path = absUnder(base, a.Path)
	}
}

// applyDefaults of TLS applies only when a cert or key is given: a TLS
// section left out stays zero, which means no HTTPS listener.
func (t *TLS) applyDefaults(base string) {
	if t.Cert == "" && t.Key == "" {
		return
	}
	t.Cert, t.Key = absUnder(base, t.Cert), absUnder(base, t.Key)
	setDefaultOn(&t.HTTP2)
	setDefault(&t.HSTSMaxAge, 365*24*time.Hour)
}

func (s *Server) applyDefaults() {
	setDefault(&s.ReadHeaderTimeout, 10*time.Second)
	setDefault(&s.IdleTimeout, 75*time.Second)
	s.MaxHeaderBytes = cmp.Or(s.MaxHeaderBytes, 64<<10)
	setDefaultOn(&s.FastPath)
	setDefaultOn(&s.MergeSlashes)
}

// applyDefaults fills an app; written reports whether one of its keys was
// in the file (for the keys whose written 0 is a mistake, not the default).
func (a *App) applyDefaults(base string, written func(key string) bool) {
	a.Instances = cmp.Or(a.Instances, 1)
	if as := a.Autoscale; as != nil {
		as.Min = cmp.Or(as.Min, 1)
		if as.CPU == 0 {
			as.Inflight = cmp.Or(as.Inflight, 4)
		}
		setDefault(&as.Cooldown, 30*time.Second)
		if !written("instances") {
			a.Instances = Instances(as.Min)
		}
	}
	a.InstanceVar = cmp.Or(a.InstanceVar, "NODE_APP_INSTANCE")
	a.Mode = cmp.Or(a.Mode, ProxyMode)
	if a.Mode == SharedMode {
		setDefault(&a.QueueTimeout, 5*time.Second)
	}
	if a.Ready == (Ready{}) && !written("ready") {
		switch {
		case a.WaitReady:
			a.Ready.IPC = true
		case a.Mode == SharedMode:
			a.Ready.Notify = true
		default:
			a.Ready.TCP = true
		}
	}
	setDefaultOn(&a.Autorestart)
	setDefault(&a.ListenTimeout, 10*time.Second)
	setDefault(&a.RestartDelay, 100*time.Millisecond)
	setDefault(&a.MinUptime, time.Second)
	setDefault(&a.DrainTimeout, 30*time.Second)
	setDefault(&a.KillTimeout, 5*time.Second)
	setDefault(&a.FailTimeout, 10*time.Second)
	a.MaxRestarts = cmp.Or(a.MaxRestarts, 16)
	a.Weight = cmp.Or(a.Weight, 1)
	// For these two, 0 written out is a mistake validateApp reports, not
	// a way to ask for the default.
	if a.MaxFails == 0 && !written("max_fails") {
		a.MaxFails = 1
	}
	if a.Reload.Parallel == 0 && !written("reload.parallel") {
		a.Reload.Parallel = 1
	}
	a.StopSignal = cmp.Or(a.StopSignal, Signal(syscall.SIGTERM))
	a.Cwd = absUnder(base, cmp.Or(a.Cwd, base))
	a.Proxy.applyDefaults()
}

func (u *Upstream) applyDefaults() {
	u.Proxy.applyDefaults()
	if u.Resolve != nil {
		setDefault(&u.Resolve.Every, 5*time.Second)
	}
	if u.Health.Path != "" {
		u.Health.applyDefaults()
	}
	u.MaxFails = cmp.Or(u.MaxFails, 1)
	setDefault(&u.FailTimeout, 10*time.Second)
	for _, sv := range u.Servers {
		if sv != nil {
			sv.Weight = cmp.Or(sv.Weight, 1)
		}
	}
}

func (g *Registry) applyDefaults() {
	setDefault(&g.TTL, 30*time.Second)
	g.Check.Path = cmp.Or(g.Check.Path, "/health")
	g.Check.applyDefaults()
	g.Prefix = cmp.Or(g.Prefix, "herd:")
	g.Advertise = cmp.Or(g.Advertise, "127.0.0.1")
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
	o.Keepalive = cmp.Or(o.Keepalive, 256)
}

func (r *Route) applyDefaults(base string) {
	if r.Gateway {
		setDefaultOn(&r.StripPrefix)
	}
	r.Root = absUnder(base, r.Root)
	if r.Sticky != nil {
		r.Sticky.applyDefaults()
	}
	setDefaultOn(&r.SecurityHeaders)
	r.MaxBody = cmp.Or(r.MaxBody, 10<<20)
	if r.Cache != nil {
		r.Cache.applyDefaults()
	}
	if r.RateLimit != nil {
		r.RateLimit.applyDefaults()
	}
	if r.ConnLimit != nil {
		r.ConnLimit.applyDefaults()
	}
	r.Retry.applyDefaults()
	if r.Compress.Enabled {
		r.Compress.applyDefaults()
	}
	r.Balance = cmp.Or(r.Balance, RoundRobin)
	setDefault(&r.QueueTimeout, 5*time.Second)
}

func (s *Sticky) applyDefaults() { s.Cookie = cmp.Or(s.Cookie, "herd_sticky") }

func (c *Cache) applyDefaults() {
	if c.Valid == nil {
		ten := Duration(10 * time.Minute)
		c.Valid = map[string]Duration{"200": ten, "301": ten, "302": ten}
	}
}

func (rl *RateLimit) applyDefaults() {
	rl.Key = cmp.Or(rl.Key, "ip")
	rl.Status = cmp.Or(rl.Status, 429)
}

func (cl *ConnLimit) applyDefaults() {
	cl.Key = cmp.Or(cl.Key, "ip")
	cl.Status = cmp.Or(cl.Status, 429)
}

func (r *Retry) applyDefaults() {
	if r.On == nil {
		r.On = []string{"error", "timeout"}
	}
	r.Tries = cmp.Or(r.Tries, 2)
}

// applyDefaults of Compress applies only when compression is on.
func (c *Compress) applyDefaults() {
	c.Level = cmp.Or(c.Level, 5)
	c.MinSize = cmp.Or(c.MinSize, 1<<10)
	setDefaultOn(&c.Zstd)
}

func setDefault(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// setDefaultOn makes an unset *bool true.
func setDefaultOn(b **bool) {
	if *b == nil {
		on := true
		*b = &on
	}
}
