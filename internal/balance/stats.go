package balance

import (
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds of Stats' latency buckets, the
// histogram herd exports per instance; a last bucket holds everything
// slower.
var LatencyBounds = [...]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Stats counts what one instance slot did with the requests sent to it:
// its responses by status class, the attempts that failed without one
// (proxy errors: refused, reset, timed out), and the time to each
// response's head. The proxy bumps it once per attempt with atomic adds
// only (no lock, no allocation). The zero value is ready; a nil *Stats
// counts nothing. Safe for concurrent use.
//
// Stats belong to a slot (app and index), not to one process, so the
// owner keeps them across restarts and counters only grow.
type Stats struct {
	classes  [6]atomic.Uint64 // [0] proxy errors, [1..5] 1xx..5xx
	sumNanos atomic.Int64
	buckets  [len(LatencyBounds) + 1]atomic.Uint64
}

// Response counts a response head with status that arrived d after the
// attempt started.
func (s *Stats) Response(status int, d time.Duration) {
	if s == nil {
		return
	}
	c := status / 100
	if c < 1 || c > 5 {
		c = 5
	}
	s.classes[c].Add(1)
	s.sumNanos.Add(int64(d))
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	s.buckets[i].Add(1)
}

// Failed counts an attempt that got no response from the instance.
func (s *Stats) Failed() {
	if s != nil {
		s.classes[0].Add(1)
	}
}

// StatsSnapshot is a copy of a Stats' counters.
type StatsSnapshot struct {
	// Classes counts responses by status class: Classes[2] are 2xx.
	// Classes[0] counts proxy errors, attempts that got no response.
	Classes [6]uint64
	// Sum is the total time to the response heads counted in Classes[1:].
	Sum time.Duration
	// Buckets counts those responses by LatencyBounds (not cumulative);
	// the last counts those slower than every bound.
	Buckets [len(LatencyBounds) + 1]uint64
}

// Snapshot copies the counters. They are read one by one, so a snapshot
// taken while requests finish may be off by those requests.
func (s *Stats) Snapshot() StatsSnapshot {
	var out StatsSnapshot
	if s == nil {
		return out
	}
	for i := range s.classes {
		out.Classes[i] = s.classes[i].Load()
	}
	out.Sum = time.Duration(s.sumNanos.Load())
	for i := range s.buckets {
		out.Buckets[i] = s.buckets[i].Load()
	}
	return out
}

// Responses is the number of responses counted (every class but errors).
func (s StatsSnapshot) Responses() uint64 {
	var n uint64
	for _, c := range s.Classes[1:] {
		n += c
	}
	return n
}
