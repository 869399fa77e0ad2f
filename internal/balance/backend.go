// Package balance keeps the live set of ready instances behind each app and
// picks one per request with a selection policy. Live state (in-flight
// counts, passive failures) lives on Backend, apart from configuration.
package balance

import (
	"strconv"
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
	// ID names the backend stably across restarts ("web/0",
	// "legacy/127.0.0.1:9001"); hashing and sticky cookies use it.
	ID string
	// Backup backends get requests only while no other is available.
	Backup bool
	// MaxConns bounds requests in flight; 0 is no bound.
	MaxConns int64
	// Stats, if not nil, counts the responses of the instance slot; the
	// proxy bumps it once per attempt. nil counts nothing.
	Stats *Stats

	inflight  atomic.Int64
	upgraded  atomic.Int64 // of inflight: upgraded connections (WebSocket)
	streams   atomic.Int64 // of inflight: event streams (see StartLongLived)
	draining  atomic.Bool
	unhealthy atomic.Bool  // active health check
	downUntil atomic.Int64 // unix nanoseconds; passive health
	checkedAt atomic.Int64 // unix nanoseconds of the last active probe

	failMu    sync.Mutex
	fails     int
	firstFail time.Time
}

// InheritHealth gives b, a new backend for the same server as prev (an
// edited weight, backup or max_conns), prev's passive and active health, so
// that a config edit does not make a failing server look healthy. Call it
// before b is used; requests in flight stay counted on prev.
func (b *Backend) InheritHealth(prev *Backend) {
	b.unhealthy.Store(prev.unhealthy.Load())
	b.downUntil.Store(prev.downUntil.Load())
	b.checkedAt.Store(prev.checkedAt.Load())
	prev.failMu.Lock()
	b.fails, b.firstFail = prev.fails, prev.firstFail
	prev.failMu.Unlock()
}

// Inflight is the number of requests sent to the backend and not finished.
func (b *Backend) Inflight() int64 { return b.inflight.Load() }

// Acquire counts a request in flight; Release counts it finished. Pool.Pick
// acquires the backend it returns.
func (b *Backend) Acquire() { b.inflight.Add(1) }

// Release: see Acquire.
func (b *Backend) Release() { b.inflight.Add(-1) }

// LongLived is what kind of long-lived connection a request became.
type LongLived int

// The kinds of long-lived connections. Each stays counted in Inflight (so
// least_conn, max_conns and autoscaling still see it), but a drain does not
// wait for it: it ends when the instance closes it, which the stop signal
// asks for.
const (
	// Upgraded: a 101 Switching Protocols answer (WebSocket, in practice);
	// the connection is a tunnel from then on.
	Upgraded LongLived = iota + 1
	// Stream: a response that streams until the instance ends it, as
	// server-sent events (text/event-stream) do.
	Stream
)

// StartLongLived marks one of the backend's acquired requests as long-lived
// of kind k; EndLongLived(k) then replaces its Release. Ordinary requests
// never call either, so they pay nothing for this.
func (b *Backend) StartLongLived(k LongLived) { b.longLived(k).Add(1) }

// EndLongLived releases a request StartLongLived marked. The long-lived
// count drops before the in-flight count, so that Ordinary, which reads
// them the other way round, may count one too many for a moment but never
// one too few.
func (b *Backend) EndLongLived(k LongLived) {
	b.longLived(k).Add(-1)
	b.inflight.Add(-1)
}

func (b *Backend) longLived(k LongLived) *atomic.Int64 {
	if k == Upgraded {
		return &b.upgraded
	}
	return &b.streams
}

// Ordinary is the number of requests in flight that are not long-lived:
// what a drain waits for. See EndLongLived for why it reads inflight
// first.
func (b *Backend) Ordinary() int64 {
	n := b.inflight.Load()
	n -= b.upgraded.Load() + b.streams.Load()
	return max(n, 0)
}

// OpenLongLived is the number of upgraded connections and of streams open.
func (b *Backend) OpenLongLived() (upgraded, streams int64) {
	return b.upgraded.Load(), b.streams.Load()
}

// Token is the backend's sticky-cookie value: a hash of its ID, stable
// across restarts and the same on every herd node, revealing no address.
func (b *Backend) Token() string {
	return strconv.FormatUint(hashKey("sticky", b.ID), 36)
}

// full reports whether the backend is at its max_conns.
func (b *Backend) full() bool { return b.MaxConns > 0 && b.inflight.Load() >= b.MaxConns }

// Available reports whether health lets the backend take requests now:
// its active check (if any) passes and passive health has not marked it down.
func (b *Backend) Available(now time.Time) bool {
	return !b.unhealthy.Load() && now.UnixNano() >= b.downUntil.Load()
}

// Healthy reports the active health check's verdict (true without a check).
func (b *Backend) Healthy() bool { return !b.unhealthy.Load() }

// Checked notes when an active probe of the backend last finished.
func (b *Backend) Checked(at time.Time) { b.checkedAt.Store(at.UnixNano()) }

// LastCheck is when the backend was last probed; zero if never.
func (b *Backend) LastCheck() time.Time {
	if n := b.checkedAt.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
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
