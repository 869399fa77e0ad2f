package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Validate checks a decoded, defaulted config and returns Errors with every
// problem, in line order, or nil. It stats cwd folders and looks up
// commands, and binds nothing (see CheckListeners).
func (c *Config) Validate() error {
	if ps := c.validate(nil); len(ps) > 0 {
		return ps.sorted()
	}
	return nil
}

// validator collects the problems of one config. Each section has its own
// validateX method; they report through add and missing, which leave out
// the keys that already had a problem while decoding.
type validator struct {
	c    *Config
	skip func(path string) bool // nil: skip nothing
	ps   Errors
}

// checked reports whether problems at path are reported.
func (v *validator) checked(path string) bool { return v.skip == nil || !v.skip(path) }

// add reports a problem at the key path (or, if it was not written, at the
// nearest key above it that was).
func (v *validator) add(path, format string, args ...any) {
	if v.checked(path) {
		v.ps = append(v.ps, v.c.Problem(path, fmt.Sprintf(format, args...)))
	}
}

// missing reports that a required key under parent is not there; it names
// parent, the place to add it.
func (v *validator) missing(parent, key, msg string) {
	if v.checked(parent + "." + key) {
		v.ps = append(v.ps, v.c.Problem(parent, msg))
	}
}

// absent reports that a required top-level section (apps, routes) is
// missing or empty, at its line or line 1.
func (v *validator) absent(key, msg string) {
	if v.checked(key) {
		v.ps = append(v.ps, Problem{File: v.c.File, Line: max(v.c.Line(key), 1), Path: key, Msg: msg})
	}
}

// validate is Validate, leaving out keys for which skip (if not nil) is true:
// those that already had a problem while decoding.
func (c *Config) validate(skip func(path string) bool) Errors {
	v := &validator{c: c, skip: skip}
	v.validateListeners()
	v.validateAdminAuth()

	// names are the apps and upstreams routes may name, in file order.
	names := make([]string, 0, len(c.Apps)+len(c.Upstreams))
	taken := map[string]bool{}
	for _, a := range c.Apps {
		names = append(names, a.Name)
		taken[a.Name] = true
	}
	for _, u := range c.Upstreams {
		if taken[u.Name] {
			v.add("upstreams."+u.Name, "%q is also an app; give the upstream another name", u.Name)
		}
		taken[u.Name] = true
		names = append(names, u.Name)
		v.validateUpstream(u)
	}
	if len(c.Apps) == 0 && len(c.Upstreams) == 0 {
		v.absent("apps", "no apps; add one, like apps: {web: {command: ./server, instances: 2}}")
	}
	for _, a := range c.Apps {
		v.validateApp(a)
	}
	v.validateTLS()
	v.validateLogs()
	v.validateRoutes(names)
	v.validateRegistry()
	return v.ps
}

// validateListeners checks listen: and admin:.
func (v *validator) validateListeners() {
	c := v.c
	ok := 0
	for _, key := range []string{"listen", "admin"} {
		addr := c.Listen
		if key == "admin" {
			addr = c.Admin
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			v.add(key, "%q is not an address; write host:port like 127.0.0.1:8080, or :8080 for every interface", addr)
		} else {
			ok++
		}
	}
	if _, lport, _ := net.SplitHostPort(c.Listen); ok == 2 && lport != "0" && sameListener(c.Listen, c.Admin) {
		v.add("admin", "the admin listener cannot share %s with listen; pick another port, like admin: 127.0.0.1:9090", c.Admin)
	}
}

// validateTLS checks tls:, loading the certificate and key.
func (v *validator) validateTLS() {
	t := v.c.TLS
	if t == (TLS{}) {
		return
	}
	switch {
	case t.Cert == "" || t.Key == "":
		v.add("tls", "tls needs both cert: and key: (PEM files)")
	case t.Listen == "":
		v.add("tls", "tls needs listen:, the HTTPS address, like listen: :8443")
	default:
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			v.add("tls.cert", "cannot load the certificate and key: %v; check the two files", err)
		}
		if _, _, err := net.SplitHostPort(t.Listen); err != nil {
			v.add("tls.listen", "%q is not an address; write host:port like :8443", t.Listen)
		}
	}
}

// validateLogs checks access_log:, server: and logs:.
func (v *validator) validateLogs() {
	c := v.c
	switch c.AccessLog.Format {
	case "combined", "json", "off":
	default:
		v.add("access_log.format", "unknown format %q; write combined, json or off", c.AccessLog.Format)
	}
	if c.Server.MaxHeaderBytes < 4<<10 {
		v.add("server.max_header_bytes", "%s is too small for real clients; write 4K or more", c.Server.MaxHeaderBytes)
	}
	if c.Logs.MaxSize < 1<<20 {
		v.add("logs.max_size", "%s is too small to rotate by; write 1M or more", c.Logs.MaxSize)
	}
	if c.Logs.MaxFiles < 0 {
		v.add("logs.max_files", "%d is negative; write how many rotated files to keep, like 5", c.Logs.MaxFiles)
	}
}

// validateRegistry checks registry:.
func (v *validator) validateRegistry() {
	g := v.c.Registry
	if g.Redis != "" && !validRedisURL(g.Redis) {
		v.add("registry.redis", "%q is not a Redis URL; write redis://HOST:PORT/DB, like redis://127.0.0.1:6379/0", g.Redis)
	}
	if g.TTL != 0 && time.Duration(g.TTL) < time.Second {
		v.add("registry.ttl", "%s is too short for a heartbeat; write 1s or more, like ttl: 30s", time.Duration(g.TTL))
	}
	v.validateHealthCheck("registry.check", g.Check)
	if g.Advertise != "" && net.ParseIP(g.Advertise) == nil && strings.ContainsAny(g.Advertise, ":/ ") {
		v.add("registry.advertise", "%q is not a host; write an address or name like 10.0.0.5", g.Advertise)
	}
	for i, name := range g.Require {
		if name == "" {
			v.add(fmt.Sprintf("registry.require.%d", i), "an empty name; write the name of a service")
		}
	}
}

func validRedisURL(s string) bool {
	return strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://")
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

// needsRoutes reports whether a config without routes would be a mistake:
// unless every app is reached without one (a shared_socket app on its own
// listen:) or serves no port (ready: process or ipc, a worker), nothing
// could reach the apps.
func (c *Config) needsRoutes() bool {
	return len(c.Apps) == 0 || slices.ContainsFunc(c.Apps, func(a *App) bool {
		return a.Mode != SharedMode && !a.Ready.Process && !a.Ready.IPC
	})
}
