//go:build amd64 || arm64

package proc

import (
	"syscall"
	"unsafe"
)

// sigactiont is the kernel's struct sigaction on amd64 and arm64.
type sigactiont struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// resetToDefault sets sig's action to SIG_DFL behind the Go runtime's back
// and unblocks it, so that raising it ends the process as it ends any
// program (the runtime would print a goroutine dump for SIGABRT or SIGSEGV
// and exit 2). The shim calls it only to die.
func resetToDefault(sig syscall.Signal) {
	var sa sigactiont // handler 0 is SIG_DFL
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
	set := uint64(1) << (uint(sig) - 1)
	const sigUnblock = 1
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigUnblock, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
}
