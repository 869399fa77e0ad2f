package shard

import (
	"fmt"
	"slices"
	"sort"
)

// Map is one version of the bucket → shard assignment. A Map is immutable
// once made and safe for concurrent use; the zero value has no buckets.
type Map struct {
	version int64
	shards  []string // sorted, unique
	owner   []int    // bucket → index into shards
}

// NewMap returns version 1 of a map of n buckets over shards, bucket b on
// shards[b % len(shards)] (shards sorted by name). It is what Create
// stores; use it offline to plan.
func NewMap(n int, shards ...string) (*Map, error) {
	if n <= 0 || n > MaxBuckets {
		return nil, fmt.Errorf("shard: bucket count %d out of range 1..%d", n, MaxBuckets)
	}
	names, err := sortedNames(shards)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("shard: a map needs at least one shard")
	}
	m := &Map{version: 1, shards: names, owner: make([]int, n)}
	for b := range m.owner {
		m.owner[b] = b % len(names)
	}
	return m, nil
}

func sortedNames(shards []string) ([]string, error) {
	names := slices.Clone(shards)
	sort.Strings(names)
	for i, s := range names {
		if s == "" {
			return nil, fmt.Errorf("shard: empty shard name")
		}
		if i > 0 && names[i-1] == s {
			return nil, fmt.Errorf("shard: shard %q named twice", s)
		}
	}
	return names, nil
}

// Version returns the map's version; every flip of a bucket adds one.
func (m *Map) Version() int64 { return m.version }

// Buckets returns the bucket count, fixed when the map was created.
func (m *Map) Buckets() int { return len(m.owner) }

// Shards returns the shard names the map knows, sorted, including shards
// that own no bucket yet.
func (m *Map) Shards() []string { return slices.Clone(m.shards) }

// Shard returns the name of the shard that owns bucket b.
func (m *Map) Shard(b int) string { return m.shards[m.owner[b]] }

// ShardOf returns the name of the shard that owns key.
func (m *Map) ShardOf(key string) string { return m.Shard(BucketOf(key, len(m.owner))) }

// BucketsOf returns the buckets shard owns, ascending.
func (m *Map) BucketsOf(shard string) []int {
	i, ok := slices.BinarySearch(m.shards, shard)
	if !ok {
		return nil
	}
	var out []int
	for b, o := range m.owner {
		if o == i {
			out = append(out, b)
		}
	}
	return out
}

// Counts returns the number of buckets each shard owns.
func (m *Map) Counts() map[string]int {
	c := make(map[string]int, len(m.shards))
	for _, s := range m.shards {
		c[s] = 0
	}
	for _, o := range m.owner {
		c[m.shards[o]]++
	}
	return c
}

// Move is one bucket going from one shard to another.
type Move struct {
	Bucket   int
	From, To string
}

func (mv Move) String() string { return fmt.Sprintf("bucket %d: %s → %s", mv.Bucket, mv.From, mv.To) }

// Apply returns the map after moves, one version per move, as the
// database's map is after the moves ran. It does not change m.
func (m *Map) Apply(moves ...Move) (*Map, error) {
	n := &Map{version: m.version, shards: slices.Clone(m.shards), owner: slices.Clone(m.owner)}
	for _, mv := range moves {
		n = n.withShard(mv.To)
		if mv.Bucket < 0 || mv.Bucket >= len(n.owner) {
			return nil, fmt.Errorf("shard: %v: no such bucket", mv)
		}
		if got := n.Shard(mv.Bucket); got != mv.From {
			return nil, fmt.Errorf("shard: %v: bucket is on %s", mv, got)
		}
		i, _ := slices.BinarySearch(n.shards, mv.To)
		n.owner[mv.Bucket] = i
		n.version++
	}
	return n, nil
}

// withShard returns m with shard added to its names (same version) if it
// is not there yet.
func (m *Map) withShard(shard string) *Map {
	i, ok := slices.BinarySearch(m.shards, shard)
	if ok {
		return m
	}
	n := &Map{version: m.version, shards: slices.Insert(slices.Clone(m.shards), i, shard), owner: slices.Clone(m.owner)}
	for b, o := range n.owner {
		if o >= i {
			n.owner[b] = o + 1
		}
	}
	return n
}

// Plan returns the fewest bucket moves that spread m's buckets evenly over
// shards (which may add names m does not know and leave out names it
// does, whose buckets then all move). Each shard ends with ⌊B/N⌋ or
// ⌈B/N⌉ buckets; only buckets of shards over their share move, so adding
// a fifth shard to four moves 1/5 of the buckets and nothing else. The
// plan is deterministic: donors give their highest-numbered buckets, and
// receivers are filled in name order.
func Plan(m *Map, shards ...string) ([]Move, error) {
	names, err := sortedNames(shards)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("shard: plan needs at least one shard")
	}
	counts := m.Counts()
	keep := make(map[string]bool, len(names))
	for _, s := range names {
		keep[s] = true
	}
	// Shards with the most buckets keep the extra one, so fewer move.
	order := slices.Clone(names)
	sort.SliceStable(order, func(i, j int) bool { return counts[order[i]] > counts[order[j]] })
	base, extra := len(m.owner)/len(names), len(m.owner)%len(names)
	want := make(map[string]int, len(names))
	for i, s := range order {
		want[s] = base
		if i < extra {
			want[s]++
		}
	}
	// Collect the buckets that must leave, highest first per donor.
	var free []Move
	for _, s := range m.shards {
		bs := m.BucketsOf(s)
		excess := len(bs) - want[s] // want is 0 for a shard left out
		for i := 0; i < excess; i++ {
			free = append(free, Move{Bucket: bs[len(bs)-1-i], From: s})
		}
	}
	sort.Slice(free, func(i, j int) bool { return free[i].Bucket < free[j].Bucket })
	var moves []Move
	for _, s := range names {
		for counts[s] < want[s] && len(free) > 0 {
			mv := free[0]
			free = free[1:]
			mv.To = s
			moves = append(moves, mv)
			counts[s]++
		}
	}
	return moves, nil
}
