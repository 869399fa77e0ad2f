// Package app starts herd's subsystems for one config and stops them in
// order: listeners are bound first (so a port in use fails before anything
// starts), then the supervisor, proxy and admin servers run together; on
// cancellation the public listener stops accepting while every instance
// drains, and the admin listener closes last.
package app

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herdhq/herd/internal/accesslog"
	"github.com/herdhq/herd/internal/admin"
	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/control"
	"github.com/herdhq/herd/internal/health"
	"github.com/herdhq/herd/internal/logbuf"
	"github.com/herdhq/herd/internal/proxy"
	"github.com/herdhq/herd/internal/registry"
	"github.com/herdhq/herd/internal/supervisor"
	"github.com/herdhq/herd/internal/systemd"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Options are what Run needs besides the config.
type Options struct {
	// Log receives herd's own structured log.
	Log *slog.Logger
	// Output receives instance stdout and stderr, one "app[i] line" per Write.
	Output io.Writer
	// Socket is the control API's unix socket path; empty means SocketPath(cfg.File).
	Socket string
	// Env is the env_NAME set chosen with --env, applied again when reloads re-read the config.
	Env string
	// Reload delivers requests to reload every app (SIGHUP); nil for none.
	Reload <-chan struct{}
	// Ready, if set, is called once both listeners are bound and the apps are starting.
	Ready func(public, admin net.Addr)
}

