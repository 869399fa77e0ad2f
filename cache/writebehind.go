package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// QueueOptions configure a write-behind Queue. Zero fields take the default
// written beside them.
type QueueOptions struct {
	// Stream is the Redis Stream of pending writes. Required.
	Stream string
	// Group is the consumer group. Default "writers".
	Group string
	// Consumer names this consumer in the group; a restarted process that
	// keeps its name takes its own pending entries back at once. Default
	// hostname-pid.
	Consumer string
	// Apply writes one entry to the store. It must be idempotent by id (the
	// stream entry id, unique and stable across redeliveries): an entry is
	// acknowledged only after Apply returned nil, so one applied just before
	// its consumer died is applied again by another.
	Apply func(ctx context.Context, id, key string, payload []byte) error
	// Batch is how many entries one read takes. Default 100.
	Batch int
	// Block is how long one read waits for new entries. Default 1 s.
	Block time.Duration
	// ClaimIdle is how long an entry stays unacknowledged in another
	// consumer's hands (or after a failed Apply) before this one claims it
	// with XAUTOCLAIM. Default 30 s.
	ClaimIdle time.Duration
	// MaxTries is how many deliveries an entry gets; after that it goes to
	// the dead-letter stream and is acknowledged. Default 5.
	MaxTries int
	// DeadLetter is the dead-letter stream. Default Stream + ":dead".
	DeadLetter string
	// Logger: apply failures and dead letters. Default slog.Default().
	Logger *slog.Logger
}

// Queue is a write-behind queue on a Redis Stream with a consumer group:
// producers Enqueue (XADD), consumers Run (XREADGROUP, XACK after Apply
// succeeded, XAUTOCLAIM of entries a dead consumer left). Unlike the seed's
// list (LPUSH/BRPOP), an entry in flight when a consumer dies is not lost. It
// is safe for concurrent use.
type Queue struct {
	rdb redis.UniversalClient
	o   QueueOptions
}

// NewQueue makes a queue on rdb.
func NewQueue(rdb redis.UniversalClient, o QueueOptions) (*Queue, error) {
	var errs []error
	if rdb == nil {
		errs = append(errs, errors.New("cache: queue: nil redis client"))
	}
	if o.Stream == "" {
		errs = append(errs, errors.New("cache: queue: Stream is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Group == "" {
		o.Group = "writers"
	}
	if o.Consumer == "" {
		h, _ := os.Hostname()
		o.Consumer = h + "-" + strconv.Itoa(os.Getpid())
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Block <= 0 {
		o.Block = time.Second
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = 30 * time.Second
	}
	if o.MaxTries <= 0 {
		o.MaxTries = 5
	}
	if o.DeadLetter == "" {
		o.DeadLetter = o.Stream + ":dead"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Queue{rdb: rdb, o: o}, nil
}

// Enqueue appends a write of payload under key and returns its entry id.
func (q *Queue) Enqueue(ctx context.Context, key string, payload []byte) (string, error) {
	id, err := q.rdb.XAdd(ctx, &redis.XAddArgs{Stream: q.o.Stream, Values: []any{"k", key, "p", payload}}).Result()
	if err != nil {
		return "", fmt.Errorf("cache: enqueue %q: %w", key, err)
	}
	return id, nil
}

// WriteBehind stores v in the cache (Set) and queues it for the store on q;
// q's Apply gets the codec's bytes of v. The write to the store happens
// later, once, even if a consumer dies.
func (c *Cache[V]) WriteBehind(ctx context.Context, q *Queue, key string, v V, opts ...Option) error {
	b, err := c.o.Codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache: write-behind %q: encode: %w", key, err)
	}
	if err := c.Set(ctx, key, v, opts...); err != nil {
		return err
	}
	_, err = q.Enqueue(ctx, key, b)
	return err
}

// Run consumes the queue until ctx ends (then it returns nil). It creates
// the group if needed, first takes back this consumer's own pending entries,
// then alternates between claiming entries idle longer than ClaimIdle and
// reading new ones. Errors from Redis are retried after a pause.
func (q *Queue) Run(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.o.Stream, q.o.Group, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("cache: queue %s: create group: %w", q.o.Stream, err)
	}
	own := true // "0": my pending entries, then ">": new ones
	for ctx.Err() == nil {
		if err := q.claim(ctx); err != nil && ctx.Err() == nil {
			q.pause(ctx, err)
			continue
		}
		id := ">"
		if own {
			id = "0"
		}
		res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: q.o.Group, Consumer: q.o.Consumer,
			Streams: []string{q.o.Stream, id}, Count: int64(q.o.Batch), Block: q.o.Block}).Result()
		if errors.Is(err, redis.Nil) {
			own = false
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				q.pause(ctx, err)
			}
			continue
		}
		var msgs []redis.XMessage
		for _, s := range res {
			msgs = append(msgs, s.Messages...)
		}
		if own && len(msgs) == 0 {
			own = false
			continue
		}
		q.process(ctx, msgs, own)
	}
	return nil
}

