package balance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Policy picks one backend out of candidates, none of which is nil. It
// returns nil only when candidates is empty. A Policy is safe for concurrent use.
type Policy interface {
	Pick(candidates []*Backend) *Backend
}

// KeyPolicy is a Policy that picks by a key of the request (ip_hash,
// hash): the same key reaches the same backend while that backend is a
// candidate.
type KeyPolicy interface {
	Policy
	PickKey(candidates []*Backend, key string) *Backend
}

// NewPolicy returns the policy with the given config name:
// "round_robin" (or ""), "least_conn", "random_two", "ip_hash" or "hash".
func NewPolicy(name string) (Policy, error) {
	switch name {
	case "", "round_robin":
		return &RoundRobin{}, nil
	case "least_conn":
		return &LeastConn{}, nil
	case "random_two":
		return RandomTwo{}, nil
	case "ip_hash", "hash":
		return Rendezvous{}, nil
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

// Rendezvous is weighted rendezvous (highest random weight) hashing: each
// key goes to the backend with the highest score for (key, backend ID).
// Adding or removing one of N backends moves only about 1/N of the keys,
// and every herd node computes the same answer. With no key it picks at
// random (a request lacking the header, say).
type Rendezvous struct{}

// Pick implements Policy: a random candidate.
func (Rendezvous) Pick(candidates []*Backend) *Backend {
	if len(candidates) == 0 {
		return nil
	}
	return candidates[rand.IntN(len(candidates))]
}

// PickKey implements KeyPolicy.
func (r Rendezvous) PickKey(candidates []*Backend, key string) *Backend {
	if key == "" {
		return r.Pick(candidates)
	}
	var best *Backend
	bestScore := math.Inf(-1)
	for _, b := range candidates {
		// Weighted: score = -w / ln(u), u uniform in (0,1) from the hash.
		u := (float64(hashKey(key, b.ID)>>11) + 0.5) / (1 << 53)
		score := -float64(b.weight()) / math.Log(u)
		if score > bestScore {
			best, bestScore = b, score
		}
	}
	return best
}

// hashKey is FNV-1a of key and id, finished with splitmix64 so that close
// inputs land far apart. It is the same in every process.
func hashKey(key, id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * 1099511628211
	}
	h = (h ^ 0xff) * 1099511628211
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	h += 0x9e3779b97f4a7c15
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
	h = (h ^ (h >> 27)) * 0x94d049bb133111eb
	return h ^ (h >> 31)
}

// Interface guards.
var (
	_ KeyPolicy = Rendezvous{}
	_ Policy    = (*RoundRobin)(nil)
	_ Policy    = (*LeastConn)(nil)
	_ Policy    = RandomTwo{}
)
