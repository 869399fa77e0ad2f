package proxy

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// Go's net.Conn.Read tries the read first and waits for the poller only if
// it fails with EAGAIN. After sending a request or an answer, that first
// read fails nearly always, since the other side has not had it yet: one
// wasted system call per exchange and direction, a tenth of what a proxied
// request costs here. sendThenRead sends inside the wait instead.
//
// Its reads and writes are raw system calls: on a non-blocking socket they
// never wait, so the runtime need not be told (syscall.Read does, and a
// loopback write, which runs the receiver's side of TCP too, often lasts
// long enough for sysmon to hand the P to another thread and for the
// writer to sleep taking it back: 11 % of the proxy's CPU per request).
// They are recvfrom and sendto, as nginx's recv and send: on a socket they
// skip the file layer that read and write go through (2 % more), and
// MSG_NOSIGNAL spares the SIGPIPE of a write to a closed connection. Every
// connection here is a socket (TCP or Unix). The calls are in fdio.go.

// waitReader sends and reads on one connection without the first read.
// It is kept with the connection, so that the callback handed to
// syscall.RawConn.Read is made once, not per call.
type waitReader struct {
	raw  syscall.RawConn
	conn net.Conn
	sent *atomic.Bool // set once out is written, if not nil

	// One call's state.
	out, p  []byte
	written bool
	waited  bool
	n       int
	werr    error
	err     error
	step    func(fd uintptr) bool
}

// newWaitReader returns a waitReader for nc, or nil if nc has no file
// descriptor to wait on. Its reads and writes go to the descriptor: a
// wrapper of nc that overrides Read or Write is bypassed.
func newWaitReader(nc net.Conn, sent *atomic.Bool) *waitReader {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &waitReader{raw: raw, conn: nc, sent: sent}
	r.step = r.stepFD
	return r
}

// sendThenRead writes out, then waits until the connection is readable and
// reads once into p. The write happens inside RawConn.Read, after the
// poller forgot readiness older than the call, so the answer's arrival is
// sure to wake it; the caller must know that nothing was waiting to be read
// before (an exchange in lockstep: a request, then its answer). The wait
// honours the read deadline. werr is an errNotSent if the wait could not
// begin, the deadline having passed already. n > 0 comes with a nil err;
// io.EOF means the peer closed.
func (r *waitReader) sendThenRead(out, p []byte) (n int, werr, err error) {
	r.out, r.p, r.written = out, p, false
	return r.run()
}

// readOrWait reads once into p, waiting for the poller if nothing is there;
// waited tells whether it had to.
func (r *waitReader) readOrWait(p []byte) (n int, waited bool, err error) {
	r.out, r.p, r.written = nil, p, true
	n, _, err = r.run()
	return n, r.waited, err
}

func (r *waitReader) run() (int, error, error) {
	r.n, r.werr, r.err, r.waited = 0, nil, nil, false
	rerr := r.raw.Read(r.step)
	r.out, r.p = nil, nil
	switch {
	case r.werr != nil:
		return 0, r.werr, nil
	case rerr != nil && !r.written:
		// The wait could not begin (closed, or the deadline passed
		// already): nothing was sent.
		return 0, errNotSent{rerr}, nil
	case rerr != nil:
		return 0, nil, rerr
	}
	return r.n, nil, r.err
}

// errNotSent is a sendThenRead that wrote nothing.
type errNotSent struct{ error }

func (e errNotSent) Unwrap() error { return e.error }

func (r *waitReader) stepFD(fd uintptr) bool {
	if !r.written {
		r.written = true
		n, errno := writeFD(fd, r.out)
		switch {
		case errno == syscall.EAGAIN:
			// The socket's buffer is full: the rest goes the usual
			// way, which waits for room.
			if _, r.werr = r.conn.Write(r.out[n:]); r.werr != nil {
				return true
			}
		case errno != 0:
			r.werr = r.opError("write", errno)
			return true
		}
		if r.sent != nil {
			r.sent.Store(true)
		}
		return false
	}
	n, errno := readFD(fd, r.p)
	switch {
	case errno == syscall.EAGAIN:
		r.waited = true
		return false
	case errno != 0:
		r.err = r.opError("read", errno)
	case n == 0 && len(r.p) > 0:
		r.err = io.EOF
	}
	r.n = n
	return true
}

// readFD reads from a non-blocking socket without waiting. It returns how
// much it read, or why nothing: EAGAIN when nothing is there, another
// syscall.Errno when the read failed; 0 bytes and no errno for a non-empty
// p means the peer closed.
func readFD(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	for {
		n, errno := recvFD(fd, p)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			return 0, errno // n is not a count then
		}
		return n, 0
	}
}

// writeFD writes p to a non-blocking socket without waiting. It returns
// how much it wrote and, if that is not all of p, why: EAGAIN when the
// socket's buffer is full, another syscall.Errno when the write failed.
func writeFD(fd uintptr, p []byte) (int, syscall.Errno) {
	n := 0
	for n < len(p) {
		m, errno := sendFD(fd, p[n:])
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			return n, errno
		}
		n += m
	}
	return n, 0
}

// opError wraps a failed read or write as net.Conn's methods do.
func (r *waitReader) opError(op string, errno syscall.Errno) error {
	local := r.conn.LocalAddr()
	return &net.OpError{Op: op, Net: local.Network(), Source: local, Addr: r.conn.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
