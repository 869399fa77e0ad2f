package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace a test made: a host of its own, with its own
// loopback, addresses, routes and port space.
type Netns struct {
	Name string
	// IP is its address on the LAN (empty for a namespace without one).
	IP string
}

// LAN is a private network of network namespaces: Hub holds a bridge with
// address 10.203.0.1/24, and each of Hosts hangs off it on a veth pair with
// 10.203.0.(i+2)/24. Nothing is added to the caller's own namespace, so the
// test reaches the hosts only through Dial and Command, and their traffic
// never leaves these namespaces.
type LAN struct {
	Hub   *Netns
	Hosts []*Netns
}

var netnsSeq atomic.Int64

// NewLAN makes a hub and n hosts, deleted in t.Cleanup (even if the test
// fails). It needs root and ip(8) (iproute2); without them the test skips,
// or fails under HERD_REQUIRE_SERVICES=1.
func NewLAN(t testing.TB, n int) *LAN {
	t.Helper()
	ip := Tool(t, "ip")
	if os.Geteuid() != 0 {
		missing(t, "network namespaces need root (ip netns add); run the test as root")
	}
	if n < 1 || n > 200 {
		t.Fatalf("testenv: NewLAN(%d): want 1 to 200 hosts", n)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("testenv: ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Names carry the pid and a counter: two test processes, or two LANs
	// in one, never meet; cleanup deletes exactly these.
	base := fmt.Sprintf("herd%d-%d", os.Getpid(), netnsSeq.Add(1))
	add := func(name, addr string) *Netns {
		t.Helper()
		run("netns", "add", name)
		t.Cleanup(func() {
			if out, err := exec.Command(ip, "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("testenv: ip netns del %s: %v\n%s", name, err, out)
			}
		})
		run("-n", name, "link", "set", "lo", "up")
		return &Netns{Name: name, IP: addr}
	}
	lan := &LAN{Hub: add(base+"-hub", "10.203.0.1")}
	run("-n", lan.Hub.Name, "link", "add", "br0", "type", "bridge")
	run("-n", lan.Hub.Name, "addr", "add", "10.203.0.1/24", "dev", "br0")
	run("-n", lan.Hub.Name, "link", "set", "br0", "up")
	for i := range n {
		h := add(fmt.Sprintf("%s-h%d", base, i+1), fmt.Sprintf("10.203.0.%d", i+2))
		// Made inside the hub, one end then moved: no interface ever
		// appears in the caller's namespace.
		port := fmt.Sprintf("p%d", i+1)
		run("-n", lan.Hub.Name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.Name)
		run("-n", lan.Hub.Name, "link", "set", port, "master", "br0")
		run("-n", lan.Hub.Name, "link", "set", port, "up")
		run("-n", h.Name, "addr", "add", h.IP+"/24", "dev", "eth0")
		run("-n", h.Name, "link", "set", "eth0", "up")
		lan.Hosts = append(lan.Hosts, h)
	}
	return lan
}

// Command runs name in the namespace (ip netns exec, which execs it: the
// process started is name itself, so signals reach it directly).
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// DialContext connects from inside the namespace. Use it as an
// http.Transport's DialContext.
func (n *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.in(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens inside the namespace.
func (n *Netns) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.in(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// in runs f on an OS thread moved into the namespace: sockets f makes stay
// there after the thread is gone.
func (n *Netns) in(f func() error) error {
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine ends locked, so the runtime
		// discards the thread instead of reusing it in this namespace.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- fmt.Errorf("testenv: opening namespace %s: %w", n.Name, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("testenv: entering namespace %s: %w", n.Name, err)
			return
		}
		done <- f()
	}()
	return <-done
}
