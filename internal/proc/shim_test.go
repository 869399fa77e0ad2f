package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// treeModes are the two ways an instance's tree is kept: the subreaper
// shim alone, and the shim with a cgroup (where this machine allows one).
func treeModes(t *testing.T) []struct {
	name   string
	cgroup *Cgroup
} {
	t.Helper()
	modes := []struct {
		name   string
		cgroup *Cgroup
	}{{"shim only", nil}}
	cg, err := NewCgroup(fmt.Sprintf("herd-proc-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
	if err == nil {
		t.Cleanup(func() {
			if err := cg.Remove(); err != nil {
				t.Error(err)
			}
		})
		modes = append(modes, struct {
			name   string
			cgroup *Cgroup
		}{"cgroup", cg})
	} else {
		t.Logf("no cgroup here, testing the shim alone: %v", err)
	}
	return modes
}

// daemonScript starts a daemon (setsid, double fork) that ignores SIGTERM
// and a child in the shell's group, writes both pids to $1, then waits.
const daemonScript = `( setsid sh -c 'trap "" TERM; sleep 300 & echo $! >> "$0"' "$0" & )
sleep 300 & echo $! >> "$0"
`

func TestStopKillsTheWholeTree(t *testing.T) {
	for _, mode := range treeModes(t) {
		t.Run(mode.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			p, err := Start(Spec{Path: "sh", Args: []string{"-c", daemonScript + "wait", pidFile}, Cgroup: mode.cgroup})
			if err != nil {
				t.Fatal(err)
			}
			pids := waitPids(t, pidFile, 2)
			start := time.Now()
			if err := p.Stop(syscall.SIGTERM, 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Stop took %s; want about nothing (sh exits on TERM)", took)
			}
			// Stop returns once the whole tree is reaped: no waiting here.
			for _, pid := range append(pids, p.Pid()) {
				if running(pid) {
					t.Errorf("pid %d still runs after Stop", pid)
				}
			}
			if got := p.Describe(); got != "signal: terminated" {
				t.Errorf("Describe = %q; want the app's own end, signal: terminated", got)
			}
		})
	}
}

func TestAppExitTakesItsTree(t *testing.T) {
	for _, mode := range treeModes(t) {
		t.Run(mode.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			p, err := Start(Spec{Path: "sh", Args: []string{"-c", daemonScript + `while [ $(wc -l < "$0") -lt 2 ]; do sleep 0.01; done; exit 3`, pidFile}, Cgroup: mode.cgroup})
			if err != nil {
				t.Fatal(err)
			}
			<-p.Done()
			if p.ExitCode() != 3 || p.Describe() != "exit status 3" {
				t.Errorf("ended with %q (%d); want exit status 3", p.Describe(), p.ExitCode())
			}
			for _, pid := range readPidFile(pidFile) {
				if running(pid) {
					t.Errorf("pid %d outlived the app", pid)
				}
			}
		})
	}
}

// TestHerdDeathKillsTheTree: a stand-in for herd (this test binary) starts
// a tree and is killed with SIGKILL; nothing of the tree survives it.
func TestHerdDeathKillsTheTree(t *testing.T) {
	for _, mode := range treeModes(t) {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			pidFile, parentOut := filepath.Join(dir, "pids"), filepath.Join(dir, "parent")
			exe, _ := os.Executable()
			parent := exec.Command(exe)
			parent.Env = append(os.Environ(), "PROC_TEST_PARENT="+parentOut,
				"PROC_TEST_CMD="+strings.ReplaceAll(daemonScript, `"$0"`, `"`+pidFile+`"`)+"wait")
			if mode.cgroup != nil {
				parent.Env = append(parent.Env, "PROC_TEST_CGROUP=1")
			}
			parent.Stderr = os.Stderr
			if err := parent.Start(); err != nil {
				t.Fatal(err)
			}
			pids := waitPids(t, pidFile, 2)
			waitFor(t, func() bool { _, err := os.Stat(parentOut); return err == nil })
			data, _ := os.ReadFile(parentOut)
			f := strings.Fields(string(data))
			for _, s := range f[:2] { // the app and the shim
				pid, _ := strconv.Atoi(s)
				pids = append(pids, pid)
			}
			if mode.cgroup != nil && len(f) < 3 {
				t.Errorf("the app got no cgroup: %q", data)
			}
			parent.Process.Kill()
			parent.Wait()
			waitFor(t, func() bool {
				for _, pid := range pids {
					if running(pid) {
						return false
					}
				}
				return true
			})
			if len(f) == 3 {
				if _, err := os.Stat(f[2]); err == nil {
					t.Errorf("cgroup %s left behind", f[2])
				}
				os.Remove(filepath.Dir(f[2])) // the stand-in's own, which its death left
			}
		})
	}
}