// Run runs cfg until ctx ends, then stops gracefully. A listener that cannot
// be bound is reported as config.Errors naming the line of its key.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	log := opts.Log
	public, adminLn, err := listen(cfg)
	if err != nil {
		return err
	}
	if err := buildApps(ctx, cfg.Apps, log); err != nil {
		public.Close()
		adminLn.Close()
		return err
	}
	store, err := registryStore(ctx, cfg)
	if err != nil {
		public.Close()
		adminLn.Close()
		return err
	}
	defer store.Close()
	shared, err := listenShared(cfg)
	if err != nil {
		public.Close()
		adminLn.Close()
		return err
	}
	defer func() {
		for _, f := range shared {
			f.Close()
		}
	}()
	socket := opts.Socket
	if socket == "" {
		socket = SocketPath(cfg.File)
	}
	controlLn, err := control.Listen(socket)
	if err != nil {
		public.Close()
		adminLn.Close()
		return err
	}
	defer os.Remove(socket)
	logs := logbuf.New(opts.Output, 1000)
	if !cfg.Logs.Off {
		apps := map[string]logbuf.AppFiles{}
		for _, a := range cfg.Apps {
			apps[a.Name] = logbuf.AppFiles{Merge: a.MergeLogs, DateFormat: a.LogDateFormat, JSON: a.LogType == "json"}
		}
		err := logs.EnableFiles(logbuf.FileOptions{
			Dir: cfg.Logs.Dir, MaxSize: int64(cfg.Logs.MaxSize), MaxFiles: cfg.Logs.MaxFiles, MaxAge: time.Duration(cfg.Logs.MaxAge),
		}, apps)
		if err != nil {
			public.Close()
			adminLn.Close()
			controlLn.Close()
			return err
		}
		defer logs.Close()
	}

	// Apps that serve (every ready: but process) get a pool; upstreams'
	// come with the frontend. A worker has no pool, so no route, gateway
	// service or registry entry ever sends to it.
	pools := make(map[string]*balance.Pool, len(cfg.Apps))
	weights := map[string]int{}
	for _, a := range cfg.Apps {
		if a.Ready.Process {
			continue
		}
		pools[a.Name] = balance.NewPool(a.Name, a.MaxFails, time.Duration(a.FailTimeout))
		weights[a.Name] = a.Weight
	}
	live := &liveBackends{byID: map[uint64]*balance.Backend{}, weights: weights}
	guards := map[string]*sharedGuard{}
	for _, a := range cfg.Apps {
		if f := shared[a.Name]; f != nil {
			g, err := newSharedGuard(a.Name, f, time.Duration(a.QueueTimeout))
			if err != nil {
				public.Close()
				adminLn.Close()
				controlLn.Close()
				return err
			}
			guards[a.Name] = g
		}
	}
	var reg *registry.Registry
	sup := supervisor.New(cfg, supervisor.Hooks{
		Ready: func(in supervisor.Instance) {
			if g := guards[in.App]; g != nil {
				g.setReady(in.ID, true)
			}
			if pool := pools[in.App]; pool != nil {
				pool.Add(live.add(in))
				reg.Wake()
			}
		},
		Drain: func(ctx context.Context, in supervisor.Instance) {
			if g := guards[in.App]; g != nil {
				g.setReady(in.ID, false)
			}
			if b := live.get(in.ID); b != nil {
				pools[in.App].Drain(ctx, b)
			}
		},
		Gone: func(in supervisor.Instance) {
			if g := guards[in.App]; g != nil {
				g.setReady(in.ID, false)
			}
			if b := live.remove(in.ID); b != nil {
				pools[in.App].Remove(b)
				reg.Wake()
			}
		},
	}, log, logs.Writer)
	sup.Listeners = shared
	sup.Env = herdEnv(cfg, public.Addr(), adminLn.Addr())

	status := func() []supervisor.AppStatus {
		apps := sup.Status()
		for i := range apps {
			for j := range apps[i].Instances {
				if b := live.get(apps[i].Instances[j].ID); b != nil {
					apps[i].Instances[j].Inflight = b.Inflight()
				}
			}
		}
		return apps
	}
	metrics := admin.NewMetrics(status)
	mgr := &manager{cfgPath: cfg.File, env: opts.Env, sup: sup, status: status, log: log}
	var front *frontend
	mgr.onReloadAll = func(c *config.Config) error { return front.load(c) }

	access, closeAccess, err := openAccessLog(cfg)
	if err != nil {
		public.Close()
		adminLn.Close()
		controlLn.Close()
		return err
	}
	defer closeAccess()
	front = &frontend{pools: pools, log: log, observe: metrics.ObserveRequest, access: access}
	defer front.close()
	reg = registry.New(registry.Options{
		Store: store, Advertise: cfg.Registry.Advertise, TTL: time.Duration(cfg.Registry.TTL), Log: log,
		Check: healthCheck(cfg.Registry.Check), Local: front.localPools,
	})
	front.directory = reg
	services := func() []registry.ServiceStatus { return front.services(status(), reg) }
	required := func() []string { return *front.required.Load() }
	front.endpoints = map[string]http.Handler{
		"health":   admin.HealthHandler(services, required),
		"services": admin.ServicesHandler(services),
	}
	err = front.load(cfg)
	if err != nil {
		public.Close()
		adminLn.Close()
		controlLn.Close()
		return err
	}

	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	publicSrv := &http.Server{
		Handler:           front,
		ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ErrorLog:          errorLog,
	}
	adminSrv := &http.Server{Handler: admin.Handler(admin.Options{
		Status: status, Gatherer: metrics.Registry, Services: services, Required: required, Registry: reg,
		Token: cfg.AdminAuth.Token,
	}), ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout), ErrorLog: errorLog}
	var httpsSrv *http.Server
	var tlsLn net.Listener
	if cfg.TLS.Cert != "" {
		httpsSrv, tlsLn, err = tlsServer(cfg, front, errorLog)
		if err != nil {
			public.Close()
			adminLn.Close()
			controlLn.Close()
			return err
		}
		if cfg.TLS.RedirectHTTP {
			publicSrv.Handler = redirectToHTTPS(tlsLn.Addr())
		}
	}

	log.Info("herd listening", "public", public.Addr().String(), "admin", adminLn.Addr().String(), "control", socket, "apps", len(cfg.Apps))
	if opts.Ready != nil {
		opts.Ready(public.Addr(), adminLn.Addr())
	}

	// The public listener serves plain proxying by the fast path, the rest
	// by publicSrv; a redirect to HTTPS is all net/http.
	var publicServer server = publicSrv
	if *cfg.Server.FastPath && !cfg.TLS.RedirectHTTP {
		publicServer = &proxy.Server{Handler: front.current.Load, Fallback: publicSrv}
	}
	var wg sync.WaitGroup
	serveErr := make(chan error, 4)
	serve := func(srv server, ln net.Listener) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}
	wg.Go(func() { serve(publicServer, public) })
	wg.Go(func() { serve(adminSrv, adminLn) })
	if httpsSrv != nil {
		wg.Go(func() {
			// ServeTLS sets up HTTP/2 unless TLSNextProto turned it off.
			if err := httpsSrv.ServeTLS(tlsLn, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		})
	}
	controlCtx, stopControl := context.WithCancel(context.Background())
	wg.Go(func() {
		if err := control.Serve(controlCtx, controlLn, control.Handler(mgr, logs)); err != nil {
			serveErr <- err
		}
	})

	runCtx, stopApps := context.WithCancel(ctx)
	defer stopApps()
	supDone := make(chan struct{})
	go func() {
		_ = sup.Run(runCtx)
		close(supDone)
	}()

	for _, g := range guards {
		wg.Go(func() { g.run(runCtx) })
	}
	wg.Go(func() { notifyReady(runCtx, status, log) })
	wg.Go(func() { announce(runCtx, cfg, status, opts.Output, public.Addr(), adminLn.Addr()) })
	regCtx, stopRegistry := context.WithCancel(context.Background())
	regDone := make(chan struct{})
	go func() {
		reg.Run(regCtx)
		close(regDone)
	}()
	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: draining requests and instances")
			break wait
		case runErr = <-serveErr:
			log.Error("listener failed; stopping", "err", runErr)
			break wait
		case <-opts.Reload:
			log.Info("SIGHUP: reloading every app from " + cfg.File)
			_ = systemd.Notify("RELOADING=1")
			if err := mgr.Action(runCtx, "reload", "all"); err != nil {
				log.Error("reload failed; the old instances keep serving", "err", err)
			}
			_ = systemd.Notify("READY=1")
		}
	}
	_ = systemd.Notify("STOPPING=1")
	// Other nodes stop routing here before the instances drain.
	stopRegistry()
	<-regDone
	stopApps()

	// The public listener stops accepting while instances drain; requests
	// already in flight finish, bounded by the longest drain_timeout.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), longestDrain(cfg)+time.Second)
	defer cancel()
	if httpsSrv != nil {
		go func() {
			if err := httpsSrv.Shutdown(shutdownCtx); err != nil {
				httpsSrv.Close()
			}
		}()
	}
	if err := publicServer.Shutdown(shutdownCtx); err != nil {
		publicServer.Close()
	}
	<-supDone
	_ = adminSrv.Close()
	stopControl()
	wg.Wait()
	log.Info("herd stopped")
	return runErr
}

