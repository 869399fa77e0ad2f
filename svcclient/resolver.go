package svcclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Resolver finds where a service is.
type Resolver interface {
	// Resolve returns the base URL (no trailing slash) that service's paths are appended to.
	Resolve(ctx context.Context, service string) (string, error)
}

type gateway string

// Gateway resolves every service to a path under herd's gateway: with
// baseURL "http://127.0.0.1:8080/api", service "users" is at
// "http://127.0.0.1:8080/api/users". The gateway then balances the calls
// across the service's instances.
func Gateway(baseURL string) Resolver {
	return gateway(strings.TrimRight(baseURL, "/"))
}

func (g gateway) Resolve(_ context.Context, service string) (string, error) {
	return string(g) + "/" + service, nil
}

const (
	defaultRefresh = 2 * time.Second
	// fetchTimeout bounds one read of the service list.
	fetchTimeout = 5 * time.Second
	// maxServicesBody bounds the service list read.
	maxServicesBody = 16 << 20
)

// Registry resolves services to their instances' own URLs, as listed by
// herd's admin listener at GET {adminURL}/services, so that calls skip the
// gateway. The list is read at most once per refresh (2s when refresh <= 0),
// and each Resolve of a service returns the next of its healthy instances,
// round robin.
//
// A service the list does not have is an *Error with Status 404, one with
// no healthy instance an *Error with Status 503. When the list cannot be
// read, the last one read stays in use until the next refresh.
func Registry(adminURL string, refresh time.Duration) Resolver {
	if refresh <= 0 {
		refresh = defaultRefresh
	}
	return &registry{
		url:     strings.TrimRight(adminURL, "/") + "/services",
		refresh: refresh,
		hc:      &http.Client{Transport: defaultTransport()},
		next:    map[string]uint64{},
	}
}

type registry struct {
	url     string
	refresh time.Duration
	hc      *http.Client

	mu    sync.Mutex
	list  *serviceList      // nil until a read succeeds
	fetch *fetch            // the read under way, if any
	next  map[string]uint64 // round robin position of each service
	// failed is the error of a first read, answered until refresh has
	// passed, so that a hung admin API does not cost every call a read.
	failed   error
	failedAt time.Time
}

// serviceList is one read of the service list.
type serviceList struct {
	at       time.Time
	services map[string]serviceInstances
}

type serviceInstances struct {
	healthy []string // URLs of the healthy instances
	total   int
}

// fetch is a read of the list that Resolve calls wait for together.
type fetch struct {
	done chan struct{}
	list *serviceList
	err  error
}

func (r *registry) Resolve(ctx context.Context, service string) (string, error) {
	list, err := r.current(ctx)
	if err != nil {
		return "", err
	}
	s, ok := list.services[service]
	if !ok {
		return "", &Error{Service: service, Status: http.StatusNotFound, Message: http.StatusText(http.StatusNotFound),
			Reason: fmt.Sprintf("herd has no service %q", service)}
	}
	if len(s.healthy) == 0 {
		return "", &Error{Service: service, Status: http.StatusServiceUnavailable, Message: http.StatusText(http.StatusServiceUnavailable),
			Reason: fmt.Sprintf("no healthy instance of %q (%d registered)", service, s.total)}
	}
	r.mu.Lock()
	n := r.next[service]
	r.next[service] = n + 1
	r.mu.Unlock()
	return s.healthy[n%uint64(len(s.healthy))], nil
}

// current returns a list no older than refresh, reading a new one if need
// be. The read runs on its own goroutine and deadline, so that a caller
// giving up does not fail the read for the others waiting on it.
func (r *registry) current(ctx context.Context) (*serviceList, error) {
	r.mu.Lock()
	if r.list != nil && time.Since(r.list.at) < r.refresh {
		list := r.list
		r.mu.Unlock()
		return list, nil
	}
	if r.list == nil && r.failed != nil && time.Since(r.failedAt) < r.refresh {
		err := r.failed
		r.mu.Unlock()
		return nil, err
	}
	f := r.fetch
	if f == nil {
		f = &fetch{done: make(chan struct{})}
		r.fetch = f
		go r.run(f)
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.list, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for %s: %w", r.url, context.Cause(ctx))
	}
}

func (r *registry) run(f *fetch) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	list, err := r.read(ctx)
	cancel()
	r.mu.Lock()
	switch {
	case err == nil:
		r.list, r.failed = list, nil
	case r.list == nil:
		r.failed, r.failedAt = err, time.Now()
	default:
		// Keep going on the last list (herd may be restarting) rather than
		// fail every call; try again after refresh.
		stale := *r.list
		stale.at = time.Now()
		r.list = &stale
		list, err = r.list, nil
	}
	f.list, f.err = list, err
	r.fetch = nil
	r.mu.Unlock()
	close(f.done)
}

// read fetches and decodes the service list.
func (r *registry) read(ctx context.Context) (*serviceList, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the service list: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the service list: %w", err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		// Not wrapped: the admin listener's status is not the service's.
		return nil, fmt.Errorf("reading the service list: GET %s: %v", r.url, errorFrom("herd admin", "", resp))
	}
	var body struct {
		Services []struct {
			Name      string `json:"name"`
			Instances []struct {
				URL     string `json:"url"`
				Healthy bool   `json:"healthy"`
			} `json:"instances"`
		} `json:"services"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxServicesBody)).Decode(&body); err != nil {
		return nil, fmt.Errorf("reading the service list: decoding GET %s: %w", r.url, err)
	}
	list := &serviceList{at: time.Now(), services: make(map[string]serviceInstances, len(body.Services))}
	for _, s := range body.Services {
		in := serviceInstances{total: len(s.Instances)}
		for _, i := range s.Instances {
			if i.Healthy && i.URL != "" {
				in.healthy = append(in.healthy, strings.TrimRight(i.URL, "/"))
			}
		}
		list.services[s.Name] = in
	}
	return list, nil
}
