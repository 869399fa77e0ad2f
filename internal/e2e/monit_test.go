package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
)

// TestMonitInTmux drives `herd monit` in a real terminal (tmux): it shows
// the real pids, r reloads (new pids), + scales up, and q quits leaving the
// terminal as it was.
func TestMonitInTmux(t *testing.T) {
	tmux := testenv.Tool(t, "tmux")
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
    instances: 2
routes:
  - path: /
    to: web
`)
	session := fmt.Sprintf("herd-monit-%d", os.Getpid())
	args := []string{"monit", "--config", h.dir + "/herd.yaml"}
	if h.socket != "" {
		args = append(args, "--socket", h.socket)
	}
	cmdline := herdBin + " " + strings.Join(args, " ") + "; echo MONIT-EXITED $?; sleep 60"
	if out, err := exec.Command(tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "45", cmdline).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(tmux, "kill-session", "-t", session).Run() })
	screen := func() string {
		out, _ := exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
		return string(out)
	}
	keys := func(k ...string) {
		if out, err := exec.Command(tmux, append([]string{"send-keys", "-t", session}, k...)...).CombinedOutput(); err != nil {
			t.Fatalf("tmux send-keys %v: %v\n%s", k, err, out)
		}
	}
	showsPids := func(pids []int) func() bool {
		return func() bool {
			s := screen()
			for _, p := range pids {
				if !strings.Contains(s, " "+strconv.Itoa(p)+" ") {
					return false
				}
			}
			return strings.Contains(s, "herd monit")
		}
	}
	before := h.pids()
	waitFor(t, 10*time.Second, "monit to show the instances' pids", showsPids(before))

	// CPU of monit itself while it refreshes (reported; bench/ holds goals).
	if pid := monitPid(t, tmux, session); pid != 0 {
		t0, c0 := time.Now(), cpuTicks(pid)
		time.Sleep(3 * time.Second)
		t.Logf("herd monit used %.1f%% of a core over 3 s", float64(cpuTicks(pid)-c0)*10/float64(time.Since(t0).Milliseconds())*100)
	}

	keys("r")
	waitFor(t, 20*time.Second, "r to reload web", func() bool {
		after := h.pids()
		return len(after) == 2 && !slices.Contains(after, before[0]) && !slices.Contains(after, before[1])
	})
	waitFor(t, 10*time.Second, "monit to show the new pids and say done", func() bool {
		return showsPids(h.pids())() && strings.Contains(screen(), "reload web: done")
	})

	keys("+")
	waitFor(t, 20*time.Second, "+ to scale web to 3", func() bool { return len(h.status()["web"]) == 3 })
	waitFor(t, 10*time.Second, "monit to show web[2]", func() bool { return strings.Contains(screen(), "web[2]") })

	keys("q")
	waitFor(t, 10*time.Second, "q to quit", func() bool { return strings.Contains(screen(), "MONIT-EXITED 0") })
	if s := screen(); strings.Contains(s, "web[0]") {
		t.Errorf("the terminal still shows monit's screen after q:\n%s", s)
	}
}

// monitPid is the herd monit process under the tmux pane's shell.
func monitPid(t *testing.T, tmux, session string) int {
	out, err := exec.Command(tmux, "list-panes", "-t", session, "-F", "#{pane_pid}").Output()
	if err != nil {
		return 0
	}
	shell := strings.TrimSpace(string(out))
	kids, _ := exec.Command("pgrep", "-P", shell).Output()
	pid, _ := strconv.Atoi(strings.Fields(string(kids) + " 0")[0])
	return pid
}

// cpuTicks is a process's user+system time in clock ticks (10 ms).
func cpuTicks(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return u + k
}