// server is what serves a listener: an *http.Server or a *proxy.Server.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// announce prints, once every app has a ready instance, where herd serves
// and the config's banner: text, so that whoever ran `herd up` knows what
// to try. Addresses in the banner are the ones herd listens on.
func announce(ctx context.Context, cfg *config.Config, status func() []supervisor.AppStatus, out io.Writer, public, admin net.Addr) {
	if !waitAllReady(ctx, status, 0) {
		return
	}
	pub, adm := loopbackAddr(public), loopbackAddr(admin)
	instances := 0
	for _, a := range status() {
		instances += len(a.Instances)
	}
	text := fmt.Sprintf("\nherd is serving %d apps (%d instances) on http://%s; admin API on http://%s\n", len(cfg.Apps), instances, pub, adm)
	if cfg.Banner != "" {
		banner := strings.NewReplacer("{listen}", pub, "{admin}", adm).Replace(cfg.Banner)
		text += "\n" + strings.TrimRight(banner, "\n") + "\n"
	}
	_, _ = io.WriteString(out, text+"\n")
}

// notifyReady tells systemd herd is ready once every app has a ready
// instance, or after 30 s, whichever comes first; it
// polls only until then.
func notifyReady(ctx context.Context, status func() []supervisor.AppStatus, log *slog.Logger) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	waitAllReady(ctx, status, 30*time.Second)
	if ctx.Err() != nil {
		return
	}
	if err := systemd.Notify("READY=1"); err != nil {
		log.Warn("telling systemd herd is ready", "err", err)
	}
}

// waitAllReady polls until every app has a ready instance (true), ctx
// ends, or limit (if not zero) passes.
func waitAllReady(ctx context.Context, status func() []supervisor.AppStatus, limit time.Duration) bool {
	var deadline <-chan time.Time
	if limit > 0 {
		deadline = time.After(limit)
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !allReady(status()) {
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			return false
		case <-t.C:
		}
	}
	return true
}

func allReady(apps []supervisor.AppStatus) bool {
	for _, a := range apps {
		ready := false
		for _, in := range a.Instances {
			ready = ready || in.State == supervisor.Ready
		}
		if !ready {
			return false
		}
	}
	return true
}

