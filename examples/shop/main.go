// Command shop is the demo system of the seed article: a shop split into four
// microservices, users, products, orders and payments, built as one binary
// and run as four programs:
//
//	shop users|products|orders|payments
//
// Each serves JSON on 127.0.0.1:$PORT (package worker: herd's socket in
// shared_socket mode, a drain on SIGTERM) behind package httpkit's stack
// (request id, access log, security headers, compression, ETags, the JSON
// 413 and 500), serves package monitor's figures at GET /metrics to clients
// on this machine, and keeps its own data, in PostgreSQL
// when DATABASE_URL is set, else in SQLite at $SHOP_DATA/NAME.db (default
// .herd/data). Tables are created and seeded at start (alice, bob and carol;
// a keyboard, a mouse, a monitor and a cable), so a fresh checkout works.
//
// herd runs several instances of each behind its load balancer, and its
// gateway route (/api, gateway: true) sends /api/NAME/rest to an instance of
// service NAME as /rest. That is how the services reach each other: orders
// calls GET /api/users/ID, GET /api/products/ID and POST /api/payments/ with
// svcclient, which adds timeouts, retries and a circuit breaker, at
// $HERD_GATEWAY_URL (which herd sets for its instances). A service also
// answers under its own name (/users/ID), so it can be called without herd.
//
// Placing an order is a small saga: check the user, reserve the stock with
// products (which answers the prices; all or nothing, never below zero),
// take the payment (idempotent on the order id, so a retry never charges
// twice), store the order; if paying or storing fails the stock is given
// back and the payment refunded.
//
// The data layer is the repository's packages: products reads through
// package cache (L1 in each process, L2 and fleet-wide invalidation in
// Redis with REDIS_URL), users keeps logins in package session (Redis, or
// the users database), orders reads replicas through package dbrouter with
// read-your-writes tokens (DATABASE_REPLICA_URLS), or shards by user id
// with package shard (SHOP_ORDER_SHARDS). README.md in this folder says
// what each shows and how to run it.
//
// herd.yaml at the root of this repository runs the whole system, with the
// gateway on / (so /products/ID reaches products as /ID):
//
//	go run ./cmd/herd up
//	curl -d '{"user_id":"usr_alice","items":[{"product_id":"prd_keyboard","quantity":2}]}' localhost:8080/orders
//
// Environment: PORT (required), DATABASE_URL, SHOP_DATA, REDIS_URL,
// DATABASE_REPLICA_URLS, SHOP_ORDER_SHARDS, SHOP_SECURE_COOKIES, and for
// orders SHOP_GATEWAY_URL, else HERD_GATEWAY_URL, else
// http://127.0.0.1:8080/api.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herdhq/herd/dbrouter"
	"github.com/herdhq/herd/httpkit"
	"github.com/herdhq/herd/monitor"
	"github.com/herdhq/herd/svcclient"
	"github.com/herdhq/herd/worker"
)

// serviceDef is one of the four programs this binary can be.
type serviceDef struct {
	schema schema
	// make builds the service from its dependencies; close (may be nil)
	// releases what it started (caches, session janitors).
	make func(d deps) (svc service, close func(), err error)
}

// service is what a serviceDef makes: the routes of its mux.
type service interface {
	routes(mux *http.ServeMux)
}

var services = map[string]serviceDef{
	"users":    {usersSchema, newUsers},
	"products": {productsSchema, newProducts},
	"orders":   {ordersSchema, newOrders},
	"payments": {paymentsSchema, func(d deps) (service, func(), error) { return &paymentsService{d.store}, nil, nil }},
}