func TestExitStatusIsTheApps(t *testing.T) {
	tests := []struct {
		script string
		want   string
		code   int
	}{
		{"exit 0", "exit status 0", 0},
		{"exit 3", "exit status 3", 3},
		{"kill -KILL $$", "signal: killed", -1},
		{"kill -TERM $$", "signal: terminated", -1},
		{"kill -ABRT $$", "signal: aborted", -1},
		{"kill -SEGV $$", "signal: segmentation fault", -1},
	}
	for _, tc := range tests {
		t.Run(tc.script, func(t *testing.T) {
			p, err := Start(Spec{Path: "sh", Args: []string{"-c", "ulimit -c 0; " + tc.script}})
			if err != nil {
				t.Fatal(err)
			}
			<-p.Done()
			if got := p.Describe(); got != tc.want || p.ExitCode() != tc.code {
				t.Errorf("Describe = %q, ExitCode = %d; want %q, %d", got, p.ExitCode(), tc.want, tc.code)
			}
		})
	}
}

func TestSignalReachesTheAppsGroup(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	// The trap runs in a child of the app, in its group.
	p, err := Start(Spec{Path: "sh", Args: []string{"-c", `sh -c 'trap "echo usr2 > $0; exit 0" USR2; echo > $0.ready; while :; do sleep 0.05; done' "$0" & wait`, got}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(syscall.SIGTERM, time.Second)
	waitFor(t, func() bool { _, err := os.Stat(got + ".ready"); return err == nil })
	if err := p.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { data, _ := os.ReadFile(got); return string(data) == "usr2\n" })
	<-p.Done()
	if err := p.Signal(syscall.SIGUSR2); err != nil {
		t.Errorf("Signal after exit: %v; want nil", err)
	}
}

func TestStartReportsAMissingProgram(t *testing.T) {
	_, err := Start(Spec{Path: "no-such-program-herd-test"})
	if err == nil || !strings.Contains(err.Error(), "proc: starting no-such-program-herd-test") ||
		!strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("Start = %v; want exec's not-found error", err)
	}
}

func TestSweep(t *testing.T) {
	mine := exec.Command("sleep", "300")
	if err := mine.Start(); err != nil {
		t.Fatal(err)
	}
	defer mine.Process.Kill()
	go mine.Wait()
	other := exec.Command("sleep", "300")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Process.Kill()
	go other.Wait()
	marked := exec.Command("sh", "-c", "sleep 300 & wait")
	marked.Env = append(os.Environ(), MarkEnv+"=herd-run-test-"+strconv.Itoa(os.Getpid()))
	if err := marked.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-marked.Process.Pid, syscall.SIGKILL)
	go marked.Wait()

	start, err := StartTime(mine.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	otherStart, _ := StartTime(other.Process.Pid)
	recs := []Record{
		{Pid: mine.Process.Pid, Start: start},
		{Pid: other.Process.Pid, Start: otherStart + 1}, // the pid was reused: another process
	}
	waitFor(t, func() bool { return len(childPids(marked.Process.Pid)) == 1 })
	sleeper := childPids(marked.Process.Pid)[0]
	killed := Sweep(recs, "herd-run-test-"+strconv.Itoa(os.Getpid()))
	waitFor(t, func() bool { return !running(mine.Process.Pid) && !running(marked.Process.Pid) && !running(sleeper) })
	if !running(other.Process.Pid) {
		t.Error("Sweep killed a process whose start time does not match the record")
	}
	if len(killed) != 3 {
		t.Errorf("Sweep killed %v; want the recorded sleep, the marked sh and its child", killed)
	}
}

func TestParseEntry(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procEntry
		wantErr bool
	}{
		{
			name: "name with spaces and parens",
			line: "42 (my (odd) app) S 7 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1000 123456789 300 18446744073709551615",
			want: procEntry{pid: 42, ppid: 7, pgid: 42, start: 1000},
		},
		{
			name: "zombie",
			line: "43 (sh) Z 1 40 40 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 2000 0 0 0",
			want: procEntry{pid: 43, ppid: 1, pgid: 40, start: 2000, zombie: true},
		},
		{name: "truncated", line: "42 (x) S 1 2 3", wantErr: true},
		{name: "no pid", line: "(x) S 1 2 3", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEntry([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v; want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestDescendants(t *testing.T) {
	table := []procEntry{{pid: 1}, {pid: 10, ppid: 1}, {pid: 11, ppid: 10}, {pid: 12, ppid: 11, zombie: true}, {pid: 20, ppid: 1}}
	var got []int
	for _, e := range descendants(table, 10) {
		got = append(got, e.pid)
	}
	if fmt.Sprint(got) != "[11 12]" {
		t.Errorf("descendants of 10 = %v; want [11 12]", got)
	}
}

func TestNewCgroupOff(t *testing.T) {
	t.Setenv(cgroupOff, "off")
	if _, err := NewCgroup("herd-proc-test-off"); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("NewCgroup with %s=off: %v; want ErrNoCgroup", cgroupOff, err)
	}
}

// running reports whether pid is a process that has not exited (a zombie
// has).
func running(pid int) bool {
	e, err := readEntry(pid)
	return err == nil && !e.zombie
}

func childPids(pid int) []int {
	table, _ := processTable()
	var out []int
	for _, e := range table {
		if e.ppid == pid && !e.zombie {
			out = append(out, e.pid)
		}
	}
	return out
}

func readPidFile(path string) []int {
	data, _ := os.ReadFile(path)
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitPids(t *testing.T, path string, n int) []int {
	t.Helper()
	waitFor(t, func() bool { return len(readPidFile(path)) >= n })
	return readPidFile(path)
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
