package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps sessions in Redis, one hash per session:
//
//	PREFIX + id          hash  m:created, m:deadline, m:user (Unix ms; user id)
//	                           v:KEY → encoded value, one field per session key
//	PREFIX + "user:" + u set   the ids of user u's sessions
//
// The hash's TTL is its deadline (PEXPIRE), so Redis drops dead sessions by
// itself; the m:deadline field is the same instant on the Manager's clock,
// which decides (Redis's clock and the app's need not agree). A touch is
// one HSET of m:deadline and a PEXPIRE, never a rewrite of the values.
// Every write is a Lua script, so its liveness check and its changes are
// one atomic step: Save writes only the fields it changes (HSET/HDEL), which
// is the per-key merge of concurrent requests (see the package doc).
//
// The scripts reach a session and its user's index together, so the store
// needs one Redis (a primary with replicas or Sentinel is fine), not Redis
// Cluster. It is safe for concurrent use.
type RedisStore struct {
	client redis.UniversalClient
	prefix string
}

// RedisOptions configure a RedisStore.
type RedisOptions struct {
	// Prefix starts every key of the store. Empty means "session:".
	Prefix string
}

// NewRedisStore returns a store on client. The client's own options
// (timeouts, pool) apply to every call.
func NewRedisStore(client redis.UniversalClient, opts RedisOptions) *RedisStore {
	if opts.Prefix == "" {
		opts.Prefix = "session:"
	}
	return &RedisStore{client: client, prefix: opts.Prefix}
}

// Interface guard.
var _ Store = (*RedisStore)(nil)

func (s *RedisStore) key(id string) string       { return s.prefix + id }
func (s *RedisStore) userKey(user string) string { return s.prefix + "user:" + user }

// Key returns the Redis key of the session with id (for inspection: TTL).
func (s *RedisStore) Key(id string) string { return s.key(id) }

// Load implements Store.
func (s *RedisStore) Load(ctx context.Context, id string, now time.Time) (Record, error) {
	h, err := s.client.HGetAll(ctx, s.key(id)).Result()
	if err != nil {
		return Record{}, err
	}
	d, err := strconv.ParseInt(h["m:deadline"], 10, 64)
	if err != nil || d <= ms(now) {
		return Record{}, ErrNotFound
	}
	c, _ := strconv.ParseInt(h["m:created"], 10, 64)
	rec := Record{UserID: h["m:user"], Created: time.UnixMilli(c), Deadline: time.UnixMilli(d), Values: make(map[string][]byte, len(h))}
	for f, v := range h {
		if k, ok := strings.CutPrefix(f, "v:"); ok {
			rec.Values[k] = []byte(v)
		}
	}
	return rec, nil
}

// saveScript applies a Change. KEYS[1] the session. ARGV: prefix, id, now,
// new (1/0), created, deadline ("" keeps it), ttl ms, user set (1/0), user,
// number of keys set, then that many key/value pairs, then keys to delete.
var saveScript = redis.NewScript(`
local key, prefix, id, now = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
if ARGV[4] == '1' then
  if redis.call('EXISTS', key) == 1 then return redis.error_reply('session: id exists') end
  redis.call('HSET', key, 'm:created', ARGV[5], 'm:user', '')
else
  local d = redis.call('HGET', key, 'm:deadline')
  if not d or tonumber(d) <= now then return 0 end
end
if ARGV[6] ~= '' then
  redis.call('HSET', key, 'm:deadline', ARGV[6])
  redis.call('PEXPIRE', key, ARGV[7])
end
local user = redis.call('HGET', key, 'm:user') or ''
if ARGV[8] == '1' and ARGV[9] ~= user then
  if user ~= '' then redis.call('SREM', prefix .. 'user:' .. user, id) end
  user = ARGV[9]
  redis.call('HSET', key, 'm:user', user)
end
local n, i = tonumber(ARGV[10]), 11
for _ = 1, n do
  redis.call('HSET', key, 'v:' .. ARGV[i], ARGV[i + 1])
  i = i + 2
end
for j = i, #ARGV do redis.call('HDEL', key, 'v:' .. ARGV[j]) end
if user ~= '' then
  local idx = prefix .. 'user:' .. user
  redis.call('SADD', idx, id)
  local ttl = redis.call('PTTL', key)
  if redis.call('PTTL', idx) < ttl then redis.call('PEXPIRE', idx, ttl) end
end
return 1
`)

