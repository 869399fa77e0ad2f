// Package health runs active health checks: it probes each backend of a
// pool over HTTP on an interval and tells the pool when one turns unhealthy
// (Fails probes in a row fail) or healthy again (Passes in a row pass).
// Passive health (connect errors in live traffic) lives in package balance.
package health

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/herdhq/herd/internal/balance"
)

// Check configures a checker. Zero fields take the defaults in brackets.
type Check struct {
	Path     string        // probed with GET; required
	Interval time.Duration // [5s]
	Timeout  time.Duration // [2s]
	Status   int           // expected status; 0: any 2xx
	Passes   int           // [1]
	Fails    int           // [2]
}

// Run probes every backend of pool until ctx ends. It returns once its
// probes have stopped.
func Run(ctx context.Context, pool *balance.Pool, c Check, log *slog.Logger) {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	c.Passes, c.Fails = max(c.Passes, 1), max(c.Fails, 1)
	client := &http.Client{
		Timeout:   c.Timeout,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	streak := map[*balance.Backend]int{} // >0 passes in a row, <0 fails
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		var mu sync.Mutex
		var wg sync.WaitGroup
		backends := pool.Backends()
		// Pools change (registered services come and go): forget the
		// streaks of backends that left.
		for b := range streak {
			if !slices.Contains(backends, b) {
				delete(streak, b)
			}
		}
		for _, b := range backends {
			wg.Go(func() {
				ok := probe(ctx, client, "http://"+b.Addr+c.Path, c.Status)
				b.Checked(time.Now())
				mu.Lock()
				defer mu.Unlock()
				n := streak[b]
				switch {
				case ok && n >= 0:
					n++
				case ok:
					n = 1
				case n <= 0:
					n--
				default:
					n = -1
				}
				streak[b] = n
				if n >= c.Passes && !b.Healthy() {
					log.Info("health check passes again", "upstream", pool.Name, "server", b.Addr)
					pool.SetHealthy(b, true)
				} else if -n >= c.Fails && b.Healthy() {
					log.Warn("health check fails; server out of service", "upstream", pool.Name, "server", b.Addr, "path", c.Path)
					pool.SetHealthy(b, false)
				}
			})
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func probe(ctx context.Context, client *http.Client, url string, want int) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "herd-health-check")
	res, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
	res.Body.Close()
	if want != 0 {
		return res.StatusCode == want
	}
	return res.StatusCode >= 200 && res.StatusCode < 300
}
