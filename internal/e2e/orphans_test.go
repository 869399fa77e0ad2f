package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
)

// An orphan shape is an app whose processes are not all herd's children:
// each of its processes appends its pid to $PIDS.
type orphanShape struct {
	name  string
	files map[string]string // written to the app's folder
	cmd   string
	want  int    // pids the app writes to $PIDS
	tool  string // a program the shape needs, or ""
	// appPid: the instance's own pid (from /status) is one of the
	// processes that must go too (npm writes nothing itself).
	appPid bool
}

var orphanShapes = []orphanShape{
	{
		name: "sh background child",
		// herd expands $NAME in a command's words: $$ is a $ for sh.
		cmd:  `sh -c 'echo $$$$ >> "$$PIDS"; sleep 300 & echo $$! >> "$$PIDS"; wait'`,
		want: 2,
	},
	{
		name: "grandchild in its own process group",
		files: map[string]string{"app.sh": `echo $$ >> "$PIDS"
perl -e 'setpgrp(0, 0); open(my $f, ">>", $ENV{PIDS}); print $f "$$\n"; close $f; exec "sleep", "300"' &
wait
`},
		cmd:  "sh app.sh",
		want: 2,
		tool: "perl",
	},
	{
		// Node's cluster workers exit by themselves when the master's IPC
		// channel closes; what they started does not.
		name: "node cluster master, workers and their children",
		files: map[string]string{"cluster.js": `const cluster = require('node:cluster');
const fs = require('node:fs');
const { spawn } = require('node:child_process');
fs.appendFileSync(process.env.PIDS, process.pid + '\n');
if (cluster.isPrimary) {
  for (let i = 0; i < 2; i++) cluster.fork();
} else {
  const c = spawn('sleep', ['300'], { stdio: 'ignore' });
  fs.appendFileSync(process.env.PIDS, c.pid + '\n');
  setInterval(() => {}, 1 << 30);
}
`},
		cmd:  "node cluster.js",
		want: 5,
		tool: "node",
	},
	{
		// setsid + double fork: the daemon is in another session and
		// process group, its parent gone; it ignores SIGTERM.
		name: "daemon (setsid, double fork)",
		files: map[string]string{"app.sh": `echo $$ >> "$PIDS"
( setsid sh -c 'trap "" TERM; sleep 300 & echo $! >> "$PIDS"' & )
exec sleep 300
`},
		cmd:  "sh app.sh",
		want: 2,
		tool: "setsid",
	},
	{
		name: "npm start (npm, sh, node)",
		files: map[string]string{
			"package.json": `{"name": "orphan-test", "version": "1.0.0", "private": true, "scripts": {"start": "node server.js"}}`,
			"server.js": `const fs = require('node:fs');
fs.appendFileSync(process.env.PIDS, process.pid + '\n' + process.ppid + '\n');
setInterval(() => {}, 1 << 30);
`,
		},
		cmd:    "npm start",
		want:   2,
		tool:   "npm",
		appPid: true,
	},
}

// orphanModes are the two ways herd keeps an instance's tree: a cgroup per
// instance (where the machine lets herd make one) with the subreaper shim,
// and the shim alone.
var orphanModes = []struct {
	name string
	env  []string
}{
	{"cgroup", nil},
	{"shim only", []string{"HERD_CGROUP=off"}},
}

// TestNoOrphans: for every shape, every process the app started is gone
// after herd is killed with SIGKILL, and after `herd stop`.
func TestNoOrphans(t *testing.T) {
	for _, mode := range orphanModes {
		for _, shape := range orphanShapes {
			for _, how := range []string{"SIGKILL of herd", "herd stop"} {
				t.Run(mode.name+"/"+shape.name+"/"+how, func(t *testing.T) {
					if shape.tool != "" {
						testenv.Tool(t, shape.tool)
					}
					h, pids := startShape(t, shape, mode.env)
					switch how {
					case "SIGKILL of herd":
						h.cmd.Process.Signal(syscall.SIGKILL)
						h.waitExit(10 * time.Second)
					case "herd stop":
						if out, err := h.cli("stop", "w"); err != nil {
							t.Fatalf("herd stop w: %v\n%s", err, out)
						}
					}
					waitGone(t, pids)
				})
			}
		}
	}
}

