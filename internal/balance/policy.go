package balance

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Policy picks one backend out of candidates, none of which is nil. It
// returns nil only when candidates is empty. A Policy is safe for concurrent use.
type Policy interface {
	Pick(candidates []*Backend) *Backend
}

// NewPolicy returns the policy with the given config name:
// "round_robin" (or ""), "least_conn" or "random_two".
func NewPolicy(name string) (Policy, error) {
	switch name {
	case "", "round_robin":
		return &RoundRobin{}, nil
	case "least_conn":
		return &LeastConn{}, nil
	case "random_two":
		return RandomTwo{}, nil
	}
	return nil, fmt.Errorf("balance: unknown policy %q", name)
}

// RoundRobin is NGINX's smooth weighted round robin: with weights 5,1,1 it
// picks a a b a c a a rather than a a a a a b c. With equal weights it is a
// plain rotation. The zero value is ready to use.
type RoundRobin struct {
	next atomic.Uint64 // equal weights: rotation counter

	mu      sync.Mutex
	current map[*Backend]int64 // unequal weights: each backend's current weight
}

// Pick implements Policy.
func (p *RoundRobin) Pick(candidates []*Backend) *Backend {
	switch len(candidates) {
	case 0:
		return nil
	case 1:
		return candidates[0]
	}
	if equalWeights(candidates) {
		return candidates[(p.next.Add(1)-1)%uint64(len(candidates))]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current == nil {
		p.current = make(map[*Backend]int64)
	}
	var best *Backend
	var total int64
	for _, b := range candidates {
		w := b.weight()
		total += w
		p.current[b] += w
		if best == nil || p.current[b] > p.current[best] {
			best = b
		}
	}
	p.current[best] -= total
	// Forget backends that left, so the map does not grow across restarts.
	if len(p.current) > 2*len(candidates) {
		keep := make(map[*Backend]int64, len(candidates))
		for _, b := range candidates {
			keep[b] = p.current[b]
		}
		p.current = keep
	}
	return best
}

func equalWeights(bs []*Backend) bool {
	w := bs[0].weight()
	for _, b := range bs[1:] {
		if b.weight() != w {
			return false
		}
	}
	return true
}

// LeastConn picks the backend with the fewest requests in flight per unit of
// weight. Ties go round the candidates in turn, so a light load still spreads
// over every instance. The zero value is ready to use.
type LeastConn struct {
	start atomic.Uint64
}

// Pick implements Policy.
func (p *LeastConn) Pick(candidates []*Backend) *Backend {
	n := len(candidates)
	if n == 0 {
		return nil
	}
	offset := int(p.start.Add(1) % uint64(n))
	var best *Backend
	for i := 0; i < n; i++ {
		b := candidates[(offset+i)%n]
		if best == nil || lessLoaded(b, best) {
			best = b
		}
	}
	return best
}

// lessLoaded reports whether a has fewer in-flight requests per weight than b.
func lessLoaded(a, b *Backend) bool {
	return a.Inflight()*b.weight() < b.Inflight()*a.weight()
}

// RandomTwo is the power of two random choices: it draws two distinct
// backends and takes the less loaded one. It needs no shared state.
type RandomTwo struct{}

// Pick implements Policy.
func (RandomTwo) Pick(candidates []*Backend) *Backend {
	n := len(candidates)
	switch n {
	case 0:
		return nil
	case 1:
		return candidates[0]
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := candidates[i], candidates[j]
	if lessLoaded(b, a) {
		return b
	}
	return a
}

// Interface guards.
var (
	_ Policy = (*RoundRobin)(nil)
	_ Policy = (*LeastConn)(nil)
	_ Policy = RandomTwo{}
)
