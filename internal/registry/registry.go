// Package registry is herd's service registry: the services a gateway
// route reaches by name besides herd's own apps and upstreams. Outside
// services register over the admin API with a TTL and heartbeat by
// registering again, or expire. Each registered service gets a balance.Pool
// whose servers are probed by active health checks.
//
// With a Redis store the registry is shared: every herd node publishes the
// ready instances of its apps there, so nodes on one Redis route to each
// other's services, and sees registrations made on any node within one poll
// (a change is also announced on a channel, so usually at once).
package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/health"
)

// Instance is one registered server of a service.
type Instance struct {
	Service string `json:"service"`
	// ID tells instances of one service apart; by default a hash of URL,
	// so registering the same URL again is a heartbeat.
	ID string `json:"id"`
	// URL is http://host:port; paths and other schemes are refused.
	URL string `json:"url"`
	// Health is the path probed; empty takes the registry's default.
	Health string `json:"health,omitempty"`
	// Node is the herd node that published it for one of its apps; empty
	// for instances registered over the admin API.
	Node    string    `json:"node,omitempty"`
	Expires time.Time `json:"expires"`
	// TTLSeconds is the lifetime each heartbeat gives it.
	TTLSeconds float64 `json:"ttl_seconds,omitempty"`
}

// Errors Register returns; the admin API maps them to 400 and 409.
var (
	ErrInvalid = errors.New("invalid registration")
	ErrLocal   = errors.New("the name belongs to an app or upstream of this herd")
	ErrUnknown = errors.New("no such registration")
)

// Options configure a Registry. Zero fields take the defaults in brackets.
type Options struct {
	Store Store // [NewMemoryStore()]
	// Node names this herd in the store. [random]
	Node string
	// Advertise is the host other nodes reach this node's instances at. [127.0.0.1]
	Advertise string
	// TTL is given to registrations that name none. [30s]
	TTL time.Duration
	// Check probes registered services; Path is the default path. [/health, 5s, 2s, 1 pass, 2 fails]
	Check health.Check
	// Poll is how often the store is read again. [500ms]
	Poll time.Duration
	// Local lists this node's own services (apps and upstreams) and their
	// pools. Registrations cannot take these names, and in a shared store
	// the app pools' instances are published for the other nodes.
	Local func() (apps, upstreams map[string]*balance.Pool)
	Log   *slog.Logger
}

// Registry holds the registered services. Its methods are safe for
// concurrent use; Pool is lock-free, for the request path.
type Registry struct {
	opts   Options
	shared bool // the store is seen by other nodes

	services atomic.Pointer[map[string]*service] // what Pool reads

	mu        sync.Mutex // one sync at a time; guards published and runCtx
	published map[string]Instance
	storeDown bool // the last store operation failed (logged once)
	runCtx    context.Context
	checks    sync.WaitGroup
	wake      chan struct{}
}

// service is one registered service: its pool, and the registrations that
// fill it.
type service struct {
	name      string
	pool      *balance.Pool
	instances map[string]Instance // by id
	backends  map[string]*balance.Backend
	stopCheck context.CancelFunc
}

// New returns a Registry; Run keeps it in step with its store.
func New(opts Options) *Registry {
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	_, memory := opts.Store.(*memoryStore)
	if opts.Node == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		opts.Node = hex.EncodeToString(b)
	}
	if opts.Advertise == "" {
		opts.Advertise = "127.0.0.1"
	}
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Second
	}
	if opts.Check.Path == "" {
		opts.Check.Path = "/health"
	}
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Local == nil {
		opts.Local = func() (map[string]*balance.Pool, map[string]*balance.Pool) { return nil, nil }
	}
	r := &Registry{opts: opts, shared: !memory, published: map[string]Instance{}, wake: make(chan struct{}, 1)}
	r.services.Store(&map[string]*service{})
	return r
}

// Node is this herd's name in the store.
func (r *Registry) Node() string { return r.opts.Node }

// Pool returns the pool of the registered service name, or nil.
func (r *Registry) Pool(name string) *balance.Pool {
	if s := (*r.services.Load())[name]; s != nil {
		return s.pool
	}
	return nil
}

