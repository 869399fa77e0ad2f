package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps registrations until they expire. Implementations are safe for
// concurrent use.
type Store interface {
	// Put saves in until in.Expires, replacing an earlier one of the same
	// service and id.
	Put(ctx context.Context, in Instance) error
	// Delete removes one registration; it reports whether there was one.
	Delete(ctx context.Context, service, id string) (bool, error)
	// List returns every registration that has not expired.
	List(ctx context.Context) ([]Instance, error)
	// Changes, if not nil, signals when another node changed the store, so
	// that it is read again sooner than the next poll.
	Changes(ctx context.Context) <-chan struct{}
	Close() error
}

// memoryStore is one herd node's registry.
type memoryStore struct {
	mu        sync.Mutex
	instances map[string]Instance // by service + "/" + id
}

// NewMemoryStore returns a Store that lives in this process only.
func NewMemoryStore() Store { return &memoryStore{instances: map[string]Instance{}} }

func (m *memoryStore) Put(_ context.Context, in Instance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.instances[in.Service+"/"+in.ID] = in
	return nil
}

func (m *memoryStore) Delete(_ context.Context, service, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := service + "/" + id
	in, ok := m.instances[key]
	delete(m.instances, key)
	return ok && in.Expires.After(time.Now()), nil
}

func (m *memoryStore) List(context.Context) ([]Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	out := make([]Instance, 0, len(m.instances))
	for key, in := range m.instances {
		if !in.Expires.After(now) {
			delete(m.instances, key)
			continue
		}
		out = append(out, in)
	}
	return out, nil
}

func (m *memoryStore) Changes(context.Context) <-chan struct{} { return nil }
func (m *memoryStore) Close() error                            { return nil }

// redisStore keeps each registration in its own key with a TTL, so an
// instance that stops heartbeating disappears on every node at once, and
// announces changes on a channel so other nodes need not wait for a poll.
type redisStore struct {
	rdb    *redis.Client
	prefix string // keys are PREFIX + "svc:" + service + ":" + id
}

// NewRedisStore keeps the registry in the Redis rdb; keys start with
// prefix (default "herd:"). The caller connects rdb and closes it with the
// store.
func NewRedisStore(rdb *redis.Client, prefix string) Store {
	if prefix == "" {
		prefix = "herd:"
	}
	return &redisStore{rdb: rdb, prefix: prefix}
}

func (s *redisStore) key(service, id string) string {
	return s.prefix + "svc:" + service + ":" + id
}

func (s *redisStore) channel() string { return s.prefix + "registry-changes" }

func (s *redisStore) Put(ctx context.Context, in Instance) error {
	ttl := time.Until(in.Expires)
	if ttl < time.Millisecond {
		return nil // already expired
	}
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	// GET returns the value replaced: none means a new instance, which the
	// other nodes hear of at once; a heartbeat is not announced.
	err = s.rdb.SetArgs(ctx, s.key(in.Service, in.ID), data, redis.SetArgs{TTL: ttl, Get: true}).Err()
	if errors.Is(err, redis.Nil) {
		s.announce(ctx)
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: saving %s/%s in redis: %w", in.Service, in.ID, err)
	}
	return nil
}

// announce tells the other nodes to read the store now. A lost message
// costs only the wait for their next poll.
func (s *redisStore) announce(ctx context.Context) {
	s.rdb.Publish(ctx, s.channel(), "1")
}

func (s *redisStore) Delete(ctx context.Context, service, id string) (bool, error) {
	n, err := s.rdb.Unlink(ctx, s.key(service, id)).Result()
	if err != nil {
		return false, fmt.Errorf("registry: removing %s/%s from redis: %w", service, id, err)
	}
	s.announce(ctx)
	return n > 0, nil
}

// List walks the keys with SCAN (never KEYS, which blocks Redis) and reads
// them in batches with MGET.
func (s *redisStore) List(ctx context.Context) ([]Instance, error) {
	var out []Instance
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, s.prefix+"svc:*", 500).Result()
		if err != nil {
			return nil, fmt.Errorf("registry: listing redis keys: %w", err)
		}
		if len(keys) > 0 {
			vals, err := s.rdb.MGet(ctx, keys...).Result()
			if err != nil {
				return nil, fmt.Errorf("registry: reading redis keys: %w", err)
			}
			for _, v := range vals {
				str, ok := v.(string)
				if !ok {
					continue // expired between SCAN and MGET
				}
				var in Instance
				if json.Unmarshal([]byte(str), &in) == nil {
					out = append(out, in)
				}
			}
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

func (s *redisStore) Changes(ctx context.Context) <-chan struct{} {
	sub := s.rdb.Subscribe(ctx, s.channel())
	out := make(chan struct{}, 1)
	go func() {
		defer sub.Close()
		msgs := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default: // a read is already due
				}
			}
		}
	}()
	return out
}

func (s *redisStore) Close() error { return s.rdb.Close() }