// listen binds the public and admin listeners, reporting failures against
// the config lines that name them.
func listen(cfg *config.Config) (public, adminLn net.Listener, err error) {
	public, err1 := net.Listen("tcp", cfg.Listen)
	adminLn, err2 := net.Listen("tcp", cfg.Admin)
	var problems config.Errors
	if err1 != nil {
		problems = append(problems, config.ListenProblem(cfg, "listen", cfg.Listen, err1))
	}
	if err2 != nil {
		problems = append(problems, config.ListenProblem(cfg, "admin", cfg.Admin, err2))
	}
	if len(problems) > 0 {
		for _, l := range []net.Listener{public, adminLn} {
			if l != nil {
				l.Close()
			}
		}
		return nil, nil, problems
	}
	return public, adminLn, nil
}

// tlsServer binds the HTTPS listener with the config's certificate.
func tlsServer(cfg *config.Config, h http.Handler, errorLog *log.Logger) (*http.Server, net.Listener, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return nil, nil, config.Errors{cfg.Problem("tls.cert", fmt.Sprintf("cannot load the certificate and key: %v", err))}
	}
	ln, err := net.Listen("tcp", cfg.TLS.Listen)
	if err != nil {
		return nil, nil, config.Errors{config.ListenProblem(cfg, "tls.listen", cfg.TLS.Listen, err)}
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ErrorLog:          errorLog,
	}
	if cfg.TLS.HTTP2 != nil && !*cfg.TLS.HTTP2 {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){} // HTTP/1.1 only
	}
	return srv, ln, nil
}

// redirectToHTTPS answers every plain-HTTP request with a 308 to the same
// URL on the HTTPS listener.
func redirectToHTTPS(tlsAddr net.Addr) http.Handler {
	_, port, _ := net.SplitHostPort(tlsAddr.String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if port != "443" {
			host = net.JoinHostPort(host, port)
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// headerRules is a route's header config, with the security defaults unless
// security_headers is false.
func headerRules(cfg *config.Config, r *config.Route) proxy.HeaderRules {
	hr := proxy.HeaderRules{Set: r.Headers.Set, Add: r.Headers.Add, Remove: r.Headers.Remove}
	if r.SecurityHeaders == nil || *r.SecurityHeaders {
		hr.Remove = append(slices.Clone(proxy.SecurityHeaders.Remove), hr.Remove...)
		hr.Defaults = proxy.SecurityHeaders.Defaults
		if cfg.TLS.Cert != "" && cfg.TLS.HSTSMaxAge > 0 {
			hr.HSTS = "max-age=" + strconv.Itoa(int(time.Duration(cfg.TLS.HSTSMaxAge).Seconds()))
		}
	}
	return hr
}

// openAccessLog opens the access log the config asks for; nil when off.
func openAccessLog(cfg *config.Config) (*accesslog.Logger, func(), error) {
	a := cfg.AccessLog
	if a.Format == "off" {
		return nil, func() {}, nil
	}
	var out io.Writer = os.Stdout
	var file *lumberjack.Logger
	if a.Path != "stdout" {
		if err := os.MkdirAll(filepath.Dir(a.Path), 0o755); err != nil {
			return nil, nil, config.Errors{cfg.Problem("access_log.path", fmt.Sprintf("cannot create the folder of %s: %v", a.Path, err))}
		}
		file = &lumberjack.Logger{
			Filename:   a.Path,
			MaxSize:    int((int64(cfg.Logs.MaxSize) + 1<<20 - 1) >> 20),
			MaxBackups: cfg.Logs.MaxFiles,
			MaxAge:     int((time.Duration(cfg.Logs.MaxAge) + 24*time.Hour - 1) / (24 * time.Hour)),
		}
		out = file
	}
	l := accesslog.New(out, a.Format)
	return l, func() {
		l.Close()
		if file != nil {
			file.Close()
		}
	}, nil
}

// listenShared binds the sockets of shared_socket apps, as files their
// instances inherit.
func listenShared(cfg *config.Config) (map[string]*os.File, error) {
	files := map[string]*os.File{}
	var problems config.Errors
	for _, a := range cfg.Apps {
		if a.Mode != config.SharedMode {
			continue
		}
		l, err := net.Listen("tcp", a.Listen)
		if err != nil {
			problems = append(problems, config.ListenProblem(cfg, "apps."+a.Name+".listen", a.Listen, err))
			continue
		}
		f, err := l.(*net.TCPListener).File()
		l.Close() // f holds its own descriptor of the socket
		if err != nil {
			problems = append(problems, cfg.Problem("apps."+a.Name+".listen", fmt.Sprintf("cannot share %s: %v", a.Listen, err)))
			continue
		}
		files[a.Name] = f
	}
	if len(problems) > 0 {
		for _, f := range files {
			f.Close()
		}
		return nil, problems
	}
	return files, nil
}

func longestDrain(cfg *config.Config) time.Duration {
	var d time.Duration
	for _, a := range cfg.Apps {
		d = max(d, time.Duration(a.DrainTimeout))
	}
	return d
}

// upstreamPool is the pool of a static upstream: its servers are ready from
// the start (passive health alone takes them out), down ones left out.
func upstreamPool(u *config.Upstream) *balance.Pool {
	p := balance.NewPool(u.Name, u.MaxFails, time.Duration(u.FailTimeout))
	for i, sv := range u.Servers {
		if sv == nil || sv.Down {
			continue
		}
		addr := sv.HostPort()
		p.Add(&balance.Backend{
			Addr: addr, App: u.Name, Index: i, ID: u.Name + "/" + addr,
			Weight: sv.Weight, Backup: sv.Backup, MaxConns: int64(sv.MaxConns),
		})
	}
	return p
}

// liveBackends maps supervisor instance ids to balancer backends.
type liveBackends struct {
	mu      sync.Mutex
	byID    map[uint64]*balance.Backend
	weights map[string]int // per app
}

func (l *liveBackends) add(in supervisor.Instance) *balance.Backend {
	// The ID names the slot, so hashing and sticky cookies survive restarts.
	b := &balance.Backend{Addr: in.Addr, App: in.App, Index: in.Index, ID: in.App + "/" + strconv.Itoa(in.Index), Weight: l.weights[in.App]}
	l.mu.Lock()
	l.byID[in.ID] = b
	l.mu.Unlock()
	return b
}

func (l *liveBackends) get(id uint64) *balance.Backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byID[id]
}

func (l *liveBackends) remove(id uint64) *balance.Backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.byID[id]
	delete(l.byID, id)
	return b
}

// SocketPath is the default control socket for the config at file: in a
// .herd folder beside it, or, when that path is too long for a unix socket,
// in a folder under the temp dir named after the config's absolute path.
func SocketPath(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	path := filepath.Join(filepath.Dir(abs), ".herd", "herd.sock")
	if len(path) < 100 {
		return path
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), "herd-"+hex.EncodeToString(sum[:6]), "herd.sock")
}

