package balance

import (
	"testing"
	"time"
)

func TestStatsCountsByClassAndBucket(t *testing.T) {
	var s Stats
	for _, r := range []struct {
		status int
		d      time.Duration
	}{
		{200, 500 * time.Microsecond}, // ≤ 1 ms: bucket 0
		{204, time.Millisecond},       // on the bound: still bucket 0
		{301, 3 * time.Millisecond},   // bucket 2 (≤ 5 ms)
		{404, 20 * time.Millisecond},  // bucket 4 (≤ 25 ms)
		{503, time.Minute},            // slower than every bound: the last
		{999, time.Millisecond},       // out of range: counted as 5xx
	} {
		s.Response(r.status, r.d)
	}
	s.Failed()
	s.Failed()
	got := s.Snapshot()
	if want := [6]uint64{2, 0, 2, 1, 1, 2}; got.Classes != want {
		t.Errorf("classes %v; want %v", got.Classes, want)
	}
	want := [len(LatencyBounds) + 1]uint64{}
	want[0], want[2], want[4], want[len(LatencyBounds)] = 3, 1, 1, 1
	if got.Buckets != want {
		t.Errorf("buckets %v; want %v", got.Buckets, want)
	}
	if d := 500*time.Microsecond + 2*time.Millisecond + 3*time.Millisecond + 20*time.Millisecond + time.Minute; got.Sum != d {
		t.Errorf("sum %s; want %s", got.Sum, d)
	}
	if got.Responses() != 6 {
		t.Errorf("responses %d; want 6", got.Responses())
	}
}

func TestNilStatsCountNothing(t *testing.T) {
	var s *Stats
	s.Response(200, time.Millisecond)
	s.Failed()
	if got := s.Snapshot(); got != (StatsSnapshot{}) {
		t.Errorf("nil stats snapshot %+v; want zero", got)
	}
}

func BenchmarkStatsResponse(b *testing.B) {
	var s Stats
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Response(200, 3*time.Millisecond)
		}
	})
}
