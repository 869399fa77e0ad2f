// Package benchcache compares package cache with otter and go-redis/cache
// (benchmarks), and measures the fleet stampede (cmd/stampede) and L1's
// memory under a byte bound (cmd/rss). It is its own module so that the
// anchors' dependencies stay out of herd's go.mod.
package benchcache
