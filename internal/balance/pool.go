package balance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoBackend is returned by Pick when no ready backend appeared within the
// queue timeout.
var ErrNoBackend = errors.New("balance: no ready instance")

// ErrAllDown is returned (wrapping ErrNoBackend) when the pool has backends
// but its active health check says every one is down.
var ErrAllDown = fmt.Errorf("%w: every server fails its health check", ErrNoBackend)

// Pool is the set of ready backends of one app. Readers take a lock-free
// snapshot; changes copy the set and wake requests waiting for a backend.
// The zero value is not usable; call NewPool.
type Pool struct {
	// Name is the app's name.
	Name string
	// MaxFails and FailTimeout configure passive health (see Backend.Fail).
	MaxFails    int
	FailTimeout time.Duration

	backends atomic.Pointer[[]*Backend]
	waiting  atomic.Int64 // requests in Pick waiting for a backend

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
}

// NewPool returns an empty pool.
func NewPool(name string, maxFails int, failTimeout time.Duration) *Pool {
	p := &Pool{Name: name, MaxFails: maxFails, FailTimeout: failTimeout, changed: make(chan struct{})}
	p.backends.Store(&[]*Backend{})
	return p
}

// Waiting is the number of requests queued for a backend now (none was
// ready, or every one was at max_conns): the load the pool cannot carry.
func (p *Pool) Waiting() int64 { return p.waiting.Load() }

// Inflight is the number of requests in flight on the ready backends.
func (p *Pool) Inflight() int64 {
	var n int64
	for _, b := range p.Backends() {
		n += b.Inflight()
	}
	return n
}

// Backends returns the current ready set. The slice must not be modified.
func (p *Pool) Backends() []*Backend { return *p.backends.Load() }

// Add puts b in the ready set.
func (p *Pool) Add(b *Backend) {
	p.update(func(bs []*Backend) []*Backend {
		if slices.Contains(bs, b) {
			return bs
		}
		return append(bs, b)
	})
}

// Remove takes b out of the ready set; requests already sent to it go on.
func (p *Pool) Remove(b *Backend) {
	p.update(func(bs []*Backend) []*Backend {
		return slices.DeleteFunc(bs, func(x *Backend) bool { return x == b })
	})
}

func (p *Pool) update(f func([]*Backend) []*Backend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := f(slices.Clone(p.Backends()))
	p.backends.Store(&next)
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Pool) changes() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// Pick chooses a ready backend with policy (by key, for a KeyPolicy),
// skipping those in exclude (backends already tried).
// Backends that passive health marked down, or at their max_conns, are
// skipped; backups are used only when no other backend is available; when
// every regular backend is down they are used anyway, as NGINX does, rather
// than failing every request. If none can be picked, Pick waits until one
// can, until queueTimeout passes (ErrNoBackend) or ctx ends (ctx's error).
// The backend is returned acquired: the caller must Release it when the
// request is done.
func (p *Pool) Pick(ctx context.Context, policy Policy, exclude []*Backend, key string, queueTimeout time.Duration) (*Backend, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		wake := p.changes() // taken before the snapshot, so no change is missed
		b, busy := p.pickNow(policy, exclude, key)
		if b != nil {
			// Acquire before checking draining, while Drain marks draining
			// before checking in-flight: one of the two sees the other, so
			// no request slips onto an instance that is being stopped.
			b.Acquire()
			if !b.draining.Load() {
				return b, nil
			}
			b.Release()
			continue // it left the pool meanwhile; the snapshot is stale
		}
		if timer == nil {
			timer = time.NewTimer(queueTimeout)
			p.waiting.Add(1)
			defer p.waiting.Add(-1)
		}
		var poll <-chan time.Time
		if busy { // a slot frees up on a Release, which does not signal
			poll = time.After(5 * time.Millisecond)
		}
		select {
		case <-poll:
		case <-wake:
		case <-timer.C:
			if p.allUnhealthy() {
				return nil, ErrAllDown
			}
			return nil, ErrNoBackend
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pickNow picks without waiting. It returns nil when there is no
// candidate, and busy when that is only because of max_conns.
func (p *Pool) pickNow(policy Policy, exclude []*Backend, key string) (b *Backend, busy bool) {
	all := p.Backends()
	if len(all) == 0 {
		return nil, false
	}
	now := time.Now()
	plain := true // the common case: every backend a healthy regular one
	for _, b := range all {
		if b.Backup || b.MaxConns > 0 || !b.Available(now) || slices.Contains(exclude, b) {
			plain = false
			break
		}
	}
	if plain {
		return pickWith(policy, all, key), false // no copy
	}
	var buf [16]*Backend
	pick := func(ok func(*Backend) bool) *Backend {
		candidates := buf[:0]
		for _, b := range all {
			if ok(b) && !slices.Contains(exclude, b) {
				if b.full() {
					busy = true
					continue
				}
				candidates = append(candidates, b)
			}
		}
		return pickWith(policy, candidates, key)
	}
	if b := pick(func(b *Backend) bool { return !b.Backup && b.Available(now) }); b != nil {
		return b, false
	}
	if b := pick(func(b *Backend) bool { return b.Backup && b.Available(now) }); b != nil {
		return b, false
	}
	// Every regular backend is down by passive health: try them anyway, as
	// NGINX does; but never one its active health check says is down.
	return pick(func(b *Backend) bool { return !b.Backup && b.Healthy() }), busy
}

func (p *Pool) allUnhealthy() bool {
	all := p.Backends()
	for _, b := range all {
		if b.Healthy() {
			return false
		}
	}
	return len(all) > 0
}

// SetHealthy records an active health check's verdict on b and wakes the
// requests waiting for a backend when it changes.
func (p *Pool) SetHealthy(b *Backend, healthy bool) {
	if b.unhealthy.Swap(!healthy) == !healthy {
		return // no change
	}
	p.update(func(bs []*Backend) []*Backend { return bs })
}

func pickWith(policy Policy, candidates []*Backend, key string) *Backend {
	if len(candidates) == 0 {
		return nil
	}
	if kp, ok := policy.(KeyPolicy); ok {
		return kp.PickKey(candidates, key)
	}
	return policy.Pick(candidates)
}

// ByToken returns, acquired, the ready backend whose Token is token, if it
// is available and below its max_conns; otherwise nil (pick normally then).
func (p *Pool) ByToken(token string) *Backend {
	now := time.Now()
	for _, b := range p.Backends() {
		if b.Token() != token {
			continue
		}
		if !b.Available(now) || b.full() {
			return nil
		}
		b.Acquire()
		if b.draining.Load() {
			b.Release()
			return nil
		}
		return b
	}
	return nil
}

// Drain takes b out of the ready set and waits until its ordinary requests
// in flight are done or ctx ends. It reports whether they all finished.
// Long-lived connections (see StartLongLived) are not waited for: they end
// only when the instance closes them, once it has its stop signal.
func (p *Pool) Drain(ctx context.Context, b *Backend) bool {
	b.draining.Store(true)
	p.Remove(b)
	if b.Ordinary() == 0 {
		return true
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for b.Ordinary() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return b.Ordinary() == 0
		}
	}
	return true
}