const usage = "usage: shop users|products|orders|payments (with PORT set)"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// run is main with its inputs passed in, so tests can call it; it returns
// the exit status: 2 for a usage error, 1 when the service cannot start.
func run(args []string, getenv func(string) string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	name := args[0]
	def, ok := services[name]
	if !ok {
		fmt.Fprintf(stderr, "shop: unknown service %q\n%s\n", name, usage)
		return 2
	}
	port := getenv("PORT")
	if port == "" {
		fmt.Fprintf(stderr, "shop: PORT is not set; the %s service listens on 127.0.0.1:$PORT\n", name)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("service", name, "instance", getenv("HERD_INSTANCE"))
	slog.SetDefault(log)

	cfg := storeConfig{DatabaseURL: getenv("DATABASE_URL"), DataDir: getenv("SHOP_DATA")}
	if cfg.DataDir == "" {
		cfg.DataDir = defaultDataDir
	}
	storage := "sqlite:" + filepath.Join(cfg.DataDir, name+".db")
	if cfg.DatabaseURL != "" {
		storage = "postgres" // what follows is for the log, without the password
		if u, err := url.Parse(cfg.DatabaseURL); err == nil {
			storage = u.Redacted()
		}
	}

	env, err := readEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "shop: %v\n", err)
		return 2
	}

	// Until the server drains, the first SIGTERM or SIGINT cancels ctx:
	// opening the databases is cut short, and worker.Serve drains.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	signalled := make(chan time.Time, 1)
	context.AfterFunc(ctx, func() {
		stop() // a second signal ends the process at once
		signalled <- time.Now()
	})
	d := deps{peers: newPeers(getenv), secureCookies: env.secure}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if env.redisURL != "" {
		rdb, err := openRedis(openCtx, env.redisURL, log)
		if err != nil {
			log.Error("cannot start", "err", err)
			return 1
		}
		defer rdb.Close()
		d.redis = rdb
	}
	if name == "orders" {
		repo, err := openOrders(openCtx, env, d.redis, log)
		if err != nil {
			log.Error("cannot start", "err", err)
			return 1
		}
		if repo != nil {
			defer repo.close()
			d.orders = repo
			storage = repo.describe()
		}
	}
	if d.orders == nil || len(env.shards) == 0 {
		// Router mode still migrates the primary with the plain store.
		st, err := openStore(openCtx, name, def.schema, cfg)
		if err != nil {
			log.Error("cannot start", "storage", storage, "err", err)
			return 1
		}
		defer st.Close()
		d.store = st
	}
	cancel()

	// The process's heap, RSS, CPU, GC and scheduler latency every 5 s, at
	// /metrics (labelled with HERD_APP and HERD_INSTANCE); a threshold
	// crossed is logged once per episode.
	mon := monitor.New(monitor.Options{Thresholds: thresholds, Logger: log})
	reg := prometheus.NewRegistry()
	reg.MustRegister(mon)
	d.metrics = reg
	monCtx, stopMon := context.WithCancel(context.Background())
	monDone := make(chan struct{})
	go func() { defer close(monDone); mon.Run(monCtx) }()
	defer func() { stopMon(); <-monDone }()

	handler, closeSvc, err := newHandler(name, d)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer closeSvc()

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// Room for an order's slowest path: its calls, storing it, a refund.
		WriteTimeout: 30 * time.Second,
		// Longer than herd keeps an idle connection (4 s), so herd, not the
		// instance, closes idle connections and never sends on a closing one.
		IdleTimeout: 60 * time.Second,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// 127.0.0.1:$PORT, or herd's socket in shared_socket mode.
	ln, err := worker.Listen()
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	log.Info("listening", "addr", ln.Addr().String(), "storage", storage, "pid", os.Getpid())
	// Serve tells herd the instance is ready and, on the signal, drains:
	// herd has already taken the instance out of its pool, and the requests
	// in flight get as long as a request may take (WriteTimeout), since
	// cutting an order midway could leave a payment without its order.
	// herd's kill_timeout (herd.yaml) is longer.
	if err := (worker.Options{Listener: ln, DrainTimeout: srv.WriteTimeout}).Serve(ctx, srv); err != nil {
		log.Error("serving failed", "err", err) // or the drain was cut short: the error says which
		return 1
	}
	// nil: a signal came, which ctx caught too (its AfterFunc sends the time).
	log.Info("stopped", "drained_in", time.Since(<-signalled).Round(time.Millisecond))
	return 0
}

// thresholds are where the monitor starts an episode: the seed's CPU (80 %
// of a core) and event-loop lag (100 ms, here the scheduler's p99), and a
// heap and goroutine count far above what a shop service holds.
var thresholds = monitor.Thresholds{
	HeapBytes:    512 << 20,
	CPUPercent:   80,
	Goroutines:   10_000,
	SchedLatency: 100 * time.Millisecond,
}

// newPeers is the client orders calls the other services with, through
// herd's gateway.
func newPeers(getenv func(string) string) *svcclient.Client {
	gateway := getenv("SHOP_GATEWAY_URL")
	if gateway == "" {
		gateway = getenv("HERD_GATEWAY_URL")
	}
	if gateway == "" {
		gateway = "http://127.0.0.1:8080/api"
	}
	// 5 s for a call and its retries, 3 attempts for calls safe to repeat,
	// and a service failing 5 attempts in a row is not called for 3 s, so a
	// dead payments costs orders' clients a quick 503 rather than a wait
	// each, and one that is back is used again within seconds.
	return svcclient.New(svcclient.Gateway(gateway),
		svcclient.WithTimeout(5*time.Second),
		svcclient.WithRetries(3),
		svcclient.WithBreaker(5, 3*time.Second))
}

