// Package balance keeps the live set of ready instances behind each app and
// picks one per request with a selection policy. Live state (in-flight
// counts, passive failures) lives on Backend, apart from configuration.
package balance

import (
	"sync"
	"sync/atomic"
	"time"
)

// Backend is one instance a request can be sent to. Its methods are safe for
// concurrent use.
type Backend struct {
	// Addr is the instance's host:port.
	Addr string
	// App and Index name the instance in logs and metrics.
	App   string
	Index int
	// Weight biases round_robin and the in-flight comparisons; 0 means 1.
	Weight int

	inflight  atomic.Int64
	draining  atomic.Bool
	downUntil atomic.Int64 // unix nanoseconds; passive health

	failMu    sync.Mutex
	fails     int
	firstFail time.Time
}

// Inflight is the number of requests sent to the backend and not finished.
func (b *Backend) Inflight() int64 { return b.inflight.Load() }

// Acquire counts a request in flight; Release counts it finished. Pool.Pick
// acquires the backend it returns.
func (b *Backend) Acquire() { b.inflight.Add(1) }

// Release: see Acquire.
func (b *Backend) Release() { b.inflight.Add(-1) }

// Available reports whether passive health lets the backend take requests now.
func (b *Backend) Available(now time.Time) bool {
	return now.UnixNano() >= b.downUntil.Load()
}

// Fail records a connect error or timeout. Once maxFails have happened within
// failTimeout, the backend is unavailable for failTimeout, like NGINX's
// max_fails and fail_timeout. It reports whether the backend went down.
func (b *Backend) Fail(now time.Time, maxFails int, failTimeout time.Duration) bool {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	if b.fails == 0 || now.Sub(b.firstFail) > failTimeout {
		b.fails, b.firstFail = 0, now
	}
	b.fails++
	if b.fails < maxFails {
		return false
	}
	b.fails = 0
	b.downUntil.Store(now.Add(failTimeout).UnixNano())
	return true
}

func (b *Backend) weight() int64 {
	if b.Weight <= 0 {
		return 1
	}
	return int64(b.Weight)
}
