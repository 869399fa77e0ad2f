// Package logbuf passes instance output through to herd's stdout and keeps
// the last lines of each app in memory, for `herd logs` and `herd logs -f`.
// Writers never block on a slow follower: a follower that falls behind
// misses lines and is told how many.
package logbuf

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Line is one line of output. Text keeps the "app[i] " prefix and has no
// trailing newline.
type Line struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	App  string    `json:"app"`
	Text string    `json:"text"`
}

// Buffer is safe for concurrent use. The zero value is not usable; call New.
type Buffer struct {
	out  io.Writer
	keep int

	mu    sync.Mutex
	seq   uint64
	rings map[string]*ring
	subs  map[*follower]struct{}
	files *files // nil until EnableFiles
}

type ring struct {
	lines []Line
	next  int // where the next line goes once full
}

type follower struct {
	app    string
	ch     chan Line
	missed int
}

// New returns a Buffer writing through to out (nil: nowhere) and keeping the
// last keep lines of each app.
func New(out io.Writer, keep int) *Buffer {
	return &Buffer{out: out, keep: max(keep, 1), rings: map[string]*ring{}, subs: map[*follower]struct{}{}}
}

// Writer returns the writer for the output of instance index of app; each
// Write must be one whole line starting with the "app[i] " prefix, as proc's
// line copier makes them.
func (b *Buffer) Writer(app string, index int) io.Writer {
	return appWriter{b: b, app: app, index: index, prefix: fmt.Sprintf("%s[%d] ", app, index)}
}

type appWriter struct {
	b      *Buffer
	app    string
	index  int
	prefix string
}

func (w appWriter) Write(p []byte) (int, error) {
	text := string(p)
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
	}
	w.b.add(w.app, text)
	w.b.mu.Lock()
	f := w.b.files
	w.b.mu.Unlock()
	if f != nil {
		f.write(w.app, w.index, text, strings.TrimPrefix(text, w.prefix), time.Now())
	}
	if w.b.out != nil {
		w.b.mu.Lock()
		defer w.b.mu.Unlock()
		return w.b.out.Write(p)
	}
	return len(p), nil
}

func (b *Buffer) add(app, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	l := Line{Seq: b.seq, Time: time.Now(), App: app, Text: text}
	r := b.rings[app]
	if r == nil {
		r = &ring{}
		b.rings[app] = r
	}
	if len(r.lines) < b.keep {
		r.lines = append(r.lines, l)
	} else {
		r.lines[r.next] = l
		r.next = (r.next + 1) % b.keep
	}
	for f := range b.subs {
		if f.app != "" && f.app != app {
			continue
		}
		select {
		case f.ch <- l:
		default:
			f.missed++
		}
	}
}

// Tail returns the last n lines of app, or of every app merged in order
// when app is "".
func (b *Buffer) Tail(app string, n int) []Line {
	b.mu.Lock()
	var all []Line
	for name, r := range b.rings {
		if app == "" || name == app {
			all = append(all, r.lines...)
		}
	}
	b.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	if n >= 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// Follow calls fn with each new line of app (every app when "") until ctx
// ends or fn returns an error. If the follower fell behind, fn first gets a
// line saying how many lines it missed.
func (b *Buffer) Follow(ctx context.Context, app string, fn func(Line) error) error {
	f := &follower{app: app, ch: make(chan Line, 1024)}
	b.mu.Lock()
	b.subs[f] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, f)
		b.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-f.ch:
			b.mu.Lock()
			missed := f.missed
			f.missed = 0
			b.mu.Unlock()
			if missed > 0 {
				if err := fn(Line{Time: time.Now(), App: app, Text: fmt.Sprintf("herd: %d lines skipped (follower too slow)", missed)}); err != nil {
					return err
				}
			}
			if err := fn(l); err != nil {
				return err
			}
		}
	}
}
