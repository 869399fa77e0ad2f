package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// scanCount is SCAN's COUNT hint and the size of one UNLINK.
const scanCount = 1000

// InvalidatePattern removes every key matching the Redis glob pattern
// (*, ?, [abc], [^a-z], \ escapes) from Redis and from every process's L1,
// and returns how many Redis keys it unlinked. It walks the keyspace with
// SCAN and frees in batches with UNLINK (the memory is reclaimed off the
// main thread), so Redis keeps serving others throughout; it never runs
// KEYS. It is O(keys in Redis): for a whole namespace use InvalidateAll,
// which is O(1). Keys written during the walk may survive it.
func (c *Cache[V]) InvalidatePattern(ctx context.Context, pattern string) (int, error) {
	n := 0
	if c.rdb != nil {
		match := c.l2key(pattern)
		var cursor uint64
		for {
			keys, next, err := c.rdb.Scan(ctx, cursor, match, scanCount).Result()
			if err != nil {
				return n, fmt.Errorf("cache: invalidate %q: scan: %w", pattern, err)
			}
			// SCAN's COUNT is a hint: a batch may hold a few more keys.
			for batch := range slices.Chunk(keys, scanCount) {
				if err := c.rdb.Unlink(ctx, batch...).Err(); err != nil {
					return n, fmt.Errorf("cache: invalidate %q: unlink: %w", pattern, err)
				}
				n += len(batch)
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		if err := c.rdb.Publish(ctx, c.chann, c.msg('p', pattern)).Err(); err != nil {
			c.evictPattern(pattern)
			return n, fmt.Errorf("cache: invalidate %q: publish: %w", pattern, errors.Join(ErrRedis, err))
		}
	}
	c.evictPattern(pattern)
	return n, nil
}

// InvalidateAll drops every value of this cache's namespace at once, in
// every process, in O(1): it increments the generation number that is part
// of every Redis key, so old keys are never read again (they expire by
// their TTL), and flushes every L1.
func (c *Cache[V]) InvalidateAll(ctx context.Context) error {
	if c.rdb != nil {
		rctx, cancel := c.rctx(ctx)
		g, err := genScript.Run(rctx, c.rdb, []string{c.genKey()}, c.chann, c.id).Int64()
		cancel()
		if err != nil {
			c.flushL1()
			return fmt.Errorf("cache: invalidate all: %w", errors.Join(ErrRedis, err))
		}
		c.gen.Store(g)
	}
	c.flushL1()
	return nil
}

func (c *Cache[V]) evictPattern(pattern string) {
	c.epoch.Add(1) // fills in flight of any key may match: void them all
	if c.l1 == nil {
		return
	}
	var drop []string
	for k := range c.l1.Keys() {
		if globMatch(pattern, k) {
			drop = append(drop, k)
		}
	}
	for _, k := range drop {
		c.l1.Invalidate(k)
	}
}

// globMatch is Redis's stringmatchlen: * ? [set] [^set] [a-z] and \ escapes.
func globMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			s = s[1:]
			p = p[1:]
		case '[':
			if len(s) == 0 {
				return false
			}
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for len(p) > 0 && p[0] != ']' {
				switch {
				case p[0] == '\\' && len(p) >= 2:
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
					p = p[1:]
				case len(p) >= 3 && p[1] == '-':
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					if s[0] >= lo && s[0] <= hi {
						match = true
					}
					p = p[3:]
				default:
					if p[0] == s[0] {
						match = true
					}
					p = p[1:]
				}
			}
			if len(p) > 0 {
				p = p[1:] // ']'
			}
			if match == not {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || p[0] != s[0] {
				return false
			}
			s = s[1:]
			p = p[1:]
		}
	}
	return len(s) == 0
}
