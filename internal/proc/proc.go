// Package proc is herd's seam to the operating system. It starts an
// instance below a supervisor shim (herd's own binary, re-executed), in a
// process group and, where the machine has cgroup v2, a cgroup of its own;
// it signals the instance's group, and stops it gracefully then forcibly
// within a bound. Nothing the instance starts outlives it or herd: not its
// grandchildren, not a daemon that left its group and session, not when
// herd itself is killed with SIGKILL (see shim.go).
package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec describes a process to start.
type Spec struct {
	// Path is the executable; a name without a slash is looked up in the
	// PATH of Env (herd's own PATH unless the app's env: sets one).
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Dir is the working directory; empty means herd's own.
	Dir string
	// Env is the full environment, as "KEY=value" strings; nil is herd's.
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
	// Cgroup, if not nil, gets a child cgroup for this process and all it
	// starts; nil leaves the whole tree to the shim's subreaper.
	Cgroup *Cgroup
}

// shimEnv marks a herd process started only to set LISTEN_PID and exec.
const shimEnv = "HERD_EXEC_LISTEN_PID"

// Every process starts below a shim of the running binary (herd, or a
// test binary), so the shim runs from this package's init: before main and
// TestMain, and before the init of every package sorted after this one
// (prometheus, cobra, yaml, protobuf...), which a shim needs none of. A
// binary that imports proc, as any that calls Start does, is a shim when
// asked; nothing has to remember to call RunShim.
func init() { RunShim() }

// RunShim runs the shim this process was started as, if any: in a
// supervisor shim it runs the app and never returns; in a LISTEN_PID shim
// it sets LISTEN_PID to its own pid and execs the program in os.Args[1:].
// Anywhere else it returns at once. The package's init calls it; calling
// it again (first thing in main) is harmless.
func RunShim() {
	if fd := os.Getenv(shimFDEnv); fd != "" {
		runSupervisorShim(fd)
	}
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

// Process is a started instance: the app, its process group and its whole
// tree below the shim. Its methods are safe for concurrent use.
type Process struct {
	cmd      *exec.Cmd // the shim
	ctl      *os.File  // herd's end of the control socket
	pid      int       // the app's pid, also its process group id
	start    uint64    // the app's start time, for Record
	cgroup   string    // the app's cgroup folder, or ""
	done     chan struct{}
	waitErr  error
	output   sync.WaitGroup // line copiers
	stopOnce sync.Once
	stopErr  error
}

// Start starts the program described by spec below a supervisor shim, in a
// new process group (and a new cgroup when spec.Cgroup is set). It returns
// once the program has been started, or with the reason it could not be
// (a missing executable, as exec reports it). The program and everything
// it starts die when herd dies, even by SIGKILL.
func Start(spec Spec) (*Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("proc: finding herd's binary for the supervisor shim: %w", err)
	}
	// One end for herd (close-on-exec, so no other child inherits it: EOF
	// then means herd is gone), one for the shim.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("proc: creating the shim's control socket: %w", err)
	}
	ctl, shimEnd := os.NewFile(uintptr(fds[0]), "herd-control"), os.NewFile(uintptr(fds[1]), "herd-control-shim")
	defer shimEnd.Close()

	var cgroup string
	if spec.Cgroup != nil {
		if cgroup, err = spec.Cgroup.child(); err != nil {
			cgroup = "" // the shim alone still keeps the tree
		}
	}
	cmd := exec.Command(self, append([]string{spec.Path}, spec.Args...)...)
	cmd.Args[0] = "herd-shim"
	base := spec.Env
	if base == nil {
		base = os.Environ() // as exec.Cmd does with a nil Env
	}
	env := append(slices.Clip(base), shimFDEnv+"="+strconv.Itoa(3+len(spec.ExtraFiles)))
	if spec.SetListenPID {
		env = append(env, shimListenPIDEnv+"=1")
	}
	if cgroup != "" {
		env = append(env, shimCgroupEnv+"="+cgroup)
	}
	cmd.Env = env
	cmd.Dir = spec.Dir
	cmd.ExtraFiles = append(slices.Clip(spec.ExtraFiles), shimEnd)
	// No Pdeathsig: the shim must outlive herd long enough to kill the
	// tree, and learns of herd's death from the socket's EOF.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	p := &Process{cmd: cmd, ctl: ctl, done: make(chan struct{})}
	// Our own pipe rather than exec's copier: Wait must not block on a
	// descendant that keeps the pipe open.
	var rd, wr *os.File
	if spec.Output != nil {
		rd, wr, err = os.Pipe()
		if err != nil {
			ctl.Close()
			return nil, fmt.Errorf("proc: creating output pipe: %w", err)
		}
		cmd.Stdout, cmd.Stderr = wr, wr
	}
	err = cmd.Start()
	if wr != nil {
		wr.Close()
	}
	if err == nil {
		shimEnd.Close()
		err = p.handshake(spec.Path)
	}
	if err != nil {
		ctl.Close()
		if rd != nil {
			rd.Close()
		}
		if cgroup != "" {
			_ = KillCgroup(cgroup)
		}
		return nil, fmt.Errorf("proc: starting %s: %w", spec.Path, err)
	}
	if p.cgroup != cgroup {
		p.cgroup = ""
		if cgroup != "" {
			_ = KillCgroup(cgroup)
		}
	}
	p.start, _ = StartTime(p.pid) // 0 if it is gone already
	if rd != nil {
		p.output.Add(1)
		go func() {
			defer p.output.Done()
			defer rd.Close()
			copyLines(spec.Output, spec.Prefix, rd)
		}()
	}
	go p.wait()
	return p, nil
}

