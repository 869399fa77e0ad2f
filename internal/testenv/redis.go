package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RedisServerBin is the redis-server binary StartRedis runs.
var RedisServerBin = "/usr/bin/redis-server"

// PrivateRedis is a redis-server of one test's own, on a free loopback port
// in t.TempDir(). The test may Stop and Start it again on the same port to
// make an outage. It is stopped in t.Cleanup. Its methods are safe for
// concurrent use.
type PrivateRedis struct {
	t    testing.TB
	Port int
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// URL returns the redis:// URL of the server (database 0).
func (r *PrivateRedis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Addr returns host:port.
func (r *PrivateRedis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// StartRedis starts a private redis-server for the test. Without the binary
// the test skips, or fails under HERD_REQUIRE_SERVICES=1.
func StartRedis(t testing.TB) *PrivateRedis {
	t.Helper()
	if _, err := os.Stat(RedisServerBin); err != nil {
		msg := "redis-server is not available at " + RedisServerBin + ": apt-get install redis-server"
		if os.Getenv("HERD_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &PrivateRedis{t: t, Port: port, dir: t.TempDir()}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the server again on its port (no-op while it runs) and waits
// until it accepts connections.
func (r *PrivateRedis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command(RedisServerBin,
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("testenv: start redis-server: %v", err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr(), 100*time.Millisecond)
		if err == nil {
			// PING answers only once the server has loaded.
			c.SetDeadline(time.Now().Add(time.Second))
			if _, err = c.Write([]byte("PING\r\n")); err == nil {
				buf := make([]byte, 7)
				n, _ := c.Read(buf)
				c.Close()
				if n >= 5 && string(buf[:5]) == "+PONG" {
					return
				}
			} else {
				c.Close()
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.t.Fatalf("testenv: redis-server on %d did not start: %v\n%s", r.Port, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit (no-op when stopped).
func (r *PrivateRedis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}
