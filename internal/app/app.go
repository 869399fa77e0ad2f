// Package app runs herd for one config, in four steps a reader finds in
// Run: bind every socket (a port in use fails before anything starts),
// assemble the parts (supervisor, the instances seam that keeps the
// balancer's pools in step with the supervisor, the frontend, the admin
// and control servers), start them together, and on cancellation stop
// them in order: the registry stops publishing, the public listeners stop
// accepting while every instance drains, and the admin listener closes
// last. Every goroutine Run starts has returned when it returns.
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
	b, err := bind(cfg, opts.Socket)
	if err != nil {
		return err
	}
	defer b.close()
	if err := buildApps(ctx, cfg.Apps, opts.Log); err != nil {
		return err
	}
	n, err := assemble(ctx, cfg, opts, b)
	if err != nil {
		return err
	}
	defer n.close()
	return n.serve(ctx)
}

// node is one running herd: the parts assemble made, which serve starts
// and stops.
type node struct {
	cfg  *config.Config
	opts Options
	log  *slog.Logger
	b    *bound

	logs      *logbuf.Buffer
	instances *instances
	sup       *supervisor.Supervisor
	status    func() []supervisor.AppStatus
	mgr       *manager
	front     *frontend
	reg       *registry.Registry

	public   server // the fast path, or publicSrv alone
	internal server // the same routes, for the instances, on bound.internal

	https    *http.Server // nil without tls:
	adminSrv *http.Server

	closers    []func()       // run by close, last first
	background sync.WaitGroup // goroutines parts start on their own (the dashboard's sampler); they end with ctx
}

// assemble makes every part of the node; on an error it releases what it
// made.
func assemble(ctx context.Context, cfg *config.Config, opts Options, b *bound) (_ *node, err error) {
	n := &node{cfg: cfg, opts: opts, log: opts.Log, b: b}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	store, err := registryStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() { store.Close() })

	n.logs = logbuf.New(opts.Output, 1000)
	if !cfg.Logs.Off {
		apps := map[string]logbuf.AppFiles{}
		for _, a := range cfg.Apps {
			apps[a.Name] = logbuf.AppFiles{Merge: a.MergeLogs, DateFormat: a.LogDateFormat, JSON: a.LogType == "json"}
		}
		err := n.logs.EnableFiles(logbuf.FileOptions{
			Dir: cfg.Logs.Dir, MaxSize: int64(cfg.Logs.MaxSize), MaxFiles: cfg.Logs.MaxFiles, MaxAge: time.Duration(cfg.Logs.MaxAge),
		}, apps)
		if err != nil {
			return nil, err
		}
		n.closers = append(n.closers, func() { n.logs.Close() })
	}

	if n.instances, err = newInstances(cfg, b.shared); err != nil {
		return nil, err
	}
	n.closers = append(n.closers, n.instances.close)
	n.sup = supervisor.New(cfg, n.instances.hooks(), n.log, n.logs.Writer)
	n.sup.Listeners = b.shared
	n.sup.Env = herdEnv(cfg, b.internal.Addr(), b.admin.Addr())
	n.status = func() []supervisor.AppStatus { return n.instances.withProxyFigures(n.sup.Status()) }
	metrics := admin.NewMetrics(n.status)
	n.mgr = &manager{cfgPath: cfg.File, env: opts.Env, sup: n.sup, status: n.status, log: n.log}
	n.mgr.onReloadAll = func(c *config.Config) error { return n.front.load(c) }

	access, closeAccess, err := openAccessLog(cfg)
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, closeAccess)
	n.front = &frontend{pools: n.instances.pools, log: n.log, observe: metrics.ObserveRequest, access: access}
	n.closers = append(n.closers, n.front.close)
	n.reg = registry.New(registry.Options{
		Store: store, Advertise: cfg.Registry.Advertise, TTL: time.Duration(cfg.Registry.TTL), Log: n.log,
		Check: healthCheck(cfg.Registry.Check), Local: n.front.localPools,
	})
	n.instances.reg = n.reg
	n.front.directory = n.reg
	services := func() []registry.ServiceStatus { return n.front.services(n.status(), n.reg) }
	required := func() []string { return *n.front.required.Load() }
	n.front.endpoints = map[string]http.Handler{
		"health":   admin.HealthHandler(services, required),
		"services": admin.ServicesHandler(services),
	}
	if err := n.front.load(cfg); err != nil {
		return nil, err
	}

	errorLog := slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)
	publicSrv := &http.Server{
		Handler:           n.front,
		ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ErrorLog:          errorLog,
	}
	n.adminSrv = &http.Server{Handler: admin.Handler(admin.Options{
		Status: n.status, Gatherer: metrics.Registry, Services: services, Required: required, Registry: n.reg,
		Token: cfg.AdminAuth.Token, Actions: n.mgr, Logs: n.logs, Requests: metrics, Context: ctx, Go: n.background.Go,
	}), ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout), ErrorLog: errorLog}
	if b.tls != nil {
		if n.https, err = tlsServer(cfg, n.front, errorLog); err != nil {
			return nil, err
		}
		if cfg.TLS.RedirectHTTP {
			publicSrv.Handler = redirectToHTTPS(b.tls.Addr())
		}
	}
	// The public listener serves plain proxying by the fast path, the rest
	// by publicSrv; a redirect to HTTPS is all net/http.
	n.public = publicSrv
	if *cfg.Server.FastPath && !cfg.TLS.RedirectHTTP {
		n.public = &proxy.Server{Handler: n.front.current.Load, Fallback: publicSrv}
	}
	internalSrv := &http.Server{
		Handler:           n.front, // never the HTTPS redirect: instances speak plain HTTP to herd
		ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ErrorLog:          errorLog,
	}
	n.internal = internalSrv
	if *cfg.Server.FastPath {
		n.internal = &proxy.Server{Handler: n.front.current.Load, Fallback: internalSrv}
	}
	return n, nil
}

