package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// connPair returns both ends of a loopback TCP connection.
func connPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); accepted <- c }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

// patterned returns n bytes that repeat with a period prime to any buffer
// size, so a byte sent twice or skipped shows.
func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func TestSendThenRead(t *testing.T) {
	c, peer := connPair(t)
	wr := newWaitReader(c, nil)
	go func() {
		b := make([]byte, 4)
		n, _ := peer.Read(b)
		peer.Write(append([]byte("re:"), b[:n]...))
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, werr, err := wr.sendThenRead([]byte("ping"), buf)
	if werr != nil || err != nil || string(buf[:n]) != "re:ping" {
		t.Errorf("got %q, %v, %v; want re:ping", buf[:n], werr, err)
	}
	peer.Close()
	n, waited, err := wr.readOrWait(buf)
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("after the peer closed: %d bytes (waited %v), %v; want EOF", n, waited, err)
	}
}

// A deadline that passed before the wait began: nothing is sent, and the
// caller is told so (it sends as usual, or counts the request unsent).
func TestSendThenReadDeadlinePassed(t *testing.T) {
	c, peer := connPair(t)
	wr := newWaitReader(c, nil)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	_, werr, _ := wr.sendThenRead([]byte("ping"), make([]byte, 16))
	if !errors.As(werr, new(errNotSent)) || !errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Errorf("werr = %v; want errNotSent for the deadline", werr)
	}
	peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := peer.Read(make([]byte, 16)); n != 0 {
		t.Errorf("the peer got %d bytes; want none", n)
	}
}

// A message larger than the socket's buffers: the write without a wait
// sends what fits, the rest waits for the peer, and every byte arrives once,
// in order.
func TestSendThenReadLargerThanSocketBuffer(t *testing.T) {
	c, peer := connPair(t)
	wr := newWaitReader(c, nil)
	out := patterned(16 << 20)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(out))
		n, _ := io.ReadFull(peer, b)
		peer.Write([]byte("done"))
		got <- b[:n]
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, werr, err := wr.sendThenRead(out, buf)
	if werr != nil || err != nil || string(buf[:n]) != "done" {
		t.Fatalf("got %q, %v, %v; want done", buf[:n], werr, err)
	}
	if b := <-got; !bytes.Equal(b, out) {
		t.Errorf("the peer got %d bytes, not the %d sent", len(b), len(out))
	}
}

// A write to a peer that is gone fails at once, with the error wrapped as
// net.Conn.Write wraps it, not after the read's wait.
func TestSendThenReadPeerGone(t *testing.T) {
	c, peer := connPair(t)
	wr := newWaitReader(c, nil)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // an RST: the write fails
	time.Sleep(50 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, werr, err := wr.sendThenRead(make([]byte, 1<<20), make([]byte, 16))
	var oe *net.OpError
	if !errors.As(werr, &oe) || oe.Op != "write" || !errors.Is(werr, syscall.ECONNRESET) {
		t.Errorf("werr = %v, err = %v; want a write *net.OpError for ECONNRESET", werr, err)
	}
}

// writeFD goes on after a short write while the socket takes more, and
// what the peer gets is what was written, in order.
func TestWriteFDShortWrites(t *testing.T) {
	c, peer := connPair(t)
	if err := c.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	out := patterned(1 << 20)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	sent, calls := 0, 0
	var errno syscall.Errno
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	werr := raw.Write(func(fd uintptr) bool {
		var n int
		n, errno = writeFD(fd, out[sent:])
		sent += n
		calls++
		return errno != syscall.EAGAIN // else wait for room, then again
	})
	if werr != nil || errno != 0 {
		t.Fatalf("after %d of %d bytes: %v, %v", sent, len(out), werr, errno)
	}
	c.Close()
	if b := <-got; !bytes.Equal(b, out) {
		t.Errorf("the peer got %d bytes, not the %d written (or not in order)", len(b), len(out))
	}
	t.Logf("%d bytes in %d calls of writeFD", sent, calls)
}
