package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/herdhq/herd/internal/logbuf"
	"github.com/herdhq/herd/internal/supervisor"
)

// GET /api/events is a text/event-stream (Server-Sent Events) of what the
// page shows. It opens with
//
//	event: hello    {pid, started, token_required, logs, interval_ms, history_len}
//	event: history  [point, ...]      the ring: the last minutes of the charts
//	event: status   {now, apps}       every instance, as /status has them
//	event: logs     [line, ...]       the last tailLines lines of each app
//
// and then sends a sample and a status about once a second and the new log
// lines as they come (batched every logBatch). Log lines are instance
// output, which may hold what /status does not show: with admin_auth's
// token they are sent only to a request that carries it (the page sends it
// with fetch, which EventSource cannot), and a wrong token is a 401. The
// stream ends when the client leaves or herd stops.

const (
	tailLines = 200
	logBatch  = 250 * time.Millisecond
	// writeTimeout bounds each write, so a client that stopped reading
	// cannot hold a stream (and its goroutines) forever.
	writeTimeout = 10 * time.Second
)

type helloEvent struct {
	Pid           int       `json:"pid"`
	Started       time.Time `json:"started"`
	TokenRequired bool      `json:"token_required"`
	// Logs says whether this stream carries log lines.
	Logs       bool  `json:"logs"`
	IntervalMS int64 `json:"interval_ms"`
	HistoryLen int   `json:"history_len"`
}

type statusEvent struct {
	Now  time.Time              `json:"now"`
	Apps []supervisor.AppStatus `json:"apps"`
}

func (d *dashboard) events(w http.ResponseWriter, r *http.Request) {
	token := d.opts.Token
	logs := d.opts.Logs != nil
	if token != "" {
		switch {
		case r.Header.Get("Authorization") == "":
			logs = false // status and charts stay as open as /status and /metrics
		case !tokenOK(token, r):
			unauthorized(w)
			return
		}
	}

	// The stream ends with the client or with herd, and waits for the
	// goroutine that follows the logs before it returns.
	ctx, cancel := context.WithCancel(r.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	stop := context.AfterFunc(d.life, cancel)
	defer stop()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not buffer it
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("admin: encoding the %s event: %w", event, err)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return err
		}
		return rc.Flush()
	}

	lines := make(chan logbuf.Line, 1024)
	if logs {
		// Following starts before the tail is read, so no line falls
		// between them; the page drops the few it gets twice by seq.
		wg.Go(func() {
			_ = d.opts.Logs.Follow(ctx, "", func(l logbuf.Line) error {
				select {
				case lines <- l:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		})
	}

	points, tick := d.hist.snapshot()
	var last int64
	if len(points) > 0 {
		last = points[len(points)-1].T
	}
	if points == nil {
		points = []point{}
	}
	err := send("hello", helloEvent{Pid: os.Getpid(), Started: d.started, TokenRequired: token != "", Logs: logs,
		IntervalMS: d.interval.Milliseconds(), HistoryLen: historyLen})
	if err == nil {
		err = send("history", points)
	}
	if err == nil {
		err = send("status", d.status())
	}
	if err == nil && logs {
		err = send("logs", d.tail())
	}
	if err != nil {
		return
	}

	// Without a sampler (no Options.Context) status still ticks.
	var fallback <-chan time.Time
	if !d.sampling {
		t := time.NewTicker(d.interval)
		defer t.Stop()
		fallback = t.C
		tick = nil
	}
	var pending []logbuf.Line
	var flush <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			var fresh []point
			fresh, tick = d.hist.since(last)
			for _, p := range fresh {
				if err := send("sample", p); err != nil {
					return
				}
				last = p.T
			}
			if err := send("status", d.status()); err != nil {
				return
			}
		case <-fallback:
			if err := send("status", d.status()); err != nil {
				return
			}
		case l := <-lines:
			pending = append(pending, l)
			if flush == nil {
				flush = time.After(logBatch)
			}
		case <-flush:
			flush = nil
			if err := send("logs", pending); err != nil {
				return
			}
			pending = pending[:0]
		}
	}
}

func (d *dashboard) status() statusEvent {
	var apps []supervisor.AppStatus
	if d.opts.Status != nil {
		apps = d.opts.Status()
	}
	if apps == nil {
		apps = []supervisor.AppStatus{}
	}
	return statusEvent{Now: time.Now(), Apps: apps}
}

// tail is the last tailLines lines of each app, merged in order: one
// chatty app does not push the others' lines out.
func (d *dashboard) tail() []logbuf.Line {
	out := []logbuf.Line{}
	seen := map[string]bool{}
	var apps []string
	if d.opts.Status != nil {
		for _, a := range d.opts.Status() {
			apps = append(apps, a.Name)
		}
	}
	for _, app := range apps {
		if !seen[app] {
			seen[app] = true
			out = append(out, d.opts.Logs.Tail(app, tailLines)...)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}
