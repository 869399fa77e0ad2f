package app

import (
	"context"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/herdhq/herd/internal/balance"
	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/registry"
	"github.com/herdhq/herd/internal/supervisor"
)

// instances is the seam between the supervisor and the balancer, and the
// key idea of herd: an instance is in its app's pool exactly while it is
// ready. The supervisor calls hooks on every lifecycle change; instances
// maps them onto the pools (proxy mode), the shared-socket guards
// (shared_socket mode) and the registry, which republishes this node's
// ready instances.
//
// Where a request gets its instance: the route's pool (frontend, routes.go)
// picks among the backends added here. Where a reload takes one out: the
// supervisor's Drain hook, below, before the stop signal.
type instances struct {
	pools  map[string]*balance.Pool // by app; none for workers (ready: process)
	guards map[string]*sharedGuard  // by shared_socket app
	reg    *registry.Registry       // set before the supervisor runs

	mu      sync.Mutex
	byID    map[uint64]*balance.Backend // supervisor instance id → backend
	weights map[string]int              // per app
	stats   map[slotKey]*balance.Stats  // per slot, kept across restarts so counters only grow
}

// slotKey names an instance slot: its app and index.
type slotKey struct {
	app   string
	index int
}

// newInstances makes a pool for every app that serves (workers get none, so
// no route, gateway service or registry entry ever sends to one) and a
// guard for every shared socket.
func newInstances(cfg *config.Config, shared map[string]*os.File) (*instances, error) {
	s := &instances{
		pools: map[string]*balance.Pool{}, guards: map[string]*sharedGuard{},
		byID: map[uint64]*balance.Backend{}, weights: map[string]int{},
		stats: map[slotKey]*balance.Stats{},
	}
	for _, a := range cfg.Apps {
		if f := shared[a.Name]; f != nil {
			g, err := newSharedGuard(a.Name, f, time.Duration(a.QueueTimeout))
			if err != nil {
				s.close()
				return nil, err
			}
			s.guards[a.Name] = g
		}
		if a.Ready.Process {
			continue
		}
		s.pools[a.Name] = balance.NewPool(a.Name, a.MaxFails, time.Duration(a.FailTimeout))
		s.weights[a.Name] = a.Weight
	}
	return s, nil
}

// hooks are what the supervisor calls.
func (s *instances) hooks() supervisor.Hooks {
	return supervisor.Hooks{Ready: s.ready, Drain: s.drain, Gone: s.gone}
}

// ready puts a new ready instance in its pool.
func (s *instances) ready(in supervisor.Instance) {
	if g := s.guards[in.App]; g != nil {
		g.setReady(in.ID, true)
	}
	if pool := s.pools[in.App]; pool != nil {
		pool.Add(s.add(in))
		s.reg.Wake()
	}
}

// drain takes an instance out of its pool and waits (up to ctx) for its
// requests in flight; the supervisor then signals it.
func (s *instances) drain(ctx context.Context, in supervisor.Instance) {
	if g := s.guards[in.App]; g != nil {
		g.setReady(in.ID, false)
	}
	if b := s.get(in.ID); b != nil {
		s.pools[in.App].Drain(ctx, b)
	}
}

// gone forgets an instance that exited (a crash skips drain).
func (s *instances) gone(in supervisor.Instance) {
	if g := s.guards[in.App]; g != nil {
		g.setReady(in.ID, false)
	}
	if b := s.remove(in.ID); b != nil {
		s.pools[in.App].Remove(b)
		s.reg.Wake()
	}
}

// withProxyFigures fills in what only the balancer knows of each instance:
// its requests in flight and its slot's response counters.
func (s *instances) withProxyFigures(apps []supervisor.AppStatus) []supervisor.AppStatus {
	for i := range apps {
		for j := range apps[i].Instances {
			in := &apps[i].Instances[j]
			if b := s.get(in.ID); b != nil {
				in.Inflight = b.Inflight()
				if b.Stats != nil {
					snap := b.Stats.Snapshot()
					in.Requests = &snap
				}
			}
		}
	}
	return apps
}

// run runs the shared-socket guards until ctx ends.
func (s *instances) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, g := range s.guards {
		wg.Go(func() { g.run(ctx) })
	}
	wg.Wait()
}

// close releases the guards' descriptors when run never ran.
func (s *instances) close() {
	for _, g := range s.guards {
		g.ln.Close()
	}
}

func (s *instances) add(in supervisor.Instance) *balance.Backend {
	// The ID names the slot, so hashing and sticky cookies survive restarts.
	b := &balance.Backend{Addr: in.Addr, App: in.App, Index: in.Index, ID: in.App + "/" + strconv.Itoa(in.Index), Weight: s.weights[in.App]}
	key := slotKey{in.App, in.Index}
	s.mu.Lock()
	if s.stats[key] == nil {
		s.stats[key] = &balance.Stats{}
	}
	b.Stats = s.stats[key]
	s.byID[in.ID] = b
	s.mu.Unlock()
	return b
}

func (s *instances) get(id uint64) *balance.Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}

func (s *instances) remove(id uint64) *balance.Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.byID[id]
	delete(s.byID, id)
	return b
}