// close releases what assemble made, last first.
func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

// serve starts every part, waits for the end (ctx, a failed listener), carrying
// out SIGHUP reloads meanwhile, and stops the parts in order.
func (n *node) serve(ctx context.Context) error {
	cfg, log, b := n.cfg, n.log, n.b
	log.Info("herd listening", "public", b.public.Addr().String(), "admin", b.admin.Addr().String(), "control", b.socket, "apps", len(cfg.Apps))
	if n.opts.Ready != nil {
		n.opts.Ready(b.public.Addr(), b.admin.Addr())
	}

	// Start. Every goroutine is in wg; the channels say when the parts
	// that stop in order have stopped.
	var wg sync.WaitGroup
	serveErr := make(chan error, 4)
	serve := func(srv server, ln net.Listener) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}
	wg.Go(func() { serve(n.public, b.public) })
	wg.Go(func() { serve(n.internal, b.internal) })
	wg.Go(func() { serve(n.adminSrv, b.admin) })
	if n.https != nil {
		// ServeTLS sets up HTTP/2 unless TLSNextProto turned it off.
		wg.Go(func() {
			if err := n.https.ServeTLS(b.tls, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		})
	}
	controlCtx, stopControl := context.WithCancel(context.Background())
	wg.Go(func() {
		if err := control.Serve(controlCtx, b.control, control.Handler(n.mgr, n.logs)); err != nil {
			serveErr <- err
		}
	})
	// Not ctx's child: the instances stop only once the public requests
	// in flight are done (see the stop below).
	runCtx, stopApps := context.WithCancel(context.WithoutCancel(ctx))
	defer stopApps()
	supDone := make(chan struct{})
	wg.Go(func() {
		_ = n.sup.Run(runCtx)
		close(supDone)
	})
	wg.Go(func() { n.instances.run(runCtx) })
	scale := &autoscalers{sup: n.sup, pools: n.instances.pools, log: log, apps: cfg.Apps, status: n.status}
	wg.Go(func() { scale.run(runCtx) })
	wg.Go(func() { notifyReady(runCtx, n.status, log) })
	wg.Go(func() { announce(runCtx, cfg, n.status, n.opts.Output, b.public.Addr(), b.admin.Addr()) })
	regCtx, stopRegistry := context.WithCancel(context.Background())
	regDone := make(chan struct{})
	wg.Go(func() {
		n.reg.Run(regCtx)
		close(regDone)
	})

	// Wait.
	runErr := n.wait(ctx, runCtx, serveErr)

	// Stop, in order.
	_ = systemd.Notify("STOPPING=1")
	// Other nodes stop routing here before the instances drain.
	stopRegistry()
	<-regDone
	// The public listeners stop accepting, and the requests in flight
	// finish (bounded by the longest drain_timeout) while every instance
	// still serves, so one that calls another service on the way (through
	// the internal listener) is answered. Then the instances drain and
	// stop, and the internal listener closes last.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), longestDrain(cfg)+time.Second)
	defer cancel()
	var shutdown sync.WaitGroup
	if n.https != nil {
		shutdown.Go(func() {
			if err := n.https.Shutdown(shutdownCtx); err != nil {
				n.https.Close()
			}
		})
	}
	if err := n.public.Shutdown(shutdownCtx); err != nil {
		n.public.Close()
	}
	shutdown.Wait()
	stopApps()
	<-supDone
	internalCtx, cancelInternal := context.WithTimeout(context.Background(), time.Second)
	defer cancelInternal()
	if err := n.internal.Shutdown(internalCtx); err != nil {
		n.internal.Close()
	}
	_ = n.adminSrv.Close()
	stopControl()
	wg.Wait()
	n.background.Wait()
	log.Info("herd stopped")
	return runErr
}