func (q *Queue) pause(ctx context.Context, err error) {
	q.o.Logger.Warn("cache: queue: redis", "stream", q.o.Stream, "err", err)
	t := time.NewTimer(100 * time.Millisecond)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
}

// claim takes over entries idle past ClaimIdle, from dead consumers or from
// failed applies.
func (q *Queue) claim(ctx context.Context) error {
	start := "0-0"
	for {
		msgs, next, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: q.o.Stream, Group: q.o.Group,
			Consumer: q.o.Consumer, MinIdle: q.o.ClaimIdle, Start: start, Count: int64(q.o.Batch)}).Result()
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			q.process(ctx, msgs, true)
		}
		if next == "0-0" || next == "" || len(msgs) == 0 {
			return nil
		}
		start = next
	}
}

// process applies a batch and acknowledges the entries that succeeded in
// one XACK. Redelivered entries past MaxTries go to the dead-letter stream.
func (q *Queue) process(ctx context.Context, msgs []redis.XMessage, redelivered bool) {
	tries := map[string]int64{}
	if redelivered && len(msgs) > 0 {
		p, err := q.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: q.o.Stream, Group: q.o.Group,
			Start: msgs[0].ID, End: msgs[len(msgs)-1].ID, Count: int64(len(msgs)) * 2}).Result()
		if err == nil {
			for _, e := range p {
				tries[e.ID] = e.RetryCount
			}
		}
	}
	var ack []string
	for _, m := range msgs {
		key, _ := m.Values["k"].(string)
		payload, _ := m.Values["p"].(string)
		if n := tries[m.ID]; n > int64(q.o.MaxTries) {
			err := q.rdb.XAdd(ctx, &redis.XAddArgs{Stream: q.o.DeadLetter,
				Values: []any{"k", key, "p", payload, "id", m.ID, "tries", n - 1}}).Err()
			if err == nil {
				q.o.Logger.Warn("cache: queue: dead letter", "stream", q.o.Stream, "id", m.ID, "key", key, "tries", n-1)
				ack = append(ack, m.ID)
			}
			continue
		}
		if _, ok := m.Values["k"]; !ok { // deleted entry (XAUTOCLAIM of a trimmed id)
			ack = append(ack, m.ID)
			continue
		}
		if err := q.o.Apply(ctx, m.ID, key, []byte(payload)); err != nil {
			q.o.Logger.Warn("cache: queue: apply failed; retried after ClaimIdle", "stream", q.o.Stream, "id", m.ID, "key", key, "err", err)
			continue
		}
		ack = append(ack, m.ID)
	}
	if len(ack) > 0 {
		if err := q.rdb.XAck(ctx, q.o.Stream, q.o.Group, ack...).Err(); err != nil {
			q.o.Logger.Warn("cache: queue: ack failed; the entries will be applied again", "stream", q.o.Stream, "err", err)
		}
	}
}
