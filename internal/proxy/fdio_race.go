//go:build race

package proxy

import "syscall"

// Under the race detector, the fast path's reads and writes go through
// syscall.Read and syscall.Write, which tell it about the bytes the kernel
// read into and from, and the order a socket gives between goroutines;
// fdio.go's raw calls would hide both.

func recvFD(fd uintptr, p []byte) (int, syscall.Errno) {
	return errnoOf(syscall.Read(int(fd), p))
}

func sendFD(fd uintptr, p []byte) (int, syscall.Errno) {
	return errnoOf(syscall.Write(int(fd), p))
}

func errnoOf(n int, err error) (int, syscall.Errno) {
	if err == nil {
		return n, 0
	}
	if errno, ok := err.(syscall.Errno); ok {
		return 0, errno
	}
	return 0, syscall.EIO // not on Linux, where the error is always an Errno
}