// registryStore opens the registry's store: Redis when registry.redis is
// set (failing now if Redis does not answer), else memory.
func registryStore(ctx context.Context, cfg *config.Config) (registry.Store, error) {
	if cfg.Registry.Redis == "" {
		return registry.NewMemoryStore(), nil
	}
	rdb, err := dialRedis(ctx, cfg.Registry.Redis, 2*time.Second, 2*time.Second)
	if err != nil {
		return nil, config.Errors{cfg.Problem("registry.redis", "registry: "+err.Error())}
	}
	return registry.NewRedisStore(rdb, cfg.Registry.Prefix), nil
}

// CheckServices reports, for `herd check`, whether the servers the config
// names answer: the registry's Redis and the rate limits' Redis.
func CheckServices(ctx context.Context, cfg *config.Config) error {
	store, err := registryStore(ctx, cfg)
	if err != nil {
		return err
	}
	store.Close()
	for i, r := range cfg.Routes {
		if rl := r.RateLimit; rl != nil && rl.Redis != "" {
			c, err := dialRedis(ctx, rl.Redis, time.Second, 200*time.Millisecond)
			if err != nil {
				return config.Errors{cfg.Problem("routes."+strconv.Itoa(i), fmt.Sprintf("route %s: rate_limit.redis: %v", r.Path, err))}
			}
			c.Close()
		}
	}
	return nil
}

// herdEnv tells instances where herd's gateway and admin API are, so that
// services find each other without configuration.
func herdEnv(cfg *config.Config, public, admin net.Addr) []string {
	env := []string{"HERD_URL=http://" + loopbackAddr(public), "HERD_ADMIN_URL=http://" + loopbackAddr(admin)}
	for _, r := range cfg.Routes {
		if r.Gateway {
			env = append(env, "HERD_GATEWAY_URL=http://"+loopbackAddr(public)+strings.TrimSuffix(r.Path, "/"))
			break
		}
	}
	return env
}

// loopbackAddr is addr with an unspecified host (listen: :8080) made
// 127.0.0.1, an address an instance on this machine can dial.
func loopbackAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func healthCheck(c config.HealthCheck) health.Check {
	return health.Check{Path: c.Path, Interval: time.Duration(c.Interval), Timeout: time.Duration(c.Timeout),
		Status: c.Status, Passes: c.Passes, Fails: c.Fails}
}
