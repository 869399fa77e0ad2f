package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// validateRoutes checks routes:; names are the apps and upstreams a route
// may send to, in file order.
func (v *validator) validateRoutes(names []string) {
	c := v.c
	if len(c.Routes) == 0 && c.needsRoutes() {
		v.absent("routes", "no routes; add one, like routes: [{path: /, to: web}]")
	}
	paths := map[string]int{} // path → index of the route that has it
	for i, r := range c.Routes {
		p := "routes." + strconv.Itoa(i)
		switch {
		case r.Path == "":
			v.missing(p, "path", "no path; add path: / (or a prefix like /api)")
		case !strings.HasPrefix(r.Path, "/"):
			v.add(p+".path", "%q must start with /; write /%s", r.Path, r.Path)
		default:
			if first, dup := paths[r.Path]; dup {
				v.add(p+".path", "path %s is already routed by routes.%d; remove one", r.Path, first)
			}
			paths[r.Path] = i
		}
		v.validateRoute(p, r, names)
	}
}

// validateRoute checks one route at p, except its path (validateRoutes
// compares paths across routes).
func (v *validator) validateRoute(p string, r *Route, names []string) {
	v.validateTarget(p, r, names)
	switch r.Balance {
	case RoundRobin, LeastConn, RandomTwo, IPHash, Hash:
	default:
		v.add(p+".balance", "unknown policy %q; write round_robin, least_conn, random_two, ip_hash or hash", r.Balance)
	}
	if c := r.Cache; c != nil {
		if c.Size < 64<<10 {
			v.add(p+".cache.size", "a cache needs a size bounding its memory, 64K or more, like size: 64M")
		}
		for code := range c.Valid {
			if n, err := strconv.Atoi(code); err != nil || n < 100 || n > 599 {
				v.add(p+".cache.valid", "%q is not an HTTP status; write statuses like 200: 10m", code)
			}
		}
		if r.Root != "" {
			v.add(p+".cache", "files under root: are served from disk with ETag; cache is for proxied routes")
		}
	}
	if rl := r.RateLimit; rl != nil {
		v.validateRateLimit(p+".rate_limit", rl)
	}
	if cl := r.ConnLimit; cl != nil {
		if cl.Max < 1 {
			v.add(p+".conn_limit.max", "write how many requests in flight each client may have, 1 or more")
		}
		if !validLimitKey(cl.Key) {
			v.add(p+".conn_limit.key", "key %q: write ip or header:NAME", cl.Key)
		}
		if cl.Status != 429 && cl.Status != 503 {
			v.add(p+".conn_limit.status", "%d: write 429 or 503", cl.Status)
		}
	}
	v.validateRetry(p+".retry", r.Retry)
	v.validateHashing(p, r)
}

// validateTarget checks what a route serves: herd's own endpoint (serve:),
// a gateway, files (root:) or an app or upstream (to:).
func (v *validator) validateTarget(p string, r *Route, names []string) {
	c := v.c
	switch {
	case r.Serve != "":
		if r.Serve != "health" && r.Serve != "services" {
			v.add(p+".serve", "unknown endpoint %q; write serve: health or serve: services", r.Serve)
		} else if r.To != "" || r.Root != "" || r.Gateway {
			v.add(p+".serve", "a route serves herd's %s, or proxies (to:), files (root:) or services (gateway:); keep one", r.Serve)
		}
	case r.Gateway:
		if r.To != "" || r.Root != "" {
			v.add(p+".gateway", "a gateway picks the service from the path; remove to: and root:")
		}
	case r.Root != "":
		if r.To != "" {
			v.add(p+".root", "a route serves files (root:) or proxies (to:), not both; keep one")
		} else if st, err := os.Stat(r.Root); err != nil || !st.IsDir() {
			v.add(p+".root", "folder %s does not exist; create it or fix the path", r.Root)
		}
	case r.To == "":
		v.missing(p, "to", "no to:; name the app that serves it, like to: web (or serve files with root: ./public)")
	case c.App(r.To) == nil && c.upstream(r.To) == nil && len(names) > 0:
		hint := "name one of them or define it under apps:"
		if best := closest(r.To, names); best != "" {
			hint = fmt.Sprintf("did you mean %q?", best)
		}
		v.add(p+".to", "no app or upstream named %q; %s (apps and upstreams: %s)", r.To, hint, strings.Join(names, ", "))
	case c.App(r.To) != nil && c.App(r.To).Mode == SharedMode:
		v.add(p+".to", "%s is a shared_socket app: clients reach it on its own listen:, not through herd's routes; remove this route or use mode: proxy", r.To)
	case c.App(r.To) != nil && c.App(r.To).Ready.Process:
		v.add(p+".to", "app %s serves no port (ready: process); remove the route or give it a readiness check on its port, like ready: {http: /health}", r.To)
	}
}

func (v *validator) validateRateLimit(p string, rl *RateLimit) {
	if !validRate(rl.Rate) {
		v.add(p+".rate", "rate %q: write requests per second or minute, like 10r/s or 600r/m", rl.Rate)
	}
	if rl.Burst < 0 || rl.Delay < 0 {
		v.add(p, "burst and delay cannot be negative")
	}
	if !validLimitKey(rl.Key) {
		v.add(p+".key", "key %q: write ip or header:NAME", rl.Key)
	}
	if rl.Status != 429 && rl.Status != 503 {
		v.add(p+".status", "%d: write 429 or 503", rl.Status)
	}
	if rl.Redis != "" && !validRedisURL(rl.Redis) {
		v.add(p+".redis", "%q is not a Redis URL; write redis://HOST:PORT/DB, like redis://127.0.0.1:6379/0", rl.Redis)
	}
}

func (v *validator) validateRetry(p string, r Retry) {
	for _, on := range r.On {
		switch on {
		case "error", "timeout", "http_502", "http_503", "http_504", "http_429":
		case "off":
			if len(r.On) > 1 {
				v.add(p+".on", "off cannot go with other conditions; write [off] alone")
			}
		default:
			v.add(p+".on", "unknown condition %q; write error, timeout, http_502, http_503, http_504, http_429 or off", on)
		}
	}
	if r.Tries < 0 {
		v.add(p+".tries", "%d is negative; write 1 (no retry) or more", r.Tries)
	}
}

// validateHashing checks hash_key and what hashing cannot go with (sticky
// cookies, backup servers).
func (v *validator) validateHashing(p string, r *Route) {
	hashing := r.Balance == Hash || r.Balance == IPHash
	if r.Balance == Hash && !validHashKey(r.HashKey) {
		v.add(p+".hash_key", "balance: hash needs hash_key: header:NAME, cookie:NAME, query:NAME, path or ip (got %q)", r.HashKey)
	}
	if r.HashKey != "" && r.Balance != Hash {
		v.add(p+".hash_key", "hash_key is only for balance: hash; remove it or set balance: hash")
	}
	if hashing && r.Sticky != nil {
		v.add(p+".sticky", "sticky and %s both pin clients; keep one", r.Balance)
	}
	if u := v.c.upstream(r.To); hashing && u != nil {
		for _, sv := range u.Servers {
			if sv != nil && sv.Backup {
				v.add(p+".balance", "%s with backup servers in upstream %s: hashing would skip backups or move keys when they join, as NGINX refuses too; remove backup or use another policy", r.Balance, u.Name)
				break
			}
		}
	}
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
