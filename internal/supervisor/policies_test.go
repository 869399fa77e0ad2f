package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/config"
)

func TestNoRestartPolicies(t *testing.T) {
	off := false
	tests := []struct {
		name   string
		set    func(*config.App)
		reason string
	}{
		{"autorestart false", func(a *config.App) { a.Autorestart = &off }, "autorestart"},
		{"stop_exit_codes", func(a *config.App) { a.StopExitCodes = []int{3} }, "stop_exit_codes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := testApp(t, "exit3", 1)
			tc.set(app)
			s, _, _ := run(t, app, Hooks{})
			waitState(t, s, 0, Ready, 5*time.Second)
			st := waitState(t, s, 0, Stopped, 5*time.Second)
			time.Sleep(300 * time.Millisecond)
			if again := s.Status()[0].Instances[0]; again.State != Stopped || again.Restarts != 0 || st.LastExit != "exit status 3" {
				t.Errorf("after exit 3: %+v; want stopped, not restarted", again)
			}
		})
	}
	// Without a policy, the same exit is restarted.
	s, _, _ := run(t, testApp(t, "exit3", 1), Hooks{})
	waitState(t, s, 0, Ready, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for s.Status()[0].Instances[0].Restarts == 0 {
		if time.Now().After(deadline) {
			t.Fatal("exit 3 without a policy was not restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReplaced waits until slot 0 holds a ready instance other than first.
func waitReplaced(t *testing.T, s *Supervisor, first InstanceStatus, why string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := s.Status()[0].Instances
		if len(st) == 1 && st[0].ID != first.ID && st[0].State == Ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no replacement: %+v", why, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMaxMemoryRestartReplacesGracefully(t *testing.T) {
	var l idLog
	app := testApp(t, "hog", 1)
	app.MaxMemoryRestart = 32 << 20
	app.MinUptime = config.Duration(10 * time.Millisecond)
	s, _, _ := run(t, app, l.hooks(), func(s *Supervisor) { s.SampleEvery = 100 * time.Millisecond })
	// Touching 64 MiB byte by byte under -race takes seconds on a loaded
	// machine (it failed at 5 s under load 20 before and after the shim).
	first := waitState(t, s, 0, Ready, 20*time.Second)
	waitReplaced(t, s, first, "instance over max_memory_restart")
	// The replacement was ready before the old one drained.
	events := strings.Join(l.events, ",")
	if !strings.Contains(events, fmt.Sprintf("ready 0/%d,ready 0/", first.ID)) ||
		!strings.Contains(events, fmt.Sprintf("drain 0/%d,gone 0/%d", first.ID, first.ID)) {
		t.Errorf("hooks %s; want the new instance ready before the old one drained", events)
	}
}

func TestIncrementVarAndMemoryLimitEnv(t *testing.T) {
	app := testApp(t, "env", 2)
	out := t.TempDir()
	app.Env["OUT_DIR"] = out
	app.Env["GREETING"] = "3000"
	app.IncrementVar = "GREETING"
	app.Ready = config.Ready{Notify: true}
	app.MaxMemoryRestart = 100 << 20
	s, _, _ := run(t, app, Hooks{})
	for i := range 2 {
		waitState(t, s, i, Ready, 5*time.Second)
		data, _ := os.ReadFile(filepath.Join(out, fmt.Sprintf("env-%d", i)))
		if want := fmt.Sprintf("GREETING=%d\nGOMEMLIMIT=94371840\n", 3000+i); !strings.Contains(string(data), want) {
			t.Errorf("instance %d env:\n%s\nwant %s", i, data, want)
		}
	}
}

func TestCronRestartReloads(t *testing.T) {
	app := testApp(t, "listen", 1)
	app.CronRestart = "@every 1s"
	s, _, _ := run(t, app, Hooks{})
	first := waitState(t, s, 0, Ready, 5*time.Second)
	waitReplaced(t, s, first, "cron_restart @every 1s")
}

func TestWatchReloadsOnChange(t *testing.T) {
	app := testApp(t, "listen", 1)
	src := filepath.Join(app.Cwd, "src")
	os.MkdirAll(filepath.Join(app.Cwd, "node_modules"), 0o755)
	os.MkdirAll(src, 0o755)
	app.Watch = config.WatchPaths{"."}
	app.IgnoreWatch = []string{"*.tmp"}
	s, _, _ := run(t, app, Hooks{})
	first := waitState(t, s, 0, Ready, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // the watcher is set up

	// Ignored files change nothing.
	os.WriteFile(filepath.Join(app.Cwd, "node_modules", "dep.js"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(src, "scratch.tmp"), []byte("x"), 0o644)
	time.Sleep(800 * time.Millisecond)
	if st := s.Status()[0].Instances[0]; st.ID != first.ID {
		t.Fatalf("an ignored change reloaded the app: %+v", st)
	}
	// A source change reloads it, new instance first.
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main"), 0o644)
	waitReplaced(t, s, first, "a change under watch")
}