// TestSweepKillsWhatAKilledHerdLeft: herd and its shims killed together
// (kill -9 of every herd process) leave the app's descendants running; the
// next herd kills them at start, from what the dead one recorded in its run
// folder.
func TestSweepKillsWhatAKilledHerdLeft(t *testing.T) {
	shape := orphanShapes[3] // the daemon: in a session of its own
	testenv.Tool(t, shape.tool)
	for _, mode := range orphanModes {
		t.Run(mode.name, func(t *testing.T) {
			// Another herd starting on this machine (tests of other
			// packages run side by side) sweeps dead runs too, and may kill
			// the daemon before this test's own herd starts: try again then.
			var daemon int
			for attempt := 1; ; attempt++ {
				h, pids := startShape(t, shape, mode.env)
				shims := childrenOf(t, h.cmd.Process.Pid)
				if len(shims) != 1 {
					t.Fatalf("herd's children: %v; want one shim", shims)
				}
				// Stopped, the shim cannot act on herd's death before it dies.
				syscall.Kill(shims[0], syscall.SIGSTOP)
				h.cmd.Process.Signal(syscall.SIGKILL)
				h.waitExit(10 * time.Second)
				syscall.Kill(shims[0], syscall.SIGKILL)
				waitFor(t, 10*time.Second, "the shim to be gone", func() bool { return !alive(shims[0]) })
				// The app itself dies with the shim (Pdeathsig); the daemon
				// does not.
				daemon = pids[1]
				if alive(daemon) {
					break
				}
				if attempt == 3 {
					t.Fatalf("daemon %d died without this test's sweep, 3 times: the test does not test the sweep", daemon)
				}
				t.Logf("daemon %d was gone before the sweep (another herd's?); again", daemon)
			}
			next := startHerdEnv(t, "apps:\n  other:\n    command: sleep 300\n    ready: none\n    min_uptime: 100ms\n", mode.env)
			waitGone(t, []int{daemon})
			// Another herd starting on this machine meanwhile (tests run
			// side by side) may have swept first; either way a sweep did.
			if !strings.Contains(next.out.String(), "killed processes left by a herd") {
				t.Logf("the daemon was swept by another herd:\n%s", next.out.String())
			}
		})
	}
}

// startShape runs shape as app "w" under a new herd and returns it with
// every pid the app wrote once it wrote them all, each checked alive.
func startShape(t *testing.T, shape orphanShape, env []string) (*herd, []int) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range shape.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pidFile := filepath.Join(dir, "pids")
	h := startHerdEnv(t, fmt.Sprintf(`
apps:
  w:
    command: %s
    cwd: %s
    env: {PIDS: %s, npm_config_update_notifier: "false"}
    ready: none
    min_uptime: 300ms
    kill_timeout: 1s
`, yamlQuote(shape.cmd), yamlQuote(dir), yamlQuote(pidFile)), env)
	var pids []int
	waitFor(t, 15*time.Second, fmt.Sprintf("%d pids in %s", shape.want, pidFile), func() bool {
		pids = readPids(t, pidFile)
		return len(pids) >= shape.want
	})
	if shape.appPid {
		pids = append(pids, h.pids()...)
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d of %v is not running before the test", pid, pids)
		}
	}
	return h, pids
}

// startHerdEnv is startHerd with env added to herd's environment.
func startHerdEnv(t *testing.T, body string, env []string) *herd {
	t.Helper()
	for attempt := 1; ; attempt++ {
		path, public, admin := writeConfig(t, body)
		h := &herd{t: t, dir: filepath.Dir(path), public: public, admin: admin}
		cmd := exec.Command(herdBin, "up", "-f", path)
		cmd.Env = append(os.Environ(), env...)
		h.start(cmd)
		if !h.lostPortRace() || attempt == 3 {
			h.waitAllReady()
			return h
		}
	}
}

// waitGone waits (bounded) until none of pids runs.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
				t.Errorf("pid %d still runs: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
				syscall.Kill(pid, syscall.SIGKILL) // do not leave it to the next test
			}
			t.FailNow()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPids(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// childrenOf lists the live children of pid, from /proc.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) && fields[0] != "Z" {
			child, _ := strconv.Atoi(strings.Fields(string(data))[0])
			out = append(out, child)
		}
	}
	return out
}

// yamlQuote quotes s as a YAML double-quoted string.
func yamlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
