package logbuf

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// FileOptions say where log files go and how much of them is kept.
type FileOptions struct {
	Dir      string
	MaxSize  int64         // bytes; a file is rotated when it reaches this
	MaxFiles int           // rotated files kept per log
	MaxAge   time.Duration // rotated files older than this are removed
}

// AppFiles is how one app's output is written to files.
type AppFiles struct {
	Merge      bool   // one file for all instances (app.log), not app-INDEX.log
	DateFormat string // Go layout or PM2's moment format; "" for no timestamp
	JSON       bool   // one JSON object per line
}

// files holds the open log files; each rotates by size (lumberjack) and
// at midnight.
type files struct {
	opts FileOptions
	apps map[string]AppFiles

	mu   sync.Mutex
	open map[string]*lumberjack.Logger // by file name
	stop chan struct{}
	done chan struct{}
}

// EnableFiles makes every later line also go to a file under opts.Dir,
// rotated by size and daily, with bounded retention.
func (b *Buffer) EnableFiles(opts FileOptions, apps map[string]AppFiles) error {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("logbuf: creating log folder: %w", err)
	}
	for name, a := range apps {
		a.DateFormat = GoLayout(a.DateFormat)
		apps[name] = a
	}
	f := &files{opts: opts, apps: apps, open: map[string]*lumberjack.Logger{}, stop: make(chan struct{}), done: make(chan struct{})}
	go f.rotateDaily()
	b.mu.Lock()
	b.files = f
	b.mu.Unlock()
	return nil
}

// Close closes the log files. The Buffer keeps working without them.
func (b *Buffer) Close() error {
	b.mu.Lock()
	f := b.files
	b.files = nil
	b.mu.Unlock()
	if f == nil {
		return nil
	}
	close(f.stop)
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	var first error
	for _, l := range f.open {
		if err := l.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// write appends one line (text without the app[i] prefix) to its file.
func (f *files) write(app string, index int, prefixed, text string, now time.Time) {
	cfg := f.apps[app]
	name := fmt.Sprintf("%s-%d.log", app, index)
	line := text
	if cfg.Merge {
		name, line = app+".log", prefixed
	}
	var out []byte
	if cfg.JSON {
		out, _ = json.Marshal(struct {
			Time     time.Time `json:"time"`
			App      string    `json:"app"`
			Instance int       `json:"instance"`
			Message  string    `json:"message"`
		}{now, app, index, text})
	} else if cfg.DateFormat != "" {
		out = []byte(now.Format(cfg.DateFormat) + ": " + line)
	} else {
		out = []byte(line)
	}
	out = append(out, '\n')
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.open[name]
	if l == nil {
		l = &lumberjack.Logger{
			Filename:   filepath.Join(f.opts.Dir, name),
			MaxSize:    int((f.opts.MaxSize + 1<<20 - 1) >> 20), // lumberjack counts megabytes
			MaxBackups: f.opts.MaxFiles,
			MaxAge:     int((f.opts.MaxAge + 24*time.Hour - 1) / (24 * time.Hour)),
		}
		f.open[name] = l
	}
	_, _ = l.Write(out) // a full disk must not stop the instance; the line still reached stdout
}

// rotateDaily rotates every open file at each local midnight.
func (f *files) rotateDaily() {
	defer close(f.done)
	for {
		now := time.Now()
		next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, now.Location())
		t := time.NewTimer(next.Sub(now))
		select {
		case <-f.stop:
			t.Stop()
			return
		case <-t.C:
		}
		f.mu.Lock()
		for _, l := range f.open {
			_ = l.Rotate()
		}
		f.mu.Unlock()
	}
}

// GoLayout turns PM2's moment.js date format (YYYY-MM-DD HH:mm:ss Z) into a
// Go layout; a Go layout is returned as it is.
func GoLayout(format string) string {
	if !strings.Contains(format, "YY") && !strings.Contains(format, "HH") && !strings.Contains(format, "mm") {
		return format
	}
	r := strings.NewReplacer(
		"YYYY", "2006", "YY", "06", "MM", "01", "DD", "02", "HH", "15", "hh", "03",
		"mm", "04", "ss", "05", "SSS", "000", "A", "PM", "ZZ", "-0700", "Z", "-07:00",
	)
	return r.Replace(format)
}

var _ io.Writer = appWriter{}
