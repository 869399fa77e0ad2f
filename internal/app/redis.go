package app

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// dialRedis connects to the Redis at url, with dialTimeout to connect and
// ioTimeout on each read and write, and checks that it answers.
func dialRedis(ctx context.Context, url string, dialTimeout, ioTimeout time.Duration) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url %q: %w; fix the URL", url, err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("connecting to redis at %s: %w; start Redis or fix the URL", opts.Addr, err)
	}
	return c, nil
}

// quietRedis drops go-redis's own log lines: every failure it logs also
// comes back as an error, which herd reports once, in its own words.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }
