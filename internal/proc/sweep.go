package proc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// MarkEnv names the variable that marks every process of a herd run: each
// instance gets MarkEnv=<run id> and passes it on to all it starts, so a
// later herd finds a daemon of a dead run even without a cgroup.
const MarkEnv = "HERD_RUN"

// Sweep kills what a dead herd left behind, for the case where herd and
// its shims were killed together (kill -9 of every "herd" process): the
// recorded shims and apps whose start times still match (a reused pid is
// another process and is left alone), the app's process group, the
// recorded cgroups, and every process whose environment carries
// MarkEnv=mark (daemons that left the group). It returns the pids it
// killed.
func Sweep(recs []Record, mark string) []int {
	var killed []int
	for _, r := range recs {
		if r.Cgroup != "" {
			killed = append(killed, cgroupPids(r.Cgroup)...)
			_ = KillCgroup(r.Cgroup)
		}
		if r.ShimPid > 0 && killIfSame(r.ShimPid, r.ShimStart) {
			killed = append(killed, r.ShimPid)
		}
		if r.Pid > 0 && killIfSame(r.Pid, r.Start) {
			killed = append(killed, r.Pid)
			_ = syscall.Kill(-r.Pid, syscall.SIGKILL)
		}
	}
	if mark == "" {
		return killed
	}
	table, _ := processTable()
	needle := []byte(MarkEnv + "=" + mark)
	self := os.Getpid()
	for _, e := range table {
		if e.zombie || e.pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(e.pid) + "/environ")
		if err != nil {
			continue
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.Equal(kv, needle) {
				if killIfSame(e.pid, e.start) {
					killed = append(killed, e.pid)
				}
				break
			}
		}
	}
	return killed
}

// cgroupPids lists the processes in cgroup dir and below.
func cgroupPids(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}
