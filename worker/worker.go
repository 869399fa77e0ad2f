package worker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNoListener is returned by Listen when the process was given neither
// an inherited socket nor a PORT.
var ErrNoListener = errors.New("worker: no socket to serve on")

// env is the process seam: what Listen and Ready read and change, so tests
// can drive them without being started by herd.
type env struct {
	getenv   func(string) string
	unsetenv func(string) error
	getpid   func() int
	// fileListener turns an inherited fd into a listener.
	fileListener func(fd uintptr, name string) (net.Listener, error)
	listen       func(network, addr string) (net.Listener, error)
}

var osEnv = env{
	getenv:   os.Getenv,
	unsetenv: os.Unsetenv,
	getpid:   os.Getpid,
	fileListener: func(fd uintptr, name string) (net.Listener, error) {
		f := os.NewFile(fd, name)
		defer f.Close() // FileListener holds a dup of its own
		return net.FileListener(f)
	},
	listen: net.Listen,
}

// listenFDsStart is the first inherited socket, systemd's SD_LISTEN_FDS_START.
const listenFDsStart = 3

var (
	listenMu sync.Mutex
	// takenInherited: an earlier Listen took the inherited socket (and
	// cleared LISTEN_FDS); a second one must not quietly bind PORT, which
	// in shared_socket mode is the shared port itself.
	takenInherited bool
)

// Listen returns the socket to serve on: the one herd passes in
// shared_socket mode (fd 3, when LISTEN_FDS is 1 or more and LISTEN_PID is
// this process), or else a new listener on 127.0.0.1:$PORT, the loopback
// port herd gives each instance in proxy mode. It unsets LISTEN_FDS,
// LISTEN_PID and LISTEN_FDNAMES, so that programs the app starts do not
// take the socket for theirs. With neither, it fails with ErrNoListener
// and says what to set. A second call after the inherited socket was taken
// fails rather than binding PORT.
func Listen() (net.Listener, error) {
	listenMu.Lock()
	defer listenMu.Unlock()
	ln, inherited, err := osEnv.listenOnce(takenInherited)
	if inherited {
		takenInherited = true
	}
	return ln, err
}

func (e env) listenOnce(takenBefore bool) (ln net.Listener, inherited bool, err error) {
	fds, err := e.inheritedFDs()
	if err != nil {
		return nil, false, err
	}
	if fds > 0 {
		name := e.getenv("LISTEN_FDNAMES")
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[:i]
		}
		for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
			e.unsetenv(k)
		}
		ln, err := e.fileListener(listenFDsStart, cmpOr(name, "LISTEN_FD_3"))
		if err != nil {
			return nil, true, fmt.Errorf("worker: using the inherited socket (fd 3, LISTEN_FDS=%d): %w", fds, err)
		}
		return ln, true, nil
	}
	if takenBefore {
		return nil, false, fmt.Errorf("worker: Listen called again: the inherited socket was taken by the first call; serve on that listener")
	}
	port := e.getenv("PORT")
	if port == "" {
		return nil, false, fmt.Errorf("%w: LISTEN_FDS (herd's shared_socket mode) and PORT (herd's proxy mode) are both unset; run the app under herd, or set PORT=8080 to run it alone", ErrNoListener)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, false, fmt.Errorf("worker: PORT=%q is not a port number; set it to one like 8080", port)
	}
	ln, err = e.listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return nil, false, fmt.Errorf("worker: listening on PORT=%s: %w", port, err)
	}
	return ln, false, nil
}

// inheritedFDs is how many sockets were passed to this process, as
// sd_listen_fds counts them: 0 unless LISTEN_PID names this process.
func (e env) inheritedFDs() (int, error) {
	v := e.getenv("LISTEN_FDS")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("worker: LISTEN_FDS=%q is not a count of sockets", v)
	}
	if pid := e.getenv("LISTEN_PID"); pid != "" && pid != strconv.Itoa(e.getpid()) {
		return 0, nil // meant for the process that exec'd us, not for us
	}
	return n, nil
}

// Ready tells herd this instance is ready for traffic: "READY=1\n" on the
// pipe in HERD_READY_FD (shared_socket mode) and READY=1 on NOTIFY_SOCKET
// (ready: notify, or systemd's Type=notify). herd listens on both in
// shared_socket mode and closes the other once one has spoken, so Ready
// succeeds when either channel took the message, and fails (with both
// reasons) only when every channel it tried failed. Not under herd,
// neither is set, and Ready does nothing and returns nil. The pipe is
// closed and HERD_READY_FD unset after use.
func Ready() error { return osEnv.ready() }

var readyMu sync.Mutex

func (e env) ready() error {
	readyMu.Lock()
	defer readyMu.Unlock()
	var errs []error
	told := false
	if v := e.getenv("HERD_READY_FD"); v != "" {
		e.unsetenv("HERD_READY_FD")
		fd, err := strconv.Atoi(v)
		if err != nil || fd < listenFDsStart {
			errs = append(errs, fmt.Errorf("worker: HERD_READY_FD=%q is not a file descriptor", v))
		} else {
			f := os.NewFile(uintptr(fd), "herd-ready")
			_, err := f.WriteString("READY=1\n")
			f.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("worker: telling herd ready on fd %d: %w", fd, err))
			} else {
				told = true
			}
		}
	}
	if path := e.getenv("NOTIFY_SOCKET"); path != "" {
		if err := sdNotify(path, "READY=1"); err != nil {
			errs = append(errs, err)
		} else {
			told = true
		}
	}
	if told {
		return nil
	}
	return errors.Join(errs...)
}

// sdNotify sends state as one datagram to the unix socket at path ("@" at
// the start names an abstract socket), as systemd's sd_notify does.
func sdNotify(path, state string) error {
	addr := path
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("worker: notify socket %s: %w", path, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("worker: sending %s to %s: %w", state, path, err)
	}
	return nil
}

// DefaultKillTimeout is herd's default kill_timeout, the bound DrainTimeout
// starts from when HERD_KILL_TIMEOUT is unset.
const DefaultKillTimeout = 5 * time.Second

// DrainTimeout is how long Serve lets requests in flight finish after the
// stop signal: the kill timeout less a margin (a tenth, at most 500 ms) to
// return and exit before SIGKILL. The kill timeout is read from
// HERD_KILL_TIMEOUT (a Go duration like 10s, or bare milliseconds as in
// herd.yaml); herd does not pass its kill_timeout to instances today, so
// an app with a kill_timeout other than 5s sets HERD_KILL_TIMEOUT in its
// env: to match (or passes Options.DrainTimeout). An unreadable value is
// reported and the default used.
func DrainTimeout() (time.Duration, error) { return osEnv.drainTimeout() }

func (e env) drainTimeout() (time.Duration, error) {
	kill := DefaultKillTimeout
	var err error
	if v := e.getenv("HERD_KILL_TIMEOUT"); v != "" {
		if d, perr := parseDuration(v); perr != nil || d <= 0 {
			err = fmt.Errorf("worker: HERD_KILL_TIMEOUT=%q is not a duration like 5s or 5000; draining within the default %s", v, DefaultKillTimeout)
		} else {
			kill = d
		}
	}
	return kill - min(kill/10, 500*time.Millisecond), err
}

func parseDuration(v string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(ms) * time.Millisecond, nil
	}
	return time.ParseDuration(v)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
