package proc

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// The supervisor shim. Every instance runs below a copy of herd's own
// binary (herd → shim → app → ...), which
//
//   - is a child subreaper (PR_SET_CHILD_SUBREAPER), so whatever the app
//     starts, including a daemon that double-forks and calls setsid, is
//     reparented to the shim when its parent exits, never to init;
//   - starts the app in a process group of its own (and, where herd has
//     one, in a cgroup of its own), tied to the shim's locked thread with
//     Pdeathsig;
//   - holds one end of a socket pair whose other end only herd holds:
//     herd writes a signal number per byte, which the shim sends to the
//     app's process group (SIGKILL: kill the whole tree); EOF means herd
//     is gone, even by SIGKILL, and the shim kills the whole tree;
//   - kills the whole tree as soon as the app itself exits (as herd always
//     killed the app's group), reaps everything, and exits as the app did:
//     the same exit status, or killed by the same signal, so herd's
//     "exit status 3" and "signal: killed" are the app's.
//
// Pdeathsig alone cannot do this: it reaches direct children only, and it
// fires when the forking *thread* exits. The pipe's EOF does not depend on
// threads, and the subreaper sees every descendant in /proc.

// Environment of a shim process; removed before the app starts.
const (
	shimFDEnv        = "HERD_SHIM_FD"         // the control socket's fd
	shimListenPIDEnv = "HERD_SHIM_LISTEN_PID" // "1": start the app through the LISTEN_PID exec shim
	shimCgroupEnv    = "HERD_SHIM_CGROUP"     // the app's cgroup folder, if any
)

// forwarded are the signals the shim passes on to the app's group when
// someone sends them to the shim itself (kill PID-of-shim, a terminal).
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

type shim struct {
	self   int
	app    int
	cgroup string
	ctl    *os.File

	exited bool
	status syscall.WaitStatus
}

// runSupervisorShim is the shim's main; it never returns.
func runSupervisorShim(fdText string) {
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		fmt.Fprintf(os.Stderr, "herd: shim: bad %s=%q\n", shimFDEnv, fdText)
		os.Exit(127)
	}
	syscall.CloseOnExec(fd)
	s := &shim{self: os.Getpid(), ctl: os.NewFile(uintptr(fd), "herd-control"), cgroup: os.Getenv(shimCgroupEnv)}
	listenPID := os.Getenv(shimListenPIDEnv) == "1"
	for _, k := range []string{shimFDEnv, shimListenPIDEnv, shimCgroupEnv} {
		os.Unsetenv(k)
	}
	if len(os.Args) < 2 {
		s.fail("shim without a program")
	}

	// The app's Pdeathsig fires when this thread exits: keep it for good.
	runtime.LockOSThread()
	if err := setChildSubreaper(); err != nil {
		s.fail(fmt.Sprintf("PR_SET_CHILD_SUBREAPER: %v", err))
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwarded...)...)

	path, args := os.Args[1], os.Args[2:]
	if listenPID {
		self, err := os.Executable()
		if err != nil {
			s.fail(fmt.Sprintf("finding herd's binary for the LISTEN_PID shim: %v", err))
		}
		path, args = self, os.Args[1:]
		os.Setenv(shimEnv, "1")
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for i := 3; i < fd; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(i), "fd"+strconv.Itoa(i)))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.cgroup != "" {
		if dir, err := os.Open(s.cgroup); err == nil {
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
			defer dir.Close()
		}
	}
	err = cmd.Start()
	if err != nil && cmd.SysProcAttr.UseCgroupFD {
		// clone3 into a cgroup refused (an old kernel, a seccomp filter):
		// the subreaper alone keeps the tree.
		cmd = rebuild(cmd)
		s.cgroup = ""
		err = cmd.Start()
	}
	if err != nil {
		s.fail(err.Error())
	}
	s.app = cmd.Process.Pid
	cg := "-"
	if s.cgroup != "" {
		cg = s.cgroup
	}
	fmt.Fprintf(s.ctl, "pid %d %s\n", s.app, cg)
	// The app has its copies; the shim must not keep a ready pipe or an
	// IPC channel open after the app exited.
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}

	cmds := make(chan byte)
	go func() { // ends with the shim
		defer close(cmds)
		b := make([]byte, 1)
		for {
			if n, err := s.ctl.Read(b); n == 1 {
				cmds <- b[0]
			} else if err != nil {
				return // EOF: herd is gone
			}
		}
	}()
	for !s.exited {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGCHLD {
				s.reap(false)
			} else {
				_ = syscall.Kill(-s.app, sig.(syscall.Signal))
			}
		case b, ok := <-cmds:
			if !ok || syscall.Signal(b) == syscall.SIGKILL {
				s.killTree()
			} else {
				_ = syscall.Kill(-s.app, syscall.Signal(b))
			}
		}
	}
	s.killTree() // what the app left behind goes with it
	if s.cgroup != "" {
		_ = os.Remove(s.cgroup) // empty now; herd removes it otherwise
	}
	_, _ = s.ctl.Write([]byte("exit\n"))
	switch {
	case s.status.Exited():
		os.Exit(s.status.ExitStatus())
	case s.status.Signaled():
		dieBy(s.status.Signal())
	}
	os.Exit(128)
}

