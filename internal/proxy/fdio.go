//go:build !race

package proxy

import (
	"syscall"
	"unsafe"
)

// recvFD and sendFD make one recvfrom or sendto call on a non-blocking
// socket, raw: the runtime is not told, since the call never waits (see
// waitread.go). Under the race detector, fdio_race.go's syscall.Read and
// syscall.Write take their place, which tell it what the kernel read and
// wrote.

func recvFD(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(r), errno
}

func sendFD(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(r), errno
}
