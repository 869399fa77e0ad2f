package shard

import (
	"strconv"
	"testing"
)

// The bucket of a key is stored in every row: it must never change.
func TestBucketOfIsStable(t *testing.T) {
	tests := []struct {
		key  string
		n    int
		want int
	}{
		{"", 1024, int(0xef46db3751d8e999 % 1024)}, // XXH64("", seed 0), the published test vector
		{"1", 1024, 212},
		{"42", 1024, 697},
		{"user-7", 1024, 253},
		{"42", 16, 9},
	}
	for _, tt := range tests {
		if got := BucketOf(tt.key, tt.n); got != tt.want {
			t.Errorf("BucketOf(%q, %d) = %d; want %d", tt.key, tt.n, got, tt.want)
		}
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		buckets int
		from    []string
		to      []string
		moves   int // the fewest possible: the buckets over their share
	}{
		{"4 to 5", 1024, []string{"a", "b", "c", "d"}, []string{"a", "b", "c", "d", "e"}, 204},
		{"1 to 2", 1024, []string{"a"}, []string{"a", "b"}, 512},
		{"5 to 4", 1024, []string{"a", "b", "c", "d", "e"}, []string{"a", "b", "c", "d"}, 204},
		{"even already", 1024, []string{"a", "b"}, []string{"a", "b"}, 0},
		{"replace one", 12, []string{"a", "b", "c"}, []string{"a", "b", "z"}, 4},
		{"2 to 3 uneven count", 10, []string{"a", "b"}, []string{"a", "b", "c"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMap(tt.buckets, tt.from...)
			if err != nil {
				t.Fatal(err)
			}
			moves, err := Plan(m, tt.to...)
			if err != nil {
				t.Fatal(err)
			}
			if len(moves) != tt.moves {
				t.Errorf("got %d moves; want %d", len(moves), tt.moves)
			}
			n, err := m.Apply(moves...)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := n.Version(), m.Version()+int64(len(moves)); got != want {
				t.Errorf("version after moves = %d; want %d", got, want)
			}
			lo, hi := tt.buckets/len(tt.to), (tt.buckets+len(tt.to)-1)/len(tt.to)
			counts := n.Counts()
			for _, s := range tt.to {
				if c := counts[s]; c < lo || c > hi {
					t.Errorf("shard %s has %d buckets; want %d..%d", s, c, lo, hi)
				}
			}
			total := 0
			for _, c := range counts {
				total += c
			}
			if total != tt.buckets {
				t.Errorf("buckets after moves = %d; want %d", total, tt.buckets)
			}
			// A bucket only moves away from a shard over its share, and to a
			// shard under it: never between two shards that keep their share.
			for _, mv := range moves {
				if len(m.BucketsOf(mv.From)) <= lo && contains(tt.to, mv.From) {
					t.Errorf("%v: %s was not over its share", mv, mv.From)
				}
			}
			again, err := Plan(n, tt.to...)
			if err != nil || len(again) != 0 {
				t.Errorf("plan after the moves = %v, %v; want none", again, err)
			}
		})
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// The seed's hash % N moves 80 % of keys from 4 to 5 shards; fixed buckets
// and a planned map move 1/5.
func TestAddingAFifthShardMovesAFifthOfKeys(t *testing.T) {
	m4, _ := NewMap(1024, "s0", "s1", "s2", "s3")
	moves, err := Plan(m4, "s0", "s1", "s2", "s3", "s4")
	if err != nil {
		t.Fatal(err)
	}
	m5, err := m4.Apply(moves...)
	if err != nil {
		t.Fatal(err)
	}
	const keys = 100000
	ours, seed := 0, 0
	for i := range keys {
		k := strconv.Itoa(i + 1)
		if m4.ShardOf(k) != m5.ShardOf(k) {
			ours++
			if m5.ShardOf(k) != "s4" {
				t.Fatalf("key %s moved between old shards: %s → %s", k, m4.ShardOf(k), m5.ShardOf(k))
			}
		}
		if seedShard(k, 4) != seedShard(k, 5) {
			seed++
		}
	}
	if f := float64(ours) / keys; f < 0.18 || f > 0.22 {
		t.Errorf("buckets: %.1f %% of keys moved; want about 20 %%", 100*f)
	}
	if f := float64(seed) / keys; f < 0.75 || f > 0.85 {
		t.Errorf("seed's hash %% N: %.1f %% of keys moved; want about 80 %%", 100*f)
	}
	t.Logf("4 → 5 shards, %d keys: %.1f %% moved with buckets, %.1f %% with the seed's hash %% N", keys, 100*float64(ours)/keys, 100*float64(seed)/keys)
}

func TestSeedHashCode(t *testing.T) {
	// Java's "hello".hashCode() is 99162322; "polygenelubricants" overflows to MinInt32.
	for _, tt := range []struct {
		s    string
		want int32
	}{{"hello", 99162322}, {"polygenelubricants", -2147483648}, {"", 0}} {
		if got := seedHashCode(tt.s); got != tt.want {
			t.Errorf("seedHashCode(%q) = %d; want %d", tt.s, got, tt.want)
		}
	}
}