// Names lists the registered services, sorted.
func (r *Registry) Names() []string {
	m := *r.services.Load()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Register adds or refreshes in. A zero TTL takes the registry's default.
// It returns the instance as stored (with its ID and expiry).
func (r *Registry) Register(ctx context.Context, in Instance, ttl time.Duration) (Instance, error) {
	if !validName.MatchString(in.Service) {
		return in, fmt.Errorf("%w: name %q: use 1 to 63 lowercase letters, digits, - or _, starting with a letter or digit", ErrInvalid, in.Service)
	}
	apps, upstreams := r.opts.Local()
	if apps[in.Service] != nil || upstreams[in.Service] != nil {
		return in, fmt.Errorf("%w: %s; register under another name", ErrLocal, in.Service)
	}
	u, err := url.Parse(in.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return in, fmt.Errorf("%w: url %q: write http://HOST:PORT, with no path", ErrInvalid, in.URL)
	}
	if in.Health != "" && in.Health[0] != '/' {
		return in, fmt.Errorf("%w: health %q: write a path like /health", ErrInvalid, in.Health)
	}
	switch {
	case ttl == 0:
		ttl = r.opts.TTL
	case ttl < time.Second || ttl > 24*time.Hour:
		return in, fmt.Errorf("%w: ttl %s: write 1s to 24h", ErrInvalid, ttl)
	}
	in.URL = "http://" + u.Host
	if in.ID == "" {
		sum := sha256.Sum256([]byte(in.URL))
		in.ID = hex.EncodeToString(sum[:6])
	} else if !validName.MatchString(in.ID) {
		return in, fmt.Errorf("%w: id %q: use lowercase letters, digits, - or _", ErrInvalid, in.ID)
	}
	in.Node = ""
	in.Expires = time.Now().Add(ttl).Truncate(time.Millisecond)
	in.TTLSeconds = ttl.Seconds()
	if err := r.opts.Store.Put(ctx, in); err != nil {
		return in, err
	}
	r.Sync(ctx)
	return in, nil
}

// Deregister removes one instance of a service.
func (r *Registry) Deregister(ctx context.Context, service, id string) error {
	found, err := r.opts.Store.Delete(ctx, service, id)
	if err != nil {
		return err
	}
	r.Sync(ctx)
	if !found {
		return fmt.Errorf("%w: %s/%s", ErrUnknown, service, id)
	}
	return nil
}

// Run keeps the registry in step with its store and publishes this node's
// app instances (shared stores only) until ctx ends; then it withdraws them
// and stops the health checks.
func (r *Registry) Run(ctx context.Context) {
	r.mu.Lock()
	r.runCtx = ctx
	r.mu.Unlock()
	changes := r.opts.Store.Changes(ctx)
	t := time.NewTicker(r.opts.Poll)
	defer t.Stop()
	for {
		r.Sync(ctx)
		select {
		case <-ctx.Done():
			r.withdraw()
			return
		case <-t.C:
		case <-changes:
		case <-r.wake:
		}
	}
}

// Wake asks Run to sync now, e.g. after this node's app pools changed.
func (r *Registry) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// withdraw removes this node's published instances and stops checking.
func (r *Registry) withdraw() {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for key, in := range r.published {
		_, _ = r.opts.Store.Delete(ctx, in.Service, in.ID)
		delete(r.published, key)
	}
	for _, s := range *r.services.Load() {
		if s.stopCheck != nil {
			s.stopCheck()
		}
	}
	r.services.Store(&map[string]*service{})
	r.checks.Wait()
}

// Sync publishes this node's instances and reads the store once.
func (r *Registry) Sync(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runCtx != nil && r.runCtx.Err() != nil {
		return // withdrawn
	}
	apps, upstreams := r.opts.Local()
	if r.shared {
		r.publish(ctx, apps)
	}
	list, err := r.opts.Store.List(ctx)
	if err != nil {
		r.storeFailed("reading the service registry; keeping what was known until it answers", err)
		return
	}
	r.storeFailed("", nil)
	byName := map[string]map[string]Instance{}
	for _, in := range list {
		if in.Node == r.opts.Node || apps[in.Service] != nil || upstreams[in.Service] != nil {
			continue // served here
		}
		if byName[in.Service] == nil {
			byName[in.Service] = map[string]Instance{}
		}
		byName[in.Service][in.ID] = in
	}
	r.apply(byName)
}

// storeFailed logs a failure of the store once, not at every poll while it
// lasts, and its recovery; err nil means the store answered. Called with
// r.mu held.
func (r *Registry) storeFailed(what string, err error) {
	switch {
	case err != nil && !r.storeDown:
		r.storeDown = true
		r.opts.Log.Warn(what, "err", err)
	case err == nil && r.storeDown:
		r.storeDown = false
		r.opts.Log.Info("the service registry's store answers again")
	}
}

// publish writes this node's ready app instances to the store with a short
// TTL, refreshed every poll, and removes those that left the pools.
func (r *Registry) publish(ctx context.Context, apps map[string]*balance.Pool) {
	ttl := max(5*r.opts.Poll, 3*time.Second)
	seen := map[string]bool{}
	for name, pool := range apps {
		for _, b := range pool.Backends() {
			_, port, err := net.SplitHostPort(b.Addr)
			if err != nil {
				continue
			}
			in := Instance{
				Service: name, ID: r.opts.Node + "-" + strconv.Itoa(b.Index) + "-" + port,
				URL: "http://" + net.JoinHostPort(r.opts.Advertise, port), Node: r.opts.Node,
				Expires: time.Now().Add(ttl).Truncate(time.Millisecond),
			}
			key := name + "/" + in.ID
			seen[key] = true
			if err := r.opts.Store.Put(ctx, in); err != nil {
				r.storeFailed("publishing this node's instances in the service registry", err)
				continue
			}
			r.published[key] = in
		}
	}
	for key, in := range r.published {
		if !seen[key] {
			_, _ = r.opts.Store.Delete(ctx, in.Service, in.ID)
			delete(r.published, key)
		}
	}
}

// apply makes the services match the registrations read: new services get
// a pool and a health check, gone ones lose both; an instance keeps its
// Backend (and so its health) while it stays registered.
func (r *Registry) apply(byName map[string]map[string]Instance) {
	old := *r.services.Load()
	next := make(map[string]*service, len(byName))
	for name, instances := range byName {
		s := old[name]
		if s == nil {
			s = &service{name: name, pool: balance.NewPool(name, 1, 10*time.Second), backends: map[string]*balance.Backend{}}
			r.startCheck(s, instances)
		}
		for id, b := range s.backends {
			if _, ok := instances[id]; !ok {
				s.pool.Remove(b)
				delete(s.backends, id)
			}
		}
		for id, in := range instances {
			if s.backends[id] == nil {
				u, _ := url.Parse(in.URL)
				b := &balance.Backend{Addr: u.Host, App: name, Index: -1, ID: name + "/" + id}
				s.backends[id] = b
				s.pool.Add(b)
			}
		}
		s.instances = instances
		next[name] = s
	}
	for name, s := range old {
		if next[name] == nil && s.stopCheck != nil {
			s.stopCheck()
		}
	}
	r.services.Store(&next)
}

func (r *Registry) startCheck(s *service, instances map[string]Instance) {
	if r.runCtx == nil {
		return // not running: tests that only register
	}
	check := r.opts.Check
	for _, in := range instances {
		if in.Health != "" {
			check.Path = in.Health
		}
		break
	}
	ctx, cancel := context.WithCancel(r.runCtx)
	s.stopCheck = cancel
	r.checks.Go(func() { health.Run(ctx, s.pool, check, r.opts.Log) })
}

// InstanceStatus is one instance in GET /services.
type InstanceStatus struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Healthy   bool      `json:"healthy"`
	State     string    `json:"state,omitempty"`
	Node      string    `json:"node,omitempty"`
	LastCheck time.Time `json:"last_check,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
	Inflight  int64     `json:"inflight"`
}

// ServiceStatus is one service in GET /services.
type ServiceStatus struct {
	Name      string           `json:"name"`
	Kind      string           `json:"kind"` // app, upstream or registered
	Healthy   int              `json:"healthy"`
	Instances []InstanceStatus `json:"instances"`
}

// Add appends an instance, counting it if it is healthy.
func (s *ServiceStatus) Add(in InstanceStatus) {
	if in.Healthy {
		s.Healthy++
	}
	s.Instances = append(s.Instances, in)
}

// BackendStatus describes a server the balancer holds: whether it takes
// requests now, when it was last probed, and its requests in flight.
func BackendStatus(id, url string, b *balance.Backend, now time.Time) InstanceStatus {
	return InstanceStatus{ID: id, URL: url, Healthy: b.Available(now), LastCheck: b.LastCheck(), Inflight: b.Inflight()}
}

// Status describes the registered services, sorted by name.
func (r *Registry) Status() []ServiceStatus {
	r.mu.Lock() // apply edits the services' maps
	defer r.mu.Unlock()
	m := *r.services.Load()
	out := make([]ServiceStatus, 0, len(m))
	now := time.Now()
	for _, name := range r.Names() {
		s := m[name]
		st := ServiceStatus{Name: name, Kind: "registered"}
		ids := make([]string, 0, len(s.instances))
		for id := range s.instances {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			in := s.instances[id]
			is := BackendStatus(id, in.URL, s.backends[id], now) // apply gave every instance one
			is.Node, is.Expires = in.Node, in.Expires
			st.Add(is)
		}
		out = append(out, st)
	}
	return out
}
