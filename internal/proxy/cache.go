package proxy

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
)

// Cache is NGINX's proxy_cache for a route: GET and HEAD responses kept in
// memory (bounded in bytes, evicting the least useful), fresh for their
// Cache-Control s-maxage/max-age or Expires, else for Valid[status].
// Concurrent misses of one key make one upstream request. With StaleOnError
// an expired copy is served when the refresh fails or answers 5xx. Every
// answer says X-Cache-Status: HIT, MISS, EXPIRED, STALE or BYPASS.
type Cache struct {
	// Valid is how long a response of each status stays fresh when it says
	// nothing itself; a status not listed is not cached.
	Valid        map[int]time.Duration
	StaleOnError bool
	// MaxEntry bounds one cached body; larger responses are served, not kept.
	MaxEntry int

	store *otter.Cache[string, *cached]
	group singleflight.Group
}

type cached struct {
	status  int
	header  http.Header
	body    []byte
	expires time.Time
}

// NewCache returns a cache holding at most size bytes of bodies and headers.
func NewCache(size int64, valid map[int]time.Duration, staleOnError bool) (*Cache, error) {
	store, err := otter.New(&otter.Options[string, *cached]{
		MaximumWeight: uint64(size),
		Weigher:       func(k string, v *cached) uint32 { return uint32(min(len(k)+len(v.body)+512, 1<<31)) },
	})
	if err != nil {
		return nil, err
	}
	return &Cache{Valid: valid, StaleOnError: staleOnError, MaxEntry: int(min(size/8, 8<<20)), store: store}, nil
}

// serve answers r from the cache or through next, and reports the status.
func (c *Cache) serve(w http.ResponseWriter, r *http.Request, next http.Handler) string {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.Header.Get("Authorization") != "" ||
		strings.Contains(r.Header.Get("Cache-Control"), "no-cache") {
		w.Header().Set("X-Cache-Status", "BYPASS")
		next.ServeHTTP(w, r)
		return "BYPASS"
	}
	key := r.Host + " " + r.URL.RequestURI()
	now := time.Now()
	old, found := c.store.GetIfPresent(key)
	if found && now.Before(old.expires) {
		write(w, r, old, "HIT")
		return "HIT"
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		// The first client's request fetches for all; it must finish even
		// if that client leaves, since others wait on it.
		rec := &bufferWriter{header: http.Header{}}
		next.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
		res := &cached{status: rec.code(), header: rec.header, body: rec.body.Bytes()}
		if ttl, ok := c.freshFor(res); ok && len(res.body) <= c.MaxEntry {
			res.expires = time.Now().Add(ttl)
			c.store.Set(key, res)
		}
		return res, nil
	})
	res := v.(*cached)
	if err == nil && res.status >= 500 && found && c.StaleOnError {
		write(w, r, old, "STALE")
		return "STALE"
	}
	status := "MISS"
	if found {
		status = "EXPIRED"
	}
	write(w, r, res, status)
	return status
}

// freshFor says how long res may be served from the cache, if at all.
func (c *Cache) freshFor(res *cached) (time.Duration, bool) {
	if len(res.header.Values("Set-Cookie")) > 0 {
		return 0, false
	}
	cc := strings.ToLower(strings.Join(res.header.Values("Cache-Control"), ","))
	if strings.Contains(cc, "no-store") || strings.Contains(cc, "private") || strings.Contains(cc, "no-cache") {
		return 0, false
	}
	for _, directive := range []string{"s-maxage=", "max-age="} {
		if i := strings.Index(cc, directive); i >= 0 {
			rest := cc[i+len(directive):]
			if j := strings.IndexAny(rest, ", "); j >= 0 {
				rest = rest[:j]
			}
			if secs, err := strconv.Atoi(rest); err == nil {
				return time.Duration(secs) * time.Second, secs > 0
			}
		}
	}
	if exp := res.header.Get("Expires"); exp != "" {
		if t, err := http.ParseTime(exp); err == nil {
			d := time.Until(t)
			return d, d > 0
		}
		return 0, false
	}
	d, ok := c.Valid[res.status]
	return d, ok && d > 0
}

// write sends a cached response to the client.
func write(w http.ResponseWriter, r *http.Request, res *cached, status string) {
	h := w.Header()
	for k, vs := range res.header {
		h[k] = append([]string(nil), vs...)
	}
	h.Set("X-Cache-Status", status)
	if id := r.Header.Get("X-Request-Id"); id != "" {
		h.Set("X-Request-Id", id) // this request's, not the one that filled the cache
	}
	w.WriteHeader(res.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(res.body)
	}
}

// bufferWriter captures a response for the cache.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferWriter) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}
