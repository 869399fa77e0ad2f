package benchcache

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herdhq/herd/cache"
)

// BenchmarkWriteBehind: one producer enqueues b.N writes as fast as it can
// while one consumer applies them (the store is a no-op); reports queued
// writes per second and the lag from Enqueue to Apply.
func BenchmarkWriteBehind(b *testing.B) {
	rdb := redisClient(b)
	var mu sync.Mutex
	var lags []time.Duration
	done := make(chan struct{})
	n := b.N
	q, err := cache.NewQueue(rdb, cache.QueueOptions{Stream: "wb" + strconv.Itoa(b.N), Batch: 500, Block: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		Apply: func(ctx context.Context, id, key string, p []byte) error {
			ns, _ := strconv.ParseInt(string(p), 10, 64)
			mu.Lock()
			lags = append(lags, time.Duration(time.Now().UnixNano()-ns))
			if len(lags) == n {
				close(done)
			}
			mu.Unlock()
			return nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(rctx)
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := q.Enqueue(ctx, "k", []byte(strconv.FormatInt(time.Now().UnixNano(), 10))); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(b.N) / time.Since(t0).Seconds()
	<-done
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(rate, "enqueued/s")
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds()), "p50-lag-µs")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds()), "p99-lag-µs")
}
