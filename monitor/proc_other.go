//go:build !unix

package monitor

import "time"

// rss and cpuTime are read on Unix only.
func rss() uint64 { return 0 }

func cpuTime() time.Duration { return 0 }
