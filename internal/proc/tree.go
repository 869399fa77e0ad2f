package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// procEntry is what the process tree walk needs of /proc/PID/stat.
type procEntry struct {
	pid, ppid, pgid int
	zombie          bool
	start           uint64 // clock ticks after boot
}

// parseEntry reads pid, state, ppid, pgid and start time from a stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseEntry(data []byte) (procEntry, error) {
	open := bytes.IndexByte(data, '(')
	end := bytes.LastIndexByte(data, ')')
	if open < 1 || end < open {
		return procEntry{}, errors.New("proc: malformed stat line")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data[:open])))
	if err != nil {
		return procEntry{}, errors.New("proc: malformed pid in stat line")
	}
	f := bytes.Fields(data[end+1:])
	// After ')': field 3 (state) is f[0]; ppid is field 4, pgrp 5, starttime 22.
	const state, ppid, pgrp, starttime = 0, 4 - 3, 5 - 3, 22 - 3
	if len(f) <= starttime {
		return procEntry{}, fmt.Errorf("proc: stat line has %d fields, want more than %d", len(f)+2, starttime+2)
	}
	e := procEntry{pid: pid, zombie: len(f[state]) == 1 && (f[state][0] == 'Z' || f[state][0] == 'X')}
	var err1, err2, err3 error
	e.ppid, err1 = strconv.Atoi(string(f[ppid]))
	e.pgid, err2 = strconv.Atoi(string(f[pgrp]))
	e.start, err3 = strconv.ParseUint(string(f[starttime]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procEntry{}, errors.New("proc: malformed stat numbers")
	}
	return e, nil
}

func readEntry(pid int) (procEntry, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procEntry{}, err
	}
	return parseEntry(data)
}

// StartTime is pid's start time in clock ticks after boot, from
// /proc/PID/stat. A pid with the start time once recorded for it is still
// the same process: pids are reused, (pid, start time) pairs are not.
func StartTime(pid int) (uint64, error) {
	e, err := readEntry(pid)
	if err != nil {
		return 0, fmt.Errorf("proc: reading the start time of %d: %w", pid, err)
	}
	return e.start, nil
}

// processTable reads every process of the pid namespace. Processes that
// exit while it reads are left out.
func processTable() ([]procEntry, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("proc: listing processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("proc: listing processes: %w", err)
	}
	out := make([]procEntry, 0, len(names))
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if e, err := readEntry(pid); err == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// descendants returns every process below root in table (children,
// grandchildren, ...), zombies included.
func descendants(table []procEntry, root int) []procEntry {
	children := make(map[int][]procEntry, len(table))
	for _, e := range table {
		children[e.ppid] = append(children[e.ppid], e)
	}
	var out []procEntry
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if c.pid == root { // pid 0's children include init; never loop
				continue
			}
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// killIfSame sends SIGKILL to pid if it is still the process that started
// at start; false when it is gone or another process now has the pid.
func killIfSame(pid int, start uint64) bool {
	e, err := readEntry(pid)
	if err != nil || e.start != start || e.zombie {
		return false
	}
	return syscall.Kill(pid, syscall.SIGKILL) == nil
}
