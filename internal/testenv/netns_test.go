package testenv

import (
	"bufio"
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// TestLAN: a server in one host answers a client in another and in the
// hub; the caller's own namespace cannot reach it; cleanup removes the
// namespaces.
func TestLAN(t *testing.T) {
	var names []string
	t.Run("lan", func(t *testing.T) {
		lan := NewLAN(t, 2)
		for _, n := range append([]*Netns{lan.Hub}, lan.Hosts...) {
			names = append(names, n.Name)
		}
		l, err := lan.Hosts[0].Listen("tcp", lan.Hosts[0].IP+":7000")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hello from h1\n"))
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, from := range []*Netns{lan.Hosts[1], lan.Hub} {
			c, err := from.DialContext(ctx, "tcp", lan.Hosts[0].IP+":7000")
			if err != nil {
				t.Fatalf("dialling host 1 from %s: %v", from.Name, err)
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if line != "hello from h1\n" {
				t.Errorf("%s read %q from host 1; want hello from h1", from.Name, line)
			}
		}
		// This machine's own network may accept any connection (a proxy),
		// so what tells is whether host 1's server answers.
		if c, err := net.DialTimeout("tcp", lan.Hosts[0].IP+":7000", 300*time.Millisecond); err == nil {
			c.SetDeadline(time.Now().Add(300 * time.Millisecond))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if line == "hello from h1\n" {
				t.Errorf("the test's own namespace reached host 1's server; the LAN should be closed to it")
			}
		}
	})
	for _, name := range names {
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			t.Errorf("namespace %s left after the test", name)
		}
	}
}
