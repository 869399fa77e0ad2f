package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// sharedGuard answers on a shared_socket app's socket while none of its
// instances is: the kernel queues connections on a listening socket
// whether or not anyone accepts, so without it a client of an app whose
// instances all crashed waits forever. Once no instance has been ready for
// queue_timeout, herd accepts from the socket itself and answers 503 JSON
// (HTTP clients) or closes (anything else); the moment an instance is
// ready again it stops, and the instances have the socket to themselves.
type sharedGuard struct {
	app          string
	queueTimeout time.Duration
	ln           *net.TCPListener // herd's own descriptor of the shared socket

	mu    sync.Mutex
	ready map[uint64]bool // the instances that accept now
	wake  chan struct{}   // signalled when the ready set changes
}

// newSharedGuard makes a guard on a duplicate of the shared socket f.
func newSharedGuard(app string, f *os.File, queueTimeout time.Duration) (*sharedGuard, error) {
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("app %s: watching the shared socket: %w", app, err)
	}
	return &sharedGuard{
		app: app, queueTimeout: queueTimeout, ln: l.(*net.TCPListener),
		ready: map[uint64]bool{}, wake: make(chan struct{}, 1),
	}, nil
}

// setReady records that instance id accepts (or no longer does).
func (g *sharedGuard) setReady(id uint64, ready bool) {
	g.mu.Lock()
	if ready {
		g.ready[id] = true
	} else {
		delete(g.ready, id)
	}
	any := len(g.ready) > 0
	g.mu.Unlock()
	if any {
		// Interrupt an Accept in progress; run sees the ready set after.
		_ = g.ln.SetDeadline(time.Now())
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *sharedGuard) anyReady() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.ready) > 0
}

// run guards the socket until ctx ends, then closes herd's descriptor (the
// socket itself stays open for the instances). Connections it accepted are
// answered before it returns.
func (g *sharedGuard) run(ctx context.Context) {
	var conns sync.WaitGroup
	defer func() {
		g.ln.Close()
		conns.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { _ = g.ln.SetDeadline(time.Now()) })
	defer stop()
	for {
		// Wait until no instance has been ready for queue_timeout.
		for g.anyReady() {
			select {
			case <-ctx.Done():
				return
			case <-g.wake:
			}
		}
		t := time.NewTimer(g.queueTimeout)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-g.wake:
			t.Stop()
			continue // the ready set changed: look again
		case <-t.C:
		}
		// Accept until an instance is ready. The deadline is cleared first
		// and the ready set read after, so a setReady between the two
		// still interrupts this Accept.
		for ctx.Err() == nil {
			_ = g.ln.SetDeadline(time.Time{})
			if g.anyReady() || ctx.Err() != nil {
				break
			}
			c, err := g.ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return // closed under us
			}
			conns.Go(func() { g.refuse(c) })
		}
	}
}

// refuse answers one connection taken off the socket: a 503 JSON to an
// HTTP request, a close to anything else.
func (g *sharedGuard) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	first, err := br.Peek(1)
	if err != nil || first[0] < 'A' || first[0] > 'Z' { // not an HTTP method
		return
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	reason := fmt.Sprintf("no instance of app %q was ready within %s", g.app, g.queueTimeout)
	body, _ := json.Marshal(map[string]string{"error": http.StatusText(http.StatusServiceUnavailable), "app": g.app, "reason": reason})
	body = append(body, '\n')
	var res bytes.Buffer
	res.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n")
	res.WriteString("Retry-After: 1\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	if req.Method != http.MethodHead {
		res.Write(body)
	}
	if _, err := c.Write(res.Bytes()); err == nil {
		// Half-close and drain what the client still sends, so the
		// kernel does not reset the connection before it read the answer.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, br)
	}
}
