package cache

import (
	"context"
	"errors"
	"sync"
)

// flight is single flight per key, run on the first caller's goroutine.
// x/sync/singleflight's DoChan would let each caller stop waiting on its own
// context, but it runs the call on a new goroutine, and the two hand-offs
// made an L2 hit 2.7x a raw GET on this 2-core machine (bench/cache). Here
// the leader calls fn inline and waiters select on their own context; a
// waiter whose leader failed only because the leader's context ended tries
// again with its own.
type flight[T any] struct {
	mu sync.Mutex
	m  map[string]*call[T]
}

type call[T any] struct {
	waiters int  // under flight.mu; read by tests
	bg      bool // a background refresh: its failure is not its waiters'
	done    chan struct{}
	val     T
	err     error
}

// waiting says how many callers wait on key's call (for tests).
func (f *flight[T]) waiting(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.m[key]; ok {
		return c.waiters
	}
	return 0
}

func (f *flight[T]) do(ctx context.Context, key string, fn func(context.Context) (T, error)) (T, error) {
	for {
		f.mu.Lock()
		if f.m == nil {
			f.m = map[string]*call[T]{}
		}
		if c, ok := f.m[key]; ok {
			c.waiters++
			f.mu.Unlock()
			select {
			case <-ctx.Done():
				var zero T
				return zero, ctx.Err()
			case <-c.done:
			}
			if c.err != nil && ctx.Err() == nil &&
				(c.bg || errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
				continue // the leader's context ended (or a refresh gave up), not ours
			}
			return c.val, c.err
		}
		c := &call[T]{done: make(chan struct{})}
		f.m[key] = c
		f.mu.Unlock()
		func() {
			defer func() { f.finish(key, c, c.val, c.err) }()
			c.val, c.err = fn(ctx)
		}()
		return c.val, c.err
	}
}

// start registers a call for key, unless one is in flight (then nil); the
// caller runs it and must finish it.
func (f *flight[T]) start(key string, bg bool) *call[T] {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*call[T]{}
	}
	if _, ok := f.m[key]; ok {
		return nil
	}
	c := &call[T]{done: make(chan struct{}), bg: bg}
	f.m[key] = c
	return c
}

// finish publishes c's result to its waiters and forgets it.
func (f *flight[T]) finish(key string, c *call[T], val T, err error) {
	c.val, c.err = val, err
	f.mu.Lock()
	delete(f.m, key)
	f.mu.Unlock()
	close(c.done)
}
