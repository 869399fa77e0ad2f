package proc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Usage is a process's cumulative CPU time and its resident memory.
type Usage struct {
	CPU time.Duration // user + system time since start
	RSS uint64        // resident set size in bytes
	// Threads is the process's number of threads.
	Threads int
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times; Linux fixes it at
// 100 for user space whatever the kernel's HZ.
const clockTick = 10 * time.Millisecond

var pageSize = uint64(os.Getpagesize())

// ReadUsage reads pid's CPU time and RSS from /proc.
func ReadUsage(pid int) (Usage, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Usage{}, fmt.Errorf("proc: reading stat of %d: %w", pid, err)
	}
	return parseStat(data)
}

// parseStat parses /proc/PID/stat. The command name (field 2) may hold spaces
// and parentheses, so fields are counted from the last ')'.
func parseStat(data []byte) (Usage, error) {
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return Usage{}, fmt.Errorf("proc: malformed stat line")
	}
	fields := bytes.Fields(data[end+1:])
	// After ')': field 3 (state) is fields[0]; utime is field 14, stime 15,
	// num_threads 20, rss 24.
	const utime, stime, threads, rss = 14 - 3, 15 - 3, 20 - 3, 24 - 3
	if len(fields) <= rss {
		return Usage{}, fmt.Errorf("proc: stat line has %d fields, want more than %d", len(fields)+2, rss+2)
	}
	u, err1 := strconv.ParseUint(string(fields[utime]), 10, 64)
	s, err2 := strconv.ParseUint(string(fields[stime]), 10, 64)
	r, err3 := strconv.ParseUint(string(fields[rss]), 10, 64)
	t, err4 := strconv.Atoi(string(fields[threads]))
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Usage{}, fmt.Errorf("proc: malformed stat numbers")
	}
	return Usage{CPU: time.Duration(u+s) * clockTick, RSS: r * pageSize, Threads: t}, nil
}

// CountFDs returns how many files pid has open (the entries of
// /proc/PID/fd), reading the names in batches without keeping them.
func CountFDs(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, fmt.Errorf("proc: counting open files of %d: %w", pid, err)
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(256)
		n += len(names)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("proc: counting open files of %d: %w", pid, err)
		}
	}
}
