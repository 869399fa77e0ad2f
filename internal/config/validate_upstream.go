package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// validateUpstream checks one upstream under upstreams: and its servers.
func (v *validator) validateUpstream(u *Upstream) {
	p := "upstreams." + u.Name
	serving := 0
	for j, sv := range u.Servers {
		if sv == nil {
			continue
		}
		sp := fmt.Sprintf("%s.servers.%d", p, j)
		if _, err := upstreamHostPort(sv.URL); err != nil {
			v.add(sp+".url", "%v", err)
		}
		if sv.Weight < 0 || sv.MaxConns < 0 {
			v.add(sp, "weight and max_conns cannot be negative")
		}
		if !sv.Down && !sv.Backup {
			serving++
		}
	}
	if u.Health != (HealthCheck{}) {
		v.validateHealthCheck(p+".health", u.Health)
	}
	v.validateProxyOptions(p+".proxy", u.Proxy)
	if u.Resolve != nil {
		v.validateResolve(p+".resolve", u.Resolve)
	}
	switch {
	case len(u.Servers) == 0 && u.Resolve == nil:
		v.add(p, "no servers; add servers: [{url: http://127.0.0.1:9000}], or resolve: {name: api.example.internal, port: 8080}")
	case len(u.Servers) > 0 && serving == 0 && u.Resolve == nil:
		v.add(p+".servers", "every server is down or a backup, so none takes requests; make one a regular server")
	}
}

// validateProxyOptions checks an app's or upstream's proxy: options at p.
func (v *validator) validateProxyOptions(p string, o ProxyOptions) {
	if o.Keepalive < 0 {
		v.add(p+".keepalive", "%d is negative; write the idle connections to keep, like 256", o.Keepalive)
	}
	switch {
	case o.KeepaliveRequests < 0:
		v.add(p+".keepalive_requests", "%d is negative; write a number of requests, like 1000, or leave it out for no limit", o.KeepaliveRequests)
	case o.KeepaliveRequests > 0 && o.H2C:
		v.add(p+".keepalive_requests", "with h2c every request shares one connection, so closing it after N requests would cut the others; remove one of the two")
	}
}

// validateHealthCheck checks an active health check at p.
func (v *validator) validateHealthCheck(p string, h HealthCheck) {
	if !strings.HasPrefix(h.Path, "/") {
		v.add(p+".path", "health checks need a path starting with /, like path: /health")
	}
	if h.Status != 0 && (h.Status < 100 || h.Status > 599) {
		v.add(p+".status", "%d is not an HTTP status; write one like 200 (or leave it out for any 2xx)", h.Status)
	}
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

// validateResolve checks an upstream's resolve:.
func (v *validator) validateResolve(p string, r *Resolve) {
	switch {
	case r.Name == "" && r.SRV == "":
		v.add(p, "resolve needs name: and port: (A/AAAA records), or srv: (SRV records), like {name: api.default.svc.cluster.local, port: 8080}")
	case r.Name != "" && r.SRV != "":
		v.add(p, "name: and srv: both name the records; keep one")
	case r.Name != "" && (r.Port < 1 || r.Port > 65535):
		v.add(p+".port", "name: needs the servers' port, 1 to 65535, like port: 8080")
	case r.SRV != "" && r.Port != 0:
		v.add(p+".port", "SRV records carry their ports; drop port:")
	}
	if time.Duration(r.Every) < time.Second {
		v.add(p+".every", "looking up every %s would flood the DNS server; write 1s or more, like every: 5s", time.Duration(r.Every))
	}
	if r.Resolver != "" {
		if _, _, err := net.SplitHostPort(r.Resolver); err != nil {
			v.add(p+".resolver", "%q is not host:port; write the DNS server like 10.96.0.10:53", r.Resolver)
		}
	}
}