// rebuild returns a fresh copy of an unstarted-but-failed cmd without the
// cgroup: an exec.Cmd cannot be started twice.
func rebuild(old *exec.Cmd) *exec.Cmd {
	cmd := exec.Command(old.Path, old.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = old.Stdin, old.Stdout, old.Stderr, old.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// fail tells herd why the app could not be started and exits.
func (s *shim) fail(msg string) {
	fmt.Fprintf(s.ctl, "err %s\n", msg)
	os.Exit(127)
}

// reap collects every child that has exited, blocking for the first one
// if block; it records the app's status. It returns false once the shim
// has no children left.
func (s *shim) reap(block bool) bool {
	for {
		flags := syscall.WNOHANG
		if block {
			flags, block = 0, false
		}
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, flags, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return false // ECHILD
		case pid == 0:
			return true
		case pid == s.app:
			s.exited, s.status = true, ws
		}
	}
}

// killTree kills every descendant of the shim and reaps them all. As a
// subreaper the shim is the parent of every orphan of its tree, so walking
// /proc from its pid finds them all; it walks again until nothing is left
// (a process may fork while it is being killed). With a cgroup,
// cgroup.kill first reaches every member at once.
func (s *shim) killTree() {
	if s.cgroup != "" {
		_ = os.WriteFile(filepath.Join(s.cgroup, "cgroup.kill"), []byte("1"), 0)
	}
	for {
		// No child left means no descendant left: the orphans of the
		// tree are the subreaper's children. The usual case (an app that
		// leaves nothing) costs no walk of /proc.
		if !s.reap(false) {
			return
		}
		table, err := processTable()
		live := 0
		if err == nil {
			for _, d := range descendants(table, s.self) {
				if !d.zombie {
					live++
					_ = syscall.Kill(d.pid, syscall.SIGKILL)
				}
			}
		}
		if err != nil { // no /proc: the app's group is what can be found
			_ = syscall.Kill(-s.app, syscall.SIGKILL)
		}
		if live == 0 && err == nil {
			continue // zombies only, or a child forked meanwhile: look again
		}
		// Every live descendant hangs below a live child of the shim,
		// which was just killed: waiting for a child cannot block forever.
		s.reap(true)
	}
}

// dieBy ends the shim by sig, as the app ended, without a core file.
func dieBy(sig syscall.Signal) {
	_ = syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{})
	signal.Reset()
	resetToDefault(sig)
	_ = syscall.Kill(os.Getpid(), sig)
	// A signal whose default is to be ignored (SIGCHLD, SIGWINCH) ends no
	// process, so the app cannot have ended by it either; be safe.
	os.Exit(128 + int(sig))
}

func setChildSubreaper() error {
	const prSetChildSubreaper = 36
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