// Save implements Store.
func (s *RedisStore) Save(ctx context.Context, id string, c Change) error {
	args := make([]any, 0, 10+2*len(c.Set)+len(c.Delete))
	deadline, ttl := "", int64(0)
	if !c.Deadline.IsZero() {
		ttl = ms(c.Deadline) - ms(c.Now)
		if ttl <= 0 {
			return fmt.Errorf("session: Save with a deadline %v not after now %v", c.Deadline, c.Now)
		}
		deadline = strconv.FormatInt(ms(c.Deadline), 10)
	}
	userSet, user := "0", ""
	if c.User != nil {
		userSet, user = "1", *c.User
	}
	args = append(args, s.prefix, id, ms(c.Now), b01(c.New), ms(c.Created), deadline, ttl, userSet, user, len(c.Set))
	for k, v := range c.Set {
		args = append(args, k, v)
	}
	for _, k := range c.Delete {
		args = append(args, k)
	}
	n, err := saveScript.Run(ctx, s.client, []string{s.key(id)}, args...).Int()
	if err != nil {
		return s.scriptErr(err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *RedisStore) scriptErr(err error) error {
	if err != nil && strings.Contains(err.Error(), errIDExists.Error()) {
		return errIDExists
	}
	return err
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// renewScript: KEYS old, new; ARGV prefix, old id, new id, now. RENAME keeps
// the TTL and the values; the user's index follows.
var renewScript = redis.NewScript(`
local d = redis.call('HGET', KEYS[1], 'm:deadline')
if not d or tonumber(d) <= tonumber(ARGV[4]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('session: id exists') end
redis.call('RENAME', KEYS[1], KEYS[2])
local user = redis.call('HGET', KEYS[2], 'm:user')
if user and user ~= '' then
  local idx = ARGV[1] .. 'user:' .. user
  redis.call('SREM', idx, ARGV[2])
  redis.call('SADD', idx, ARGV[3])
end
return 1
`)

// Renew implements Store.
func (s *RedisStore) Renew(ctx context.Context, oldID, newID string, now time.Time) error {
	n, err := renewScript.Run(ctx, s.client, []string{s.key(oldID), s.key(newID)}, s.prefix, oldID, newID, ms(now)).Int()
	if err != nil {
		return s.scriptErr(err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// destroyScript: KEYS the session; ARGV prefix, id.
var destroyScript = redis.NewScript(`
local user = redis.call('HGET', KEYS[1], 'm:user')
redis.call('UNLINK', KEYS[1])
if user and user ~= '' then redis.call('SREM', ARGV[1] .. 'user:' .. user, ARGV[2]) end
return 1
`)

// Destroy implements Store.
func (s *RedisStore) Destroy(ctx context.Context, id string) error {
	return destroyScript.Run(ctx, s.client, []string{s.key(id)}, s.prefix, id).Err()
}

// destroyUserScript: KEYS the user's index; ARGV prefix. One step, so a
// session created meanwhile is either destroyed or indexed after.
var destroyUserScript = redis.NewScript(`
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('UNLINK', ARGV[1] .. id)
end
redis.call('UNLINK', KEYS[1])
return n
`)

// DestroyUser implements Store.
func (s *RedisStore) DestroyUser(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, errors.New("session: DestroyUser of an empty user id")
	}
	return destroyUserScript.Run(ctx, s.client, []string{s.userKey(userID)}, s.prefix).Int()
}
