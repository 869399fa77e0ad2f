package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// probeInterval paces readiness probes: soon after spawn, then every 200 ms.
func probeInterval(attempt int) time.Duration {
	return min(time.Duration(attempt+1)*25*time.Millisecond, 200*time.Millisecond)
}

var probeClient = &http.Client{
	Timeout: 2 * time.Second,
	// A fresh connection per probe: the instance's keep-alive pool belongs to the proxy.
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a 3xx counts as ready
	},
}

// probeHTTP returns nil once GET url answers 2xx or 3xx.
func probeHTTP(ctx context.Context, url string) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("supervisor: readiness probe %s: %w", url, err)
		}
		if res, err := probeClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode >= 200 && res.StatusCode < 400 {
				return nil
			}
		}
		if err := sleepCtx(ctx, probeInterval(attempt)); err != nil {
			return err
		}
	}
}

// probeTCP returns nil once addr accepts a connection.
func probeTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	for attempt := 0; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if err := sleepCtx(ctx, probeInterval(attempt)); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errProbeCanceled
	case <-t.C:
		return nil
	}
}

// notifier is how an instance says READY=1: on its NOTIFY_SOCKET, or, in
// shared_socket mode, also on a pipe (fd 4), which Node can write without a
// datagram socket. Methods on a nil *notifier do nothing.
type notifier struct {
	sock *notifySocket
	pipe *os.File // read end
}

// waitReady returns nil once either channel said READY=1.
func (n *notifier) waitReady(ctx context.Context) error {
	results := make(chan error, 2)
	waiting := 0
	if n.sock != nil {
		waiting++
		go func() { results <- n.sock.waitReady(ctx) }()
	}
	if n.pipe != nil {
		waiting++
		stop := context.AfterFunc(ctx, func() { n.pipe.Close() })
		defer stop()
		go func() { results <- readyOnPipe(n.pipe) }()
	}
	var err error
	for range waiting {
		if err = <-results; err == nil {
			return nil
		}
	}
	if ctx.Err() != nil {
		return errProbeCanceled
	}
	return err
}

// readyOnPipe reads lines until READY=1 or the end of the pipe.
func readyOnPipe(f *os.File) error {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "READY=1" {
			return nil
		}
	}
	return fmt.Errorf("supervisor: ready pipe closed without READY=1")
}

// Close closes both channels; safe on nil and more than once.
func (n *notifier) Close() {
	if n == nil {
		return
	}
	if n.sock != nil {
		n.sock.Close()
	}
	if n.pipe != nil {
		n.pipe.Close()
	}
}

// notifySocket is the datagram socket an instance reports READY=1 on, as
// systemd's sd_notify protocol does (one socket per spawn).
type notifySocket struct {
	conn *net.UnixConn
	path string
	once sync.Once
}

func listenNotify(path string) (*notifySocket, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("supervisor: creating notify socket: %w", err)
	}
	return &notifySocket{conn: conn, path: path}, nil
}

// waitReady reads datagrams until one holds the line READY=1.
func (n *notifySocket) waitReady(ctx context.Context) error {
	stop := context.AfterFunc(ctx, n.Close)
	defer stop()
	buf := make([]byte, 4096)
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return errProbeCanceled
			}
			return fmt.Errorf("supervisor: reading notify socket: %w", err)
		}
		for _, line := range bytes.Split(buf[:k], []byte{'\n'}) {
			if string(bytes.TrimSpace(line)) == "READY=1" {
				return nil
			}
		}
	}
}

// Close closes and removes the socket; safe to call more than once.
func (n *notifySocket) Close() {
	n.once.Do(func() {
		n.conn.Close()
		os.Remove(n.path)
	})
}

// portSet hands out free loopback ports, never one already given to a live
// instance.
type portSet struct {
	mu    sync.Mutex
	inUse map[int]bool
}

func (s *portSet) take() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inUse == nil {
		s.inUse = make(map[int]bool)
	}
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("supervisor: finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !s.inUse[port] {
			s.inUse[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("supervisor: no free loopback port found")
}

func (s *portSet) release(port int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inUse, port)
}