// handshake reads the shim's first line: "pid PID CGROUP" once the app is
// started, or "err MESSAGE" (and the shim exits).
func (p *Process) handshake(path string) error {
	line, err := readLine(p.ctl)
	if err != nil {
		werr := p.cmd.Wait()
		return fmt.Errorf("the supervisor shim ended before starting it: %v (%v)", err, werr)
	}
	if msg, ok := strings.CutPrefix(line, "err "); ok {
		_ = p.cmd.Wait()
		return errors.New(msg)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "pid" {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		return fmt.Errorf("the supervisor shim said %q", line)
	}
	if p.pid, err = strconv.Atoi(f[1]); err != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		return fmt.Errorf("the supervisor shim said %q", line)
	}
	p.cgroup = f[2] // "-" when the shim could not use the cgroup
	return nil
}

// readLine reads one line byte by byte, so that nothing after it is
// consumed from the socket.
func readLine(r io.Reader) (string, error) {
	var sb strings.Builder
	b := make([]byte, 1)
	for sb.Len() < 4096 {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				return sb.String(), nil
			}
			sb.WriteByte(b[0])
			continue
		}
		if err != nil {
			return "", err
		}
	}
	return "", errors.New("line too long")
}

// wait reaps the shim. The shim kills the whole tree before it exits and
// says "exit" first; if it did not (someone killed the shim itself), herd
// kills what it can reach: the app's cgroup and its process group.
func (p *Process) wait() {
	clean := make(chan bool, 1)
	go func() {
		line, _ := readLine(p.ctl)
		clean <- line == "exit"
	}()
	p.waitErr = p.cmd.Wait()
	p.ctl.Close() // ends the reader if the shim died without a word
	if !<-clean {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	if p.cgroup != "" {
		_ = KillCgroup(p.cgroup)
	}
	close(p.done)
}

// Pid is the app's process id, which is also its process group id (the
// shim's own pid is not shown anywhere).
func (p *Process) Pid() int { return p.pid }

// ShimPid is the supervisor shim's process id.
func (p *Process) ShimPid() int { return p.cmd.Process.Pid }

// Record is what a later herd needs to find what this one left, should
// both herd and the shim be killed: pids with their start times (a pid
// may be reused, the pair is not) and the cgroup.
func (p *Process) Record() Record {
	shimStart, _ := StartTime(p.ShimPid())
	return Record{ShimPid: p.ShimPid(), ShimStart: shimStart, Pid: p.pid, Start: p.start, Cgroup: p.cgroup}
}

// Done is closed once the process and everything it started have exited
// and been reaped.
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

// Signal sends sig to the app's whole process group; SIGKILL kills the
// whole tree, daemons that left the group included. A process that is
// already gone is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if sig <= 0 || sig > 255 {
		return fmt.Errorf("proc: signal %d out of range", sig)
	}
	if sig == syscall.SIGKILL && p.cgroup != "" {
		// Not left to the shim: this works even if the shim is stuck.
		_ = os.WriteFile(p.cgroup+"/cgroup.kill", []byte("1"), 0)
	}
	if _, err := p.ctl.Write([]byte{byte(sig)}); err != nil {
		select {
		case <-p.done:
			return nil
		default:
		}
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed) {
			return nil // the shim is exiting
		}
		return fmt.Errorf("proc: sending %v to group %d: %w", sig, p.pid, err)
	}
	return nil
}

// shimGrace bounds how long Stop waits for the shim to kill the tree after
// SIGKILL before it kills the shim and the app's group itself.
const shimGrace = 5 * time.Second

// Stop sends sig to the group, waits up to killTimeout for the process to
// exit, then kills the whole tree and waits for it. It is safe to call
// more than once and from several goroutines; every call returns once the
// process and all it started are gone.
func (p *Process) Stop(sig syscall.Signal, killTimeout time.Duration) error {
	p.stopOnce.Do(func() {
		if err := p.Signal(sig); err != nil {
			p.stopErr = err
		}
		t := time.NewTimer(killTimeout)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.stopErr = p.Signal(syscall.SIGKILL)
		t.Reset(shimGrace)
		select {
		case <-p.done:
		case <-t.C:
			_ = p.cmd.Process.Kill()
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		}
	})
	<-p.done
	return p.stopErr
}

// WaitOutput waits until every line the process wrote has been copied, or
// one second at most: a process that escaped the tree (it cannot, short of
// another pid namespace) could hold the pipe open for as long as it lives.
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

// Record identifies the processes and cgroup of one instance, as written
// to herd's run folder.
type Record struct {
	ShimPid   int    `json:"shim_pid"`
	ShimStart uint64 `json:"shim_start"`
	Pid       int    `json:"pid"`
	Start     uint64 `json:"start"`
	Cgroup    string `json:"cgroup,omitempty"`
}
