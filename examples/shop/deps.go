package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/herdhq/herd/dbrouter"
	"github.com/herdhq/herd/svcclient"
)

// deps is what a service is built from: main makes it from the environment,
// tests by hand. Zero fields mean "not configured": no Redis, no replicas,
// no shards, which is the shop of a fresh checkout (SQLite, one process's
// memory for caches).
type deps struct {
	// store is the service's own database (SQLite or PostgreSQL). Orders
	// in router or shard mode has none of its own: orders is then set.
	store *Store
	// peers reaches the other services (orders calls users, products and
	// payments).
	peers *svcclient.Client
	// redis, when set (REDIS_URL), is the products cache's L2 and the
	// fleet's invalidation channel, the users' session store, and the
	// orders router's sticky store.
	redis redis.UniversalClient
	// orders, when set, is where orders keeps its data (a dbrouter.Router
	// over a primary and replicas, or shards); nil means store.
	orders orderRepo
	// secureCookies marks the session cookie Secure on every answer
	// (SHOP_SECURE_COOKIES=1, for TLS terminated by herd in front);
	// otherwise it is Secure only on a request that came over TLS.
	secureCookies bool
	// bcryptCost is the cost of new password hashes; 0 is bcrypt's default
	// (10). Tests lower it.
	bcryptCost int
	// localTTL overrides how long products' L1 keeps a value (0: the
	// default, which depends on whether there is Redis; see newProducts).
	localTTL time.Duration
	// metrics, when set, is served at GET /metrics to clients on this
	// machine (main registers the service's monitor in it).
	metrics prometheus.Gatherer
}

// shopEnv is the environment the shop reads, beyond PORT and SHOP_DATA.
type shopEnv struct {
	redisURL    string   // REDIS_URL
	databaseURL string   // DATABASE_URL
	replicas    []string // DATABASE_REPLICA_URLS, comma-separated
	shards      []string // SHOP_ORDER_SHARDS, comma-separated
	secure      bool     // SHOP_SECURE_COOKIES=1
}

func readEnv(getenv func(string) string) (shopEnv, error) {
	e := shopEnv{
		redisURL:    strings.TrimSpace(getenv("REDIS_URL")),
		databaseURL: strings.TrimSpace(getenv("DATABASE_URL")),
		replicas:    splitList(getenv("DATABASE_REPLICA_URLS")),
		shards:      splitList(getenv("SHOP_ORDER_SHARDS")),
	}
	switch v := strings.TrimSpace(getenv("SHOP_SECURE_COOKIES")); v {
	case "", "0", "false":
	case "1", "true":
		e.secure = true
	default:
		return e, fmt.Errorf("SHOP_SECURE_COOKIES=%q: use 1 (always Secure, behind a TLS proxy) or 0 (Secure on TLS requests only)", v)
	}
	if len(e.replicas) > 0 && e.databaseURL == "" {
		return e, errors.New("DATABASE_REPLICA_URLS is set but DATABASE_URL, their primary, is not: set DATABASE_URL too, or unset DATABASE_REPLICA_URLS")
	}
	if len(e.shards) == 1 {
		return e, errors.New("SHOP_ORDER_SHARDS names one database: list two or more PostgreSQL URLs, comma-separated, or unset it")
	}
	for _, u := range e.shards {
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			return e, fmt.Errorf("SHOP_ORDER_SHARDS: %q is not a postgres:// URL", redactURL(u))
		}
	}
	return e, nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// openRedis connects to REDIS_URL. A Redis that does not answer now is not
// an error: the cache works without it and uses it once it is back, and
// session calls fail (503) until then. A URL that does not parse is.
func openRedis(ctx context.Context, url string, log *slog.Logger) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		log.Warn("redis does not answer yet; the cache reads the database until it does", "redis", redactURL(url), "err", err)
	}
	return rdb, nil
}

// openOrders opens orders' data in router or shard mode, or returns nil
// for the plain store. Shards win over replicas: each shard is its own
// primary.
func openOrders(ctx context.Context, e shopEnv, rdb redis.UniversalClient, log *slog.Logger) (orderRepo, error) {
	switch {
	case len(e.shards) > 0:
		if len(e.replicas) > 0 {
			log.Warn("SHOP_ORDER_SHARDS is set: orders uses the shards' primaries and not DATABASE_REPLICA_URLS")
		}
		return openShardRepo(ctx, e.shards)
	case len(e.replicas) > 0:
		var sticky dbrouter.StickyStore
		if rdb != nil {
			sticky = dbrouter.NewRedisStore(rdb, "shop:orders:sticky:", time.Minute)
		}
		return openRouterRepo(ctx, e.databaseURL, e.replicas, sticky)
	}
	return nil, nil
}

// redactURL hides a URL's password for logs and errors.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s, "@"); at > i {
			if colon := strings.Index(s[i+3:at], ":"); colon >= 0 {
				return s[:i+3+colon] + ":xxxxx" + s[at:]
			}
		}
	}
	return s
}

// hashPassword is bcrypt at d's cost.
func (d deps) hashPassword(pw string) (string, error) {
	cost := d.bcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	return string(h), err
}

// sessionError answers a request whose session could not be loaded or
// saved: the session store (Redis or the users database) is down.
func sessionError(w http.ResponseWriter, r *http.Request, err error) {
	slog.ErrorContext(r.Context(), "session store", "path", r.URL.Path, "request_id", svcclient.RequestID(r.Context()), "err", err)
	writeError(w, r, errorf(http.StatusServiceUnavailable, "", "the session store is unavailable; try again"))
}