// wait returns when ctx ends (nil) or a listener fails (its error),
// carrying out SIGHUP reloads meanwhile.
func (n *node) wait(ctx, runCtx context.Context, serveErr <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			n.log.Info("stopping: draining requests and instances")
			return nil
		case err := <-serveErr:
			n.log.Error("listener failed; stopping", "err", err)
			return err
		case <-n.opts.Reload:
			n.log.Info("SIGHUP: reloading every app from " + n.cfg.File)
			_ = systemd.Notify("RELOADING=1")
			if err := n.mgr.Action(runCtx, "reload", "all"); err != nil {
				n.log.Error("reload failed; the old instances keep serving", "err", err)
			}
			_ = systemd.Notify("READY=1")
		}
	}
}

// server is what serves a listener: an *http.Server or a *proxy.Server.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// tlsServer is the HTTPS server with the config's certificate; bind has
// bound its listener.
func tlsServer(cfg *config.Config, h http.Handler, errorLog *log.Logger) (*http.Server, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return nil, config.Errors{cfg.Problem("tls.cert", fmt.Sprintf("cannot load the certificate and key: %v", err))}
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
	return srv, nil
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

func longestDrain(cfg *config.Config) time.Duration {
	var d time.Duration
	for _, a := range cfg.Apps {
		d = max(d, time.Duration(a.DrainTimeout))
	}
	return d
}

// staticPool is the pool of a static upstream: its servers are ready from
// the start (passive health alone takes them out), down ones left out.
// prev is the pool this one replaces after a config edit: a server the edit
// did not touch stays the same backend, live state and all (requests in
// flight, passive and active health), and an edited one keeps its health,
// so that an edit of one server resets nothing of the others.
func staticPool(u *config.Upstream, prev *balance.Pool) *balance.Pool {
	before := map[string]*balance.Backend{}
	if prev != nil {
		for _, b := range prev.Backends() {
			before[b.ID] = b
		}
	}
	p := balance.NewPool(u.Name, u.MaxFails, time.Duration(u.FailTimeout))
	for i, sv := range u.Servers {
		if sv == nil || sv.Down {
			continue
		}
		addr := sv.HostPort()
		b := &balance.Backend{
			Addr: addr, App: u.Name, Index: i, ID: u.Name + "/" + addr,
			Weight: sv.Weight, Backup: sv.Backup, MaxConns: int64(sv.MaxConns),
		}
		switch old := before[b.ID]; {
		case old == nil:
		case old.Index == b.Index && old.Weight == b.Weight && old.Backup == b.Backup && old.MaxConns == b.MaxConns:
			b = old
		default:
			b.InheritHealth(old)
		}
		p.Add(b)
	}
	return p
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

func healthCheck(c config.HealthCheck) health.Check {
	return health.Check{Path: c.Path, Interval: time.Duration(c.Interval), Timeout: time.Duration(c.Timeout),
		Status: c.Status, Passes: c.Passes, Fails: c.Fails}
}
