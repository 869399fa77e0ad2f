//go:build !amd64 && !arm64

package proc

import "syscall"

// resetToDefault does nothing where the kernel's struct sigaction is not
// known; dieBy then ends the shim with exit status 128+sig.
func resetToDefault(syscall.Signal) {}