// newHandler is the whole HTTP side of service name. The returned func
// releases what the service started; call it after the server stopped.
func newHandler(name string, d deps) (http.Handler, func(), error) {
	// httpkit is outermost: request id (kept from herd's proxy, which sets
	// one), access log, helmet's headers, gzip/zstd, weak ETags and 304s,
	// the body limit's JSON 413 and a panic's JSON 500, for every answer.
	kit, err := httpkit.New(httpkit.Options{Logger: slog.Default(), BodyLimit: httpkit.BodyLimitOptions{Limit: maxBody}})
	if err != nil {
		return nil, nil, err
	}
	svc, closeSvc, err := services[name].make(d)
	if err != nil {
		return nil, nil, fmt.Errorf("starting the %s service: %w", name, err)
	}
	if closeSvc == nil {
		closeSvc = func() {}
	}
	ping := func(ctx context.Context) error { return d.store.DB.PingContext(ctx) }
	if d.orders != nil && name == "orders" {
		ping = d.orders.ping
	}
	mux := http.NewServeMux()
	svc.routes(mux)
	// Readiness: herd sends no traffic until this answers, and the server
	// only starts once the database is open and migrated.
	mux.HandleFunc("GET /health", handle(func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ping(ctx); err != nil {
			return errorf(http.StatusServiceUnavailable, "", "the database does not answer: %v", err)
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": name})
		return nil
	}))
	if d.metrics != nil {
		mux.Handle("GET /metrics", localOnly(promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{DisableCompression: true})))
	}
	// dbrouter.Middleware gives each request a consistency-token holder:
	// the token of the request's Herd-Consistency-Token header, plus what
	// the handler writes through a dbrouter.Router; the answer carries it
	// back, and svcclient sends it on with every call made under the
	// request (and with httpkit's request id).
	return kit(svcclient.Middleware(dbrouter.Middleware(underOwnName(name, jsonMisses(name, mux))))), closeSvc, nil
}

// localOnly serves next to a client on this machine that called the
// instance's own port, and refuses (403) a request from elsewhere or one
// that came through a proxy: herd's gateway would otherwise answer
// /NAME/metrics to anyone. herd's proxy always sets X-Forwarded-For.
func localOnly(next http.Handler) http.Handler {
	return handle(func(w http.ResponseWriter, r *http.Request) error {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Unmap().IsLoopback() || r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" {
			return errorf(http.StatusForbidden, "", "%s answers only on the instance's own port, from this machine and not through a proxy", r.URL.Path)
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// jsonMisses answers the requests mux has no handler for (404, or 405 with
// Allow for a known path and another method) in JSON like every other
// answer, where the mux itself would answer in plain text.
func jsonMisses(name string, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The path as the client sent it, before underOwnName shortened it.
		path, _, _ := strings.Cut(r.RequestURI, "?")
		miss := &missRecorder{header: http.Header{}}
		mux.ServeHTTP(miss, r)
		if allow := miss.header.Get("Allow"); miss.status == http.StatusMethodNotAllowed && allow != "" {
			w.Header().Set("Allow", allow)
			writeError(w, r, errorf(miss.status, "", "%s takes %s, not %s", path, allow, r.Method))
			return
		}
		writeError(w, r, notFound("the %s service has no route for %s %s", name, r.Method, path))
	})
}

// missRecorder keeps the status and headers of the mux's own error answer.
type missRecorder struct {
	header http.Header
	status int
}

func (m *missRecorder) Header() http.Header         { return m.header }
func (m *missRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (m *missRecorder) WriteHeader(status int)      { m.status = status }

// underOwnName serves /NAME/rest as /rest. Through herd's gateway a service
// sees /api/users/7 as /7; called directly, /users/7 is the natural address.
func underOwnName(name string, next http.Handler) http.Handler {
	prefix := "/" + name
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, prefix)
		if ok && (rest == "" || rest[0] == '/') {
			if rest == "" {
				rest = "/"
			}
			// As http.StripPrefix does: a shallow copy with its own URL.
			r2 := new(http.Request)
			*r2 = *r
			r2.URL = new(url.URL)
			*r2.URL = *r.URL
			r2.URL.Path, r2.URL.RawPath = rest, ""
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}
