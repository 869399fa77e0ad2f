package shard

import "github.com/cespare/xxhash/v2"

// DefaultBuckets is the bucket count Create uses when none is given.
const DefaultBuckets = 1024

// MaxBuckets is the largest bucket count a map may have.
const MaxBuckets = 1 << 16

// BucketOf returns the bucket of key among n buckets: XXH64 of the key's
// bytes (seed 0) modulo n. The function is part of the on-disk format: rows
// carry the bucket it returns, so it never changes. Numeric keys are
// written in decimal (strconv.FormatInt) by the caller, so that every
// language computes the same bucket.
func BucketOf(key string, n int) int {
	if n <= 0 {
		return 0
	}
	return int(xxhash.Sum64String(key) % uint64(n))
}

// seedHashCode is the seed's hashCode: Java's String.hashCode over the
// UTF-16 code units, as 32-bit signed arithmetic. Kept only to compare the
// seed's hash % N placement with ours in tests and examples.
func seedHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = h*31 + int32(0xD800+(r>>10))
			h = h*31 + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = h*31 + int32(r)
	}
	return h
}

// seedShard is the seed's placement: Math.abs(hashCode(key)) % n.
func seedShard(key string, n int) int {
	h := int64(seedHashCode(key))
	if h < 0 {
		h = -h
	}
	return int(h % int64(n))
}
