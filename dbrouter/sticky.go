package dbrouter

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herdhq/herd/dbrouter/consistency"
)

// StickyStore keeps the last write of each scope (see WithScope), so that
// a read in the scope is never older than it. Implementations are safe for
// concurrent use.
type StickyStore interface {
	// Record keeps t for scope, merged with what it has: the later
	// position per cluster wins, so that an older write recorded late
	// never lowers it.
	Record(ctx context.Context, scope string, t Token) error
	// Load returns what was recorded for scope; the zero Token if nothing
	// or if it expired.
	Load(ctx context.Context, scope string) (Token, error)
}

// MemoryStore is a StickyStore in this process's memory. An entry lives
// TTL after its last Record: long enough for replicas to catch up. The
// zero value is not usable; make one with NewMemoryStore.
type MemoryStore struct {
	ttl time.Duration
	// Now is the clock (time.Now), for tests.
	Now func() time.Time

	mu      sync.Mutex
	m       map[string]memEntry
	records int
}

type memEntry struct {
	t       Token
	expires time.Time
}

// NewMemoryStore returns an empty MemoryStore whose entries live ttl.
func NewMemoryStore(ttl time.Duration) *MemoryStore {
	return &MemoryStore{ttl: ttl, Now: time.Now, m: make(map[string]memEntry)}
}

// Record implements StickyStore.
func (s *MemoryStore) Record(_ context.Context, scope string, t Token) error {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[scope]
	if now.After(e.expires) {
		e.t = Token{}
	}
	s.m[scope] = memEntry{t: e.t.Merge(t), expires: now.Add(s.ttl)}
	// Sweep expired entries now and then, so that the map is bounded by
	// about twice the scopes written in one TTL: every len/2 Records (1,024
	// at least), which amortizes a sweep to O(1) per Record.
	if s.records++; s.records >= max(1024, len(s.m)/2) {
		s.records = 0
		for k, e := range s.m {
			if now.After(e.expires) {
				delete(s.m, k)
			}
		}
	}
	return nil
}

// Load implements StickyStore.
func (s *MemoryStore) Load(_ context.Context, scope string) (Token, error) {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[scope]
	if !ok || now.After(e.expires) {
		return Token{}, nil
	}
	return e.t, nil
}

// Len returns the entries held, expired ones not yet swept included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// RedisStore is a StickyStore in Redis, shared by every process that
// serves the same scopes. Each scope is a hash under Prefix+scope, one
// field per cluster, its LSN as 16 hex digits so that a Lua script can keep
// the greater by comparing strings; the key expires TTL after its last
// Record.
type RedisStore struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRedisStore returns a RedisStore on client whose keys start with
// prefix and live ttl.
func NewRedisStore(client redis.UniversalClient, prefix string, ttl time.Duration) *RedisStore {
	return &RedisStore{client: client, prefix: prefix, ttl: ttl}
}

// keepMax sets each field to the greater of its value and the argument's,
// then renews the key's TTL. ARGV: ttl ms, then field, value pairs.
var keepMax = redis.NewScript(`
for i = 2, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or ARGV[i+1] > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// Record implements StickyStore.
func (s *RedisStore) Record(ctx context.Context, scope string, t Token) error {
	if t.IsZero() {
		return nil
	}
	args := []any{s.ttl.Milliseconds()}
	for _, c := range t.Clusters() {
		args = append(args, strconv.FormatUint(c, 10), fmt.Sprintf("%016x", uint64(t.LSN(c))))
	}
	if err := keepMax.Run(ctx, s.client, []string{s.prefix + scope}, args...).Err(); err != nil {
		return fmt.Errorf("dbrouter: redis store: record %q: %w", scope, err)
	}
	return nil
}

// Load implements StickyStore.
func (s *RedisStore) Load(ctx context.Context, scope string) (Token, error) {
	m, err := s.client.HGetAll(ctx, s.prefix+scope).Result()
	if err != nil {
		return Token{}, fmt.Errorf("dbrouter: redis store: load %q: %w", scope, err)
	}
	var t Token
	for k, v := range m {
		c, err1 := strconv.ParseUint(k, 10, 64)
		l, err2 := strconv.ParseUint(v, 16, 64)
		if err1 != nil || err2 != nil {
			return Token{}, fmt.Errorf("dbrouter: redis store: load %q: bad field %q=%q", scope, k, v)
		}
		t = t.Merge(consistency.NewToken(c, LSN(l)))
	}
	return t, nil
}

// Interface guards.
var (
	_ StickyStore = (*MemoryStore)(nil)
	_ StickyStore = (*RedisStore)(nil)
)
