package limits

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Limiter is a limit_req store: Rate in this process, RedisRate shared by
// every herd node on one Redis.
type Limiter interface {
	// Reserve takes a place for one request of key at now. It returns how
	// long the request must wait first, or ok false when it is over the
	// burst (and retryAfter, how long until it would fit).
	Reserve(ctx context.Context, key string, now time.Time) (wait time.Duration, ok bool, retryAfter time.Duration)
}

// gcra is the generic cell rate algorithm, the token bucket of Rate kept as
// one number per key: the theoretical arrival time (TAT) of the next
// request, in microseconds. A request is accepted if the bucket would let
// it leave within maxwait; it is then delayed until it fits the bucket.
// Refused requests change nothing. The key expires once its bucket is full
// again, so idle keys cost no memory.
var gcra = redis.NewScript(`
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local bucket = tonumber(ARGV[3])
local maxwait = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local newtat = tat + interval
local wait = newtat - bucket * interval - now
if wait < 0 then wait = 0 end
if wait > maxwait then
  return {0, wait - maxwait}
end
redis.call('SET', KEYS[1], newtat, 'PX', math.ceil((newtat - now) / 1000) + 1)
return {1, wait}
`)

// RedisRate is Rate with its state in Redis, so that several herd nodes
// share one limit per key. Each request costs one round trip (a Lua
// script, atomic in Redis). When Redis cannot be reached the request
// passes: a limit that fails closed would turn a Redis outage into an
// outage of every route it guards.
type RedisRate struct {
	rdb      *redis.Client
	prefix   string
	interval int64 // microseconds per request
	bucket   int64
	maxWait  int64 // microseconds
	onError  func(error)
}

// NewRedisRate returns a limit_req of r per second with burst (as NewRate)
// whose keys are prefix+key in rdb. onError, if set, hears of failures
// (the request then passes).
func NewRedisRate(rdb *redis.Client, prefix string, r rate.Limit, burst int, nodelay bool, delay int, onError func(error)) *RedisRate {
	bucket, maxWait := burstShape(r, burst, nodelay, delay)
	return &RedisRate{
		rdb: rdb, prefix: prefix, interval: int64(float64(time.Second/time.Microsecond) / float64(r)),
		bucket: int64(bucket), maxWait: maxWait.Microseconds(), onError: onError,
	}
}

// Reserve implements Limiter.
func (l *RedisRate) Reserve(ctx context.Context, key string, now time.Time) (time.Duration, bool, time.Duration) {
	res, err := gcra.Run(ctx, l.rdb, []string{l.prefix + key}, now.UnixMicro(), l.interval, l.bucket, l.maxWait).Int64Slice()
	if err != nil || len(res) != 2 {
		if l.onError != nil {
			l.onError(fmt.Errorf("rate limit in redis: %w", err))
		}
		return 0, true, 0
	}
	d := time.Duration(res[1]) * time.Microsecond
	if res[0] == 0 {
		return 0, false, d
	}
	return d, true, 0
}
