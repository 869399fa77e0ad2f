package balance

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDrainDoesNotWaitForLongLived(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ordinary  int
		upgraded  int
		streams   int
		wantDrain bool // within a short ctx
	}{
		{"nothing in flight", 0, 0, 0, true},
		{"only WebSockets", 0, 3, 0, true},
		{"only event streams", 0, 0, 2, true},
		{"both kinds", 0, 1, 1, true},
		{"an ordinary request beside them", 1, 2, 1, false},
		{"an ordinary request alone", 1, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPool("web", 1, time.Second)
			b := &Backend{Addr: "x"}
			p.Add(b)
			for range tc.ordinary {
				b.Acquire()
			}
			for _, k := range []struct {
				kind LongLived
				n    int
			}{{Upgraded, tc.upgraded}, {Stream, tc.streams}} {
				for range k.n {
					b.Acquire()
					b.StartLongLived(k.kind)
				}
			}
			if got, want := b.Inflight(), int64(tc.ordinary+tc.upgraded+tc.streams); got != want {
				t.Errorf("Inflight = %d, want %d: long-lived connections still count for balancing", got, want)
			}
			if got := b.Ordinary(); got != int64(tc.ordinary) {
				t.Errorf("Ordinary = %d, want %d", got, tc.ordinary)
			}
			if u, s := b.OpenLongLived(); u != int64(tc.upgraded) || s != int64(tc.streams) {
				t.Errorf("OpenLongLived = %d, %d, want %d, %d", u, s, tc.upgraded, tc.streams)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			if got := p.Drain(ctx, b); got != tc.wantDrain {
				t.Errorf("Drain = %v, want %v", got, tc.wantDrain)
			}
			for range tc.upgraded {
				b.EndLongLived(Upgraded)
			}
			for range tc.streams {
				b.EndLongLived(Stream)
			}
			if got := b.Inflight(); got != int64(tc.ordinary) {
				t.Errorf("after the long-lived ones ended, Inflight = %d, want %d", got, tc.ordinary)
			}
		})
	}
}

// While one ordinary request is in flight, Ordinary never reads 0, however
// long-lived connections end around it: a drain must not take the moment
// between two counter updates for the end of the ordinary request. (As in
// a drain, nothing new is acquired meanwhile: Pick and ByToken give back
// what they acquire once draining is set.)
func TestOrdinaryNeverUndercounts(t *testing.T) {
	// The window between two updates is a few nanoseconds: many rounds,
	// so that a wrong order fails on most runs rather than on some.
	for round := range 40 {
		if reads, bad := undercountRound(); bad >= 0 {
			t.Fatalf("round %d: Ordinary read %d with one ordinary request in flight (read %d)", round, bad, reads)
		}
	}
}

// undercountRound ends 40,000 long-lived connections from 4 goroutines
// while reading Ordinary beside one ordinary request; it returns the
// number of reads and the first reading below 1, or -1.
func undercountRound() (reads int, bad int64) {
	const workers, each = 4, 10_000
	b := &Backend{Addr: "x"}
	b.Acquire() // the ordinary request held throughout
	kinds := []LongLived{Upgraded, Stream}
	for i := range workers * each {
		b.Acquire()
		b.StartLongLived(kinds[i%2])
	}
	var wg sync.WaitGroup
	var done atomic.Int32
	for i := range workers {
		wg.Go(func() {
			defer done.Add(1)
			for range each {
				b.EndLongLived(kinds[i%2])
			}
		})
	}
	defer wg.Wait()
	for done.Load() < workers {
		reads++
		if n := b.Ordinary(); n < 1 { // one too many for a moment is allowed
			return reads, n
		}
	}
	return reads, -1
}
