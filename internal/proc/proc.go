// Package proc is herd's seam to the operating system. It starts an instance
// in a process group of its own, tied to herd's life with Pdeathsig, signals
// the whole group, and stops it gracefully then forcibly within a bound.
package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Spec describes a process to start.
type Spec struct {
	// Path is the executable; a name without a slash is looked up in PATH.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Dir is the working directory; empty means herd's own.
	Dir string
	// Env is the full environment, as "KEY=value" strings.
	Env []string
	// Output receives the child's stdout and stderr, a whole line per Write,
	// prefixed with Prefix. Nil discards them.
	Output io.Writer
	// Prefix starts every line written to Output, e.g. "web[0] ".
	Prefix string
	// ExtraFiles are inherited as fds 3, 4, ...
	ExtraFiles []*os.File
	// SetListenPID starts the program through herd's own binary, which sets
	// LISTEN_PID to the pid the program will have and then execs it (the
	// pid survives exec), as systemd's socket activation requires.
	SetListenPID bool
}

// shimEnv marks a herd process started only to set LISTEN_PID and exec.
const shimEnv = "HERD_EXEC_LISTEN_PID"

// RunShim must be called first thing in main (and in TestMain of tests that
// start processes with SetListenPID). In a shim process it sets LISTEN_PID to
// its own pid and execs the program in os.Args[1:]; it never returns there.
// Anywhere else it returns at once.
func RunShim() {
	if os.Getenv(shimEnv) != "1" {
		return
	}
	os.Unsetenv(shimEnv)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "herd: exec shim without a program")
		os.Exit(127)
	}
	path, err := exec.LookPath(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "herd: %v\n", err)
		os.Exit(127)
	}
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	err = syscall.Exec(path, os.Args[1:], os.Environ())
	fmt.Fprintf(os.Stderr, "herd: exec %s: %v\n", path, err)
	os.Exit(126)
}

// Process is a started child and its process group. Its methods are safe for
// concurrent use.
type Process struct {
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	output   sync.WaitGroup // line copiers
	stopOnce sync.Once
	stopErr  error
}

// Start starts the process described by spec in a new process group. The
// child gets SIGKILL when herd dies, even by SIGKILL.
func Start(spec Spec) (*Process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	if spec.SetListenPID {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("proc: finding herd's binary for the LISTEN_PID shim: %w", err)
		}
		cmd = exec.Command(self, append([]string{spec.Path}, spec.Args...)...)
		cmd.Env = append(slices.Clip(spec.Env), shimEnv+"=1")
	}
	cmd.Dir = spec.Dir
	cmd.ExtraFiles = spec.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	p := &Process{cmd: cmd, done: make(chan struct{})}
	// Our own pipe rather than exec's copier: Wait must not block on a
	// grandchild that keeps the pipe open after the instance exited.
	var rd, wr *os.File
	if spec.Output != nil {
		var err error
		rd, wr, err = os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("proc: creating output pipe: %w", err)
		}
		cmd.Stdout, cmd.Stderr = wr, wr
	}
	err := spawn(cmd)
	if wr != nil {
		wr.Close()
	}
	if err != nil {
		if rd != nil {
			rd.Close()
		}
		return nil, fmt.Errorf("proc: starting %s: %w", spec.Path, err)
	}
	if rd != nil {
		p.output.Add(1)
		go func() {
			defer p.output.Done()
			defer rd.Close()
			copyLines(spec.Output, spec.Prefix, rd)
		}()
	}
	go func() {
		p.waitErr = cmd.Wait()
		// Whatever the instance left behind in its group goes with it. The
		// group id cannot be reused while any member is alive.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitError is how the process ended: nil for exit status 0, else an
// *exec.ExitError or the wait error. Valid after Done is closed.
func (p *Process) ExitError() error { <-p.done; return p.waitErr }

// ExitCode is the exit status, or -1 when a signal ended the process.
func (p *Process) ExitCode() int { <-p.done; return p.cmd.ProcessState.ExitCode() }

// Describe says how the process ended, e.g. "exit status 1" or "signal: killed".
func (p *Process) Describe() string {
	<-p.done
	return p.cmd.ProcessState.String()
}

// Signal sends sig to the whole process group. A group that is already gone
// is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := syscall.Kill(-p.Pid(), sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("proc: sending %v to group %d: %w", sig, p.Pid(), err)
	}
	return nil
}

// Stop sends sig to the group, waits up to killTimeout for the process to
// exit, then sends SIGKILL to the group and waits for it. It is safe to call
// more than once and from several goroutines; every call returns once the
// process is gone.
func (p *Process) Stop(sig syscall.Signal, killTimeout time.Duration) error {
	p.stopOnce.Do(func() {
		if err := p.Signal(sig); err != nil {
			p.stopErr = err
		}
		t := time.NewTimer(killTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			p.stopErr = p.Signal(syscall.SIGKILL)
		}
	})
	<-p.done
	return p.stopErr
}

// WaitOutput waits until every line the process wrote has been copied, or
// one second at most: a descendant that left the process group may hold the
// pipe open for as long as it lives.
func (p *Process) WaitOutput() {
	done := make(chan struct{})
	go func() { p.output.Wait(); close(done) }()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// spawnRequests carries exec.Cmd starts to the one goroutine allowed to fork.
// Pdeathsig fires when the forking *thread* exits, and the Go runtime may end
// idle threads (golang/go#27505), so every child is forked from one thread
// that is locked and never released.
var (
	spawnOnce     sync.Once
	spawnRequests chan spawnRequest
)

type spawnRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnRequests = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as herd
			for r := range spawnRequests {
				r.reply <- r.cmd.Start()
			}
		}()
	})
	reply := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd: cmd, reply: reply}
	return <-reply
}
