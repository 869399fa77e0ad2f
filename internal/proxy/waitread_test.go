package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
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
	out := make([]byte, 16<<20)
	for i := range out {
		out[i] = byte(i % 251)
	}
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

// A write to a peer that is gone reports the error as net.Conn.Write does.
func TestSendThenReadPeerGone(t *testing.T) {
	c, peer := connPair(t)
	wr := newWaitReader(c, nil)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // an RST: the write fails
	time.Sleep(50 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, werr, err := wr.sendThenRead(make([]byte, 1<<20), make([]byte, 16))
	if werr == nil && err == nil {
		t.Fatal("sendThenRead to a reset connection succeeded")
	}
	var oe *net.OpError
	if werr != nil && !errors.As(werr, &oe) {
		t.Errorf("werr = %#v; want a *net.OpError as from net.Conn.Write", werr)
	}
}
