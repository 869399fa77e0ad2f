package supervisor

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// alwaysIgnored are never watched: dependencies, VCS data and herd's own files.
var alwaysIgnored = []string{"node_modules", ".git", ".herd", "logs"}

// watchDebounce gathers the events of one save (editors write several files).
const watchDebounce = 300 * time.Millisecond

// watch reloads app gracefully whenever a file under its watch paths
// changes, until ctx ends. New folders are watched as they appear.
func (s *Supervisor) watch(ctx context.Context, a *appRunner) {
	cfg := a.config()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Error("watch: cannot start", "app", a.name, "err", err)
		return
	}
	defer w.Close()
	ignored := func(path string) bool {
		rel, err := filepath.Rel(cfg.Cwd, path)
		if err != nil {
			rel = path
		}
		for _, elem := range strings.Split(rel, string(filepath.Separator)) {
			for _, pat := range append(alwaysIgnored, cfg.IgnoreWatch...) {
				if ok, _ := filepath.Match(pat, elem); ok {
					return true
				}
			}
		}
		for _, pat := range cfg.IgnoreWatch {
			if ok, _ := filepath.Match(pat, rel); ok {
				return true
			}
		}
		return false
	}
	addTree := func(root string) {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if path != root && ignored(path) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				_ = w.Add(path)
			}
			return nil
		})
	}
	for _, p := range cfg.Watch {
		if !filepath.IsAbs(p) {
			p = filepath.Join(cfg.Cwd, p)
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			_ = w.Add(p)
			continue
		}
		addTree(p)
	}
	s.log.Info("watching for changes", "app", a.name, "paths", cfg.Watch)

	var fire <-chan time.Time
	var changed string
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-w.Errors:
			s.log.Warn("watch error", "app", a.name, "err", err)
		case ev := <-w.Events:
			if ignored(ev.Name) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					addTree(ev.Name)
				}
			}
			changed = ev.Name
			fire = time.After(watchDebounce)
		case <-fire:
			fire = nil
			s.log.Info("watch: file changed; reloading", "app", a.name, "file", changed)
			if err := s.Reload(ctx, a.name, nil, a.config().Reload.Parallel); err != nil {
				s.log.Error("watch: reload failed; the old instances keep serving", "app", a.name, "err", err)
			}
		}
	}
}
