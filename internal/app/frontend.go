package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herdhq/herd/internal/accesslog"
	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/health"
	"github.com/herdhq/herd/internal/limits"
	"github.com/herdhq/herd/internal/proxy"
	"github.com/herdhq/herd/internal/registry"
	"github.com/herdhq/herd/internal/supervisor"
)

// frontend is the public handler: the proxy built from the current config,
// swapped atomically when the config is reloaded, so requests in flight
// finish on the routes they started with and none is refused meanwhile.
// App pools live as long as herd (the supervisor feeds them); an upstream's
// pool is kept across reloads while its definition is unchanged, so its
// passive-health state survives.
type frontend struct {
	log     *slog.Logger
	observe func(route, app string, status int, elapsed time.Duration)
	access  *accesslog.Logger

	mu        sync.Mutex // one load at a time
	pools     map[string]*balance.Pool
	upstreams map[string]*config.Upstream // as the pools were built
	// upstreamWork stops an upstream's active health checks and DNS
	// follower, by upstream; upstreamWorkers waits for them.
	upstreamWork    map[string]context.CancelFunc
	upstreamWorkers sync.WaitGroup
	current         atomic.Pointer[proxy.Handler]

	// directory gives gateway routes the registered services.
	directory proxy.Directory
	// endpoints are herd's own handlers that serve: routes name.
	endpoints map[string]http.Handler
	// required names the services /health needs, from registry.require.
	required atomic.Pointer[[]string]
	// redis holds the clients of rate_limit.redis, by URL, for herd's life.
	redis map[string]*redis.Client
	// limitErrors is when a Redis rate limit last logged a failure, by route.
	limitErrors sync.Map
	// kept is the route state of the current routes; nextKept collects it
	// during a load (see keep).
	kept, nextKept map[string]kept
}

// kept is route state that outlives a reload while its config is unchanged.
type kept struct {
	conf  any
	state any
}

// keep returns the state kept under key by the previous load if it was
// made from the same conf, else a new one from make; either way it is kept
// for the next load. So a reload does not reset rate limits, connection
// counts or caches it did not change, as NGINX keeps its shared zones.
// Called from load, with f.mu held.
func keep[T any](f *frontend, key string, conf any, make func() (T, error)) (T, error) {
	if k, ok := f.kept[key]; ok && reflect.DeepEqual(k.conf, conf) {
		f.nextKept[key] = k
		return k.state.(T), nil
	}
	v, err := make()
	if err == nil {
		f.nextKept[key] = kept{conf: conf, state: v}
	}
	return v, err
}

// redisClient returns the client for url, connecting (and checking that
// Redis answers) the first time. Called with f.mu held.
func (f *frontend) redisClient(url string) (*redis.Client, error) {
	if c := f.redis[url]; c != nil {
		return c, nil
	}
	// A slow Redis must not hold requests long: the limit fails open.
	c, err := dialRedis(context.Background(), url, time.Second, 200*time.Millisecond)
	if err != nil {
		return nil, err
	}
	if f.redis == nil {
		f.redis = map[string]*redis.Client{}
	}
	f.redis[url] = c
	return c, nil
}

// limitFailed logs a Redis rate limit's failures, at most every 10 s per
// route: while Redis is down every request would fail the same way.
func (f *frontend) limitFailed(route string) func(error) {
	return func(err error) {
		now := time.Now()
		if last, ok := f.limitErrors.Load(route); ok && now.Sub(last.(time.Time)) < 10*time.Second {
			return
		}
		f.limitErrors.Store(route, now)
		f.log.Warn("rate limit store failed; requests pass unlimited meanwhile", "route", route, "err", err)
	}
}

// localPools returns the pools of the apps and of the upstreams, for the
// registry: names it must not hand out, and instances it publishes.
func (f *frontend) localPools() (apps, upstreams map[string]*balance.Pool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	apps, upstreams = map[string]*balance.Pool{}, map[string]*balance.Pool{}
	for name, p := range f.pools {
		if _, ok := f.upstreams[name]; ok {
			upstreams[name] = p
		} else {
			apps[name] = p
		}
	}
	return apps, upstreams
}

