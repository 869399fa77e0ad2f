//go:build unix && !linux

package monitor

import (
	"syscall"
	"time"
)

// rss is read on Linux only.
func rss() uint64 { return 0 }

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
