package supervisor

import (
	"testing"
	"time"

	"github.com/herdhq/herd/internal/config"
)

// waitInstance polls instance 0's status until ok accepts it.
func waitInstance(t *testing.T, s *Supervisor, what string, timeout time.Duration, ok func(InstanceStatus) bool) InstanceStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var st InstanceStatus
		if ins := s.Status()[0].Instances; len(ins) > 0 {
			st = ins[0]
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s: %+v (lag %+v)", what, timeout, st, st.Lag)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// herd's preload measures a Node app's event-loop delay inside the app,
// with no change to the app, and reports it over the IPC channel herd opens:
// a loop blocked 300 ms at a time shows it, an idle one does not.
func TestNodeEventLoopLag(t *testing.T) {
	for _, c := range []struct {
		name    string
		script  string
		blocked bool
	}{
		{"blocked", `setInterval(() => { const t = Date.now(); while (Date.now() - t < 300); }, 400);`, true},
		{"idle", `setInterval(() => {}, 1000);`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := nodeApp(t, c.script+"\nprocess.on('SIGTERM', () => process.exit(0));\n")
			app.Ready = config.Ready{Process: true}
			app.MinUptime = config.Duration(100 * time.Millisecond)
			s, _, _ := run(t, app, Hooks{}, func(s *Supervisor) { s.SampleEvery = 100 * time.Millisecond })
			st := waitInstance(t, s, "lag report", 10*time.Second, func(st InstanceStatus) bool { return st.Lag != nil && st.Threads > 0 })
			if c.blocked {
				st = waitInstance(t, s, "a blocked loop's lag", 10*time.Second, func(st InstanceStatus) bool { return st.Lag != nil && st.Lag.MaxMs >= 250 })
				if st.LagMs == nil || *st.LagMs < 100 {
					t.Errorf("lag_ms %v for a loop blocked 300 ms in every 700; want its p99 ≥ 100", st.LagMs)
				}
			} else if st.Lag.P99Ms > 50 {
				t.Errorf("an idle loop's p99 lag %.1f ms; want under 50", st.Lag.P99Ms)
			}
			if st.OpenFiles < 3 || st.Threads < 2 {
				t.Errorf("open files %d, threads %d; want Node's own (≥ 3 fds, ≥ 2 threads)", st.OpenFiles, st.Threads)
			}
		})
	}
}

// The IPC channel herd gives every Node app does not keep an app alive
// that would end on its own (Node leaves the channel unref'd while nothing
// listens for messages), and its exit code is reported.
func TestNodeAppStillEndsOnItsOwn(t *testing.T) {
	app := nodeApp(t, `setTimeout(() => { process.exitCode = 3; }, 50);`)
	app.Ready = config.Ready{Process: true}
	app.MinUptime = config.Duration(10 * time.Millisecond)
	off := false
	app.Autorestart = &off
	s, _, _ := run(t, app, Hooks{})
	st := waitState(t, s, 0, Stopped, 10*time.Second)
	if st.LastExitCode == nil || *st.LastExitCode != 3 {
		t.Errorf("last exit code %v (last exit %q); want 3", st.LastExitCode, st.LastExit)
	}
}