// close stops the health checks and DNS followers, waits for them, and
// closes the Redis clients.
func (f *frontend) close() {
	f.mu.Lock()
	for _, cancel := range f.upstreamWork {
		cancel()
	}
	f.upstreamWork = nil
	for _, c := range f.redis {
		c.Close()
	}
	f.redis = nil
	f.mu.Unlock()
	f.upstreamWorkers.Wait()
}

func (f *frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.current.Load().ServeHTTP(w, r)
}

// load builds the proxy for cfg and swaps it in. cfg has been validated;
// routes to apps herd does not run (added since it started) are refused.
func (f *frontend) load(cfg *config.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextKept = map[string]kept{}
	pools := map[string]*balance.Pool{}
	for name, p := range f.pools {
		if _, upstream := f.upstreams[name]; !upstream {
			pools[name] = p // an app's
		}
	}
	upstreams := map[string]*config.Upstream{}
	fresh := map[string]bool{} // upstreams whose pool is new
	for _, u := range cfg.Upstreams {
		if old, ok := f.upstreams[u.Name]; ok && reflect.DeepEqual(old.Servers, u.Servers) && reflect.DeepEqual(old.Resolve, u.Resolve) &&
			old.MaxFails == u.MaxFails && old.FailTimeout == u.FailTimeout && old.Health == u.Health {
			pools[u.Name] = f.pools[u.Name]
		} else {
			var prev *balance.Pool
			if _, was := f.upstreams[u.Name]; was {
				prev = f.pools[u.Name]
			}
			pools[u.Name] = staticPool(u, prev)
			fresh[u.Name] = true
		}
		upstreams[u.Name] = u
	}
	routes := make([]proxy.Route, 0, len(cfg.Routes))
	for i, r := range cfg.Routes {
		// What only building finds (a Redis that does not answer) is
		// reported against the route, like any config problem.
		problem := func(err error) error {
			return config.Errors{cfg.Problem("routes."+strconv.Itoa(i), err.Error())}
		}
		if r.Root == "" && !r.Gateway && r.Serve == "" && pools[r.To] == nil {
			return problem(fmt.Errorf("route %s goes to app %q, which herd did not start with; restart herd to add apps", r.Path, r.To))
		}
		route, err := f.buildRoute(cfg, r, pools[r.To])
		if err != nil {
			return problem(err)
		}
		if r.Gateway {
			if route.Gateway, err = f.gatewayServices(cfg, r, pools); err != nil {
				return problem(err)
			}
			route.StripPrefix = r.StripPrefix == nil || *r.StripPrefix
			route.Directory = f.directory
		}
		if r.Serve != "" {
			route.Files, route.App = f.endpoints[r.Serve], ""
		}
		routes = append(routes, route)
	}
	trusted := make([]netip.Prefix, len(cfg.TrustedProxies))
	for i, p := range cfg.TrustedProxies {
		trusted[i] = netip.Prefix(p)
	}
	h, err := proxy.New(proxy.Options{Routes: routes, TrustedProxies: trusted, Log: f.log, Observe: f.observe, AccessLog: f.access, KeepSlashes: !*cfg.Server.MergeSlashes})
	if err != nil {
		return err
	}
	f.current.Store(h)
	f.kept, f.nextKept = f.nextKept, nil
	required := cfg.Registry.Require
	if required == nil {
		for _, a := range cfg.Apps {
			required = append(required, a.Name)
		}
	}
	f.required.Store(&required)
	// An upstream's background work (active health checks, DNS
	// following) follows its pool: stopped with a pool gone or rebuilt
	// (a changed health: or resolve: rebuilds it), started with a new one.
	if f.upstreamWork == nil {
		f.upstreamWork = map[string]context.CancelFunc{}
	}
	for name, cancel := range f.upstreamWork {
		if upstreams[name] == nil || fresh[name] {
			cancel()
			delete(f.upstreamWork, name)
		}
	}
	for _, u := range cfg.Upstreams {
		if f.upstreamWork[u.Name] != nil || (u.Health.Path == "" && u.Resolve == nil) {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		f.upstreamWork[u.Name] = cancel
		pool := pools[u.Name]
		if u.Health.Path != "" {
			check := healthCheck(u.Health)
			f.upstreamWorkers.Go(func() { health.Run(ctx, pool, check, f.log) })
		}
		if u.Resolve != nil {
			f.upstreamWorkers.Go(func() { followDNS(ctx, u, pool, f.log) })
		}
	}
	f.pools, f.upstreams = pools, upstreams
	return nil
}

// buildRoute turns a route of the config into the proxy's.
func (f *frontend) buildRoute(cfg *config.Config, r *config.Route, pool *balance.Pool) (proxy.Route, error) {
	policy, err := balance.NewPolicy(string(r.Balance))
	if err != nil {
		return proxy.Route{}, err // Validate refused unknown policies
	}
	route := proxy.Route{
		Path: r.Path, App: r.To, Pool: pool, Policy: policy,
		QueueTimeout: time.Duration(r.QueueTimeout),
		Headers:      headerRules(cfg, r), MaxBody: int64(r.MaxBody),
		HashKey: r.HashKey, Retry: retryPolicy(r.Retry),
	}
	if r.Balance == config.IPHash {
		route.HashKey = "ip"
	}
	if rl := r.RateLimit; rl != nil {
		limit, err := limits.ParseRate(rl.Rate)
		if err != nil {
			return proxy.Route{}, err // Validate checked it
		}
		desc := rl.Rate
		if rl.Burst > 0 {
			desc += fmt.Sprintf(" with a burst of %d", rl.Burst)
		}
		// One limit per route path: a gateway's services share it, as
		// they share NGINX's location.
		limiter, err := keep(f, "rate "+r.Path, *rl, func() (limits.Limiter, error) {
			if rl.Redis == "" {
				return limits.NewRate(limit, rl.Burst, rl.NoDelay, rl.Delay), nil
			}
			rdb, err := f.redisClient(rl.Redis)
			if err != nil {
				return nil, fmt.Errorf("route %s: rate_limit.redis: %w", r.Path, err)
			}
			// Keys name the route, so that two routes' limits stay apart.
			prefix := cfg.Registry.Prefix + "rl:" + r.Path + ":"
			return limits.NewRedisRate(rdb, prefix, limit, rl.Burst, rl.NoDelay, rl.Delay, f.limitFailed(r.Path)), nil
		})
		if err != nil {
			return proxy.Route{}, err
		}
		route.Rate = &proxy.RateLimit{Limiter: limiter, Key: rl.Key, Status: rl.Status, Desc: desc}
	}
	if c := r.Cache; c != nil {
		valid := map[int]time.Duration{}
		for code, d := range c.Valid {
			n, _ := strconv.Atoi(code) // Validate checked it
			valid[n] = time.Duration(d)
		}
		// A cache per service: a gateway strips the prefix, so two
		// services' paths may be the same.
		cache, err := keep(f, "cache "+r.Path+" "+r.To, *c, func() (*proxy.Cache, error) {
			return proxy.NewCache(int64(c.Size), valid, c.StaleOnError)
		})
		if err != nil {
			return proxy.Route{}, fmt.Errorf("route %s: cache: %w", r.Path, err)
		}
		route.Cache = cache
	}
	if cl := r.ConnLimit; cl != nil {
		conns, _ := keep(f, "conns "+r.Path, *cl, func() (*limits.Conns, error) { return limits.NewConns(cl.Max), nil })
		route.Conns = &proxy.ConnLimit{Conns: conns, Key: cl.Key, Status: cl.Status, Max: cl.Max}
	}
	if r.Root != "" {
		route.Files = proxy.Static(r.Root, r.Path, time.Duration(r.CacheMaxAge))
		route.App = ""
	}
	if r.Sticky != nil {
		route.StickyCookie, route.StickyMaxAge = r.Sticky.Cookie, time.Duration(r.Sticky.MaxAge)
	}
	if a := cfg.App(r.To); a != nil {
		route.Transport = transportOptions(a.Proxy)
	}
	for _, u := range cfg.Upstreams {
		if u.Name == r.To {
			route.Transport = transportOptions(u.Proxy)
		}
	}
	if c := r.Compress; c.Enabled {
		route.Compress = &proxy.Compression{Level: c.Level, MinSize: int(c.MinSize), Types: c.Types, Zstd: c.Zstd != nil && *c.Zstd}
	}
	return route, nil
}

// gatewayServices are the routes a gateway can reach: every proxy-mode app
// and every upstream, each with the gateway route's options.
func (f *frontend) gatewayServices(cfg *config.Config, gw *config.Route, pools map[string]*balance.Pool) (map[string]proxy.Route, error) {
	services := map[string]proxy.Route{}
	add := func(name string) error {
		r := *gw
		r.Gateway, r.To = false, name
		route, err := f.buildRoute(cfg, &r, pools[name])
		services[name] = route
		return err
	}
	for _, a := range cfg.Apps {
		if a.Mode != config.SharedMode && pools[a.Name] != nil {
			if err := add(a.Name); err != nil {
				return nil, err
			}
		}
	}
	for _, u := range cfg.Upstreams {
		if err := add(u.Name); err != nil {
			return nil, err
		}
	}
	return services, nil
}

func transportOptions(o config.ProxyOptions) proxy.TransportOptions {
	return proxy.TransportOptions{
		ConnectTimeout: time.Duration(o.ConnectTimeout), ReadTimeout: time.Duration(o.ReadTimeout),
		SendTimeout: time.Duration(o.SendTimeout), Keepalive: o.Keepalive, KeepaliveTimeout: time.Duration(o.KeepaliveTimeout),
		H2C: o.H2C, KeepaliveRequests: o.KeepaliveRequests,
	}
}

func retryPolicy(r config.Retry) proxy.RetryPolicy {
	p := proxy.RetryPolicy{Tries: r.Tries, Timeout: time.Duration(r.Timeout), NonIdempotent: r.NonIdempotent}
	for _, on := range r.On {
		switch on {
		case "off":
			p.Tries = 1
		case "error":
			p.OnError = true
		case "timeout":
			p.OnTimeout = true
		default: // http_502 and friends; Validate checked the names
			code, _ := strconv.Atoi(strings.TrimPrefix(on, "http_"))
			p.OnStatus = append(p.OnStatus, code)
		}
	}
	return p
}

// services describes every service a gateway reaches: the apps (from
// their instances' states), the upstreams (from their servers' health) and
// the registered services.
func (f *frontend) services(apps []supervisor.AppStatus, reg *registry.Registry) []registry.ServiceStatus {
	var out []registry.ServiceStatus
	served, upstreams := f.localPools()
	for _, a := range apps {
		// A worker (ready: process) is listed for /health, with no URL: it
		// serves nothing.
		kind := "app"
		if served[a.Name] == nil {
			kind = "worker"
		}
		s := registry.ServiceStatus{Name: a.Name, Kind: kind, Instances: []registry.InstanceStatus{}}
		for _, in := range a.Instances {
			is := registry.InstanceStatus{ID: strconv.Itoa(in.Index), State: string(in.State), Healthy: in.State == supervisor.Ready, Inflight: in.Inflight}
			if in.Port != 0 && kind == "app" {
				is.URL = "http://127.0.0.1:" + strconv.Itoa(in.Port)
			}
			s.Add(is)
		}
		out = append(out, s)
	}
	names := make([]string, 0, len(upstreams))
	for name := range upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	now := time.Now()
	for _, name := range names {
		s := registry.ServiceStatus{Name: name, Kind: "upstream", Instances: []registry.InstanceStatus{}}
		for _, b := range upstreams[name].Backends() {
			s.Add(registry.BackendStatus(strings.TrimPrefix(b.ID, name+"/"), "http://"+b.Addr, b, now))
		}
		out = append(out, s)
	}
	if reg != nil {
		out = append(out, reg.Status()...)
	}
	return out
}
