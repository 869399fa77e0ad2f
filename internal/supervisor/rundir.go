package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/herdhq/herd/internal/proc"
)

// The run folder (herd-run-PID-RANDOM in the temporary folder) holds the
// notify sockets, the Node preload, and what a later herd needs should this
// one be killed together with its shims: herd's own start time ("herd")
// and, per live instance, its shim's and app's pids with their start times
// and its cgroup ("i<ID>.rec", JSON). Its base name is the run's mark,
// proc.MarkEnv, in every instance's environment.

const herdRecord = "herd"

// writeFileAtomic writes data to path by write-temp-then-rename, so that a
// herd killed mid-write leaves the old file or the new one, never half.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// recordSelf writes herd's pid's start time to the run folder, so that a
// later herd can tell this run's pid from a new process that reused it.
func recordSelf(dir string) error {
	start, err := proc.StartTime(os.Getpid())
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, herdRecord), []byte(strconv.FormatUint(start, 10)+"\n"))
}

func recordPath(dir string, id uint64) string {
	return filepath.Join(dir, "i"+strconv.FormatUint(id, 10)+".rec")
}

// recordInstance writes the record of a started instance.
func recordInstance(dir string, id uint64, p *proc.Process) error {
	data, err := json.Marshal(p.Record())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(recordPath(dir, id), data); err != nil {
		return fmt.Errorf("supervisor: recording instance pids in the run folder: %w", err)
	}
	return nil
}

// runGone reports whether the herd of a run folder has exited: no process
// has its pid, or the one that has was started at another time.
func runGone(dir string, pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	data, err := os.ReadFile(filepath.Join(dir, herdRecord))
	if err != nil {
		return false // an older herd, or one just starting: keep its folder
	}
	want, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return false
	}
	got, err := proc.StartTime(pid)
	return err == nil && got != want
}

// sweepRunDirs cleans up after herd processes that are gone: one killed
// with SIGKILL could not remove its run folder, and if its shims were
// killed too (kill -9 of every herd process), its instances' descendants
// may still run. Those are killed (proc.Sweep: recorded pids whose start
// times match, recorded cgroups, the run's mark), then the folder goes. It
// returns the pids it killed.
func sweepRunDirs(tmp string) []int {
	var killed []int
	dirs, _ := filepath.Glob(filepath.Join(tmp, "herd-run-*-*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), "herd-run-"), "-", 2)[0])
		if err != nil || pid <= 0 || pid == os.Getpid() || !runGone(dir, pid) {
			continue
		}
		var recs []proc.Record
		files, _ := filepath.Glob(filepath.Join(dir, "i*.rec"))
		for _, f := range files {
			var r proc.Record
			if data, err := os.ReadFile(f); err == nil && json.Unmarshal(data, &r) == nil {
				recs = append(recs, r)
			}
		}
		killed = append(killed, proc.Sweep(recs, filepath.Base(dir))...)
		_ = proc.KillCgroup(cgroupOf(dir))
		os.RemoveAll(dir)
	}
	return killed
}

const cgroupRecord = "cgroup"

// cgroupOf is the cgroup folder the run of dir recorded, or "".
func cgroupOf(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, cgroupRecord))
	if err != nil {
		return ""
	}
	path := strings.TrimSpace(string(data))
	if _, err := os.Stat(filepath.Join(path, "cgroup.procs")); err != nil {
		return "" // gone, or not a cgroup
	}
	return path
}

// sweepCgroups kills and removes the run cgroups (herd-run-PID-*) beside
// own whose herd is gone, should their run folder be gone already (a herd
// of an older version sweeps folders without reading them).
func sweepCgroups(own *proc.Cgroup) []int {
	var killed []int
	dirs, _ := filepath.Glob(filepath.Join(filepath.Dir(own.Dir()), "herd-run-*-*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), "herd-run-"), "-", 2)[0])
		if err != nil || pid <= 0 || dir == own.Dir() {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue // alive, or a reused pid: without a record, keep it
		}
		killed = append(killed, proc.Sweep([]proc.Record{{Cgroup: dir}}, "")...)
	}
	return killed
}
