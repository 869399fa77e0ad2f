package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// herd as a container's PID 1. The kernel gives PID 1 two jobs no other
// process has: every orphan of the container is reparented to it, and it
// must wait for them or they stay zombies; and a signal it installed no
// handler for is dropped, not acted on. herd's supervisor waits only for
// the processes it started (os/exec owns their exit statuses, so a
// wait-for-anything loop beside it would steal them), and its instances'
// shims are subreapers of their own trees, but an orphan whose shim died,
// or of a process started by `podman exec`, lands on PID 1.
//
// So when herd finds itself PID 1 it does what tini (docker run --init)
// does, in its own binary: it starts itself again as PID 2, which is herd
// proper, and stays as a small init that forwards every signal it gets to
// herd (SIGTERM: the graceful drain; a second SIGTERM: stop now), reaps
// every child, and exits with herd's own status. HERD_PID1=off keeps herd
// itself as PID 1 (for a runtime that already runs an init).

// pid1Off is the value of HERD_PID1 that turns the init off.
const pid1Off = "off"

// forwardedToHerd are the signals the init passes on to herd.
var forwardedToHerd = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

func init() {
	if os.Getpid() != 1 || os.Getenv("HERD_PID1") == pid1Off {
		return
	}
	os.Exit(runInit())
}

// runInit starts herd again as a child with the same arguments and
// environment, then forwards signals and reaps until that child exits.
func runInit() int {
	sigs := make(chan os.Signal, 32)
	// Before the start, so neither an early exit nor an early SIGTERM is missed.
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwardedToHerd...)...)
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	child, err := os.StartProcess(exe, os.Args, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "herd (pid 1): cannot start herd: %v\n", err)
		return exitFailed
	}
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			_ = child.Signal(sig) // an error means herd is gone; its SIGCHLD follows
			continue
		}
		if status, done := reapAll(child.Pid); done {
			switch {
			case status.Exited():
				return status.ExitStatus()
			case status.Signaled():
				return 128 + int(status.Signal())
			}
			return exitFailed
		}
	}
	return exitFailed // not reached: sigs is never closed
}

// reapAll waits for every child that has exited, without blocking, and
// reports whether herd (pid) was one of them, with its status. SIGCHLDs
// merge, so one signal may stand for several exits.
func reapAll(pid int) (herd syscall.WaitStatus, done bool) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || got <= 0 {
			return herd, done
		}
		if got == pid {
			herd, done = ws, true
		}
	}
}
