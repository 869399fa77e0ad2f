package cache

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
)

// striped is a counter spread over cache lines; each Add lands on a random
// one, so two cores counting hits rarely share a line. It replaces otter's
// stats.Counter for L1 hits and misses: that one takes a token from a
// sync.Pool on every add and is called through otter's panic-guarded
// recorder, which made a counted hit 1.5-2x an uncounted one
// (bench/cache/README.md); this costs a runtime random number and an
// uncontended atomic add.
type striped struct {
	lines []line
	mask  uint32
}

type line struct {
	n atomic.Uint64
	_ [56]byte // the rest of a 64-byte cache line
}

func newStriped() *striped {
	n := 8
	for n < 4*runtime.GOMAXPROCS(0) {
		n *= 2
	}
	return &striped{lines: make([]line, n), mask: uint32(n - 1)}
}

func (s *striped) add() { s.lines[rand.Uint32()&s.mask].n.Add(1) }

// load sums the lines; adds racing with it may or may not be in the sum.
func (s *striped) load() uint64 {
	var t uint64
	for i := range s.lines {
		t += s.lines[i].n.Load()
	}
	return t
}
