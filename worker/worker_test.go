package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeEnv is an env over a map, recording which listener it was asked for.
func fakeEnv(vars map[string]string, pid int) (env, *string) {
	var asked string
	return env{
		getenv:   func(k string) string { return vars[k] },
		unsetenv: func(k string) error { delete(vars, k); return nil },
		getpid:   func() int { return pid },
		fileListener: func(fd uintptr, name string) (net.Listener, error) {
			asked = fmt.Sprintf("fd %d %s", fd, name)
			return net.Listen("tcp", "127.0.0.1:0")
		},
		listen: func(network, addr string) (net.Listener, error) {
			asked = network + " " + addr
			return net.Listen("tcp", "127.0.0.1:0")
		},
	}, &asked
}

func TestListen(t *testing.T) {
	tests := []struct {
		name      string
		vars      map[string]string
		taken     bool
		wantAsked string
		wantErr   string
		wantUnset bool // LISTEN_* gone afterwards
	}{
		{name: "shared_socket: fd 3", vars: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "42", "LISTEN_FDNAMES": "web", "PORT": "3000"},
			wantAsked: "fd 3 web", wantUnset: true},
		{name: "systemd without LISTEN_PID check", vars: map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}, wantAsked: "fd 3 a", wantUnset: true},
		{name: "another process's sockets: PORT", vars: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "41", "PORT": "3000"},
			wantAsked: "tcp 127.0.0.1:3000"},
		{name: "proxy mode: PORT on loopback", vars: map[string]string{"PORT": "40123"}, wantAsked: "tcp 127.0.0.1:40123"},
		{name: "LISTEN_FDS=0: PORT", vars: map[string]string{"LISTEN_FDS": "0", "PORT": "8080"}, wantAsked: "tcp 127.0.0.1:8080"},
		{name: "neither", vars: map[string]string{}, wantErr: "LISTEN_FDS (herd's shared_socket mode) and PORT (herd's proxy mode) are both unset"},
		{name: "bad LISTEN_FDS", vars: map[string]string{"LISTEN_FDS": "x", "PORT": "1"}, wantErr: `LISTEN_FDS="x" is not a count`},
		{name: "bad PORT", vars: map[string]string{"PORT": "http"}, wantErr: `PORT="http" is not a port number`},
		{name: "PORT out of range", vars: map[string]string{"PORT": "70000"}, wantErr: `PORT="70000"`},
		{name: "again after the inherited socket", vars: map[string]string{"PORT": "3000"}, taken: true, wantErr: "Listen called again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, asked := fakeEnv(tt.vars, 42)
			ln, _, err := e.listenOnce(tt.taken)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v; want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
			if *asked != tt.wantAsked {
				t.Errorf("listened on %q; want %q", *asked, tt.wantAsked)
			}
			_, still := tt.vars["LISTEN_FDS"]
			if tt.wantUnset && still {
				t.Errorf("LISTEN_FDS still set; children would take the socket")
			}
		})
	}
	e, _ := fakeEnv(map[string]string{}, 1)
	if _, _, err := e.listenOnce(false); !errors.Is(err, ErrNoListener) {
		t.Errorf("err %v; want ErrNoListener", err)
	}
}

// The inherited-socket path for real: a listener's fd given as fd 3 to a
// child (this test binary again), as herd's exec does.
func TestListenInheritedSocket(t *testing.T) {
	if os.Getenv("WORKER_TEST_CHILD") == "1" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid())) // herd's shim does this before exec
		ln, err := Listen()
		if err != nil {
			fmt.Println("child:", err)
			os.Exit(3)
		}
		fmt.Println("child: env", os.Getenv("LISTEN_FDS") == "", ln.Addr())
		c, err := ln.Accept()
		if err != nil {
			os.Exit(4)
		}
		io.WriteString(c, "hello from the child\n")
		c.Close()
		os.Exit(0)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^TestListenInheritedSocket$")
	cmd.Env = append(os.Environ(), "WORKER_TEST_CHILD=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=web")
	cmd.ExtraFiles = []*os.File{f}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first, _ := bufio.NewReader(out).ReadString('\n')
	if want := "child: env true " + ln.Addr().String(); strings.TrimSpace(first) != want {
		t.Fatalf("child said %q; want %q", first, want)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if string(got) != "hello from the child\n" {
		t.Errorf("read %q from the shared socket; want the child's greeting", got)
	}
}

func TestReady(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		pipe     bool
		socket   string // "", "live", "gone"
		badFD    string
		wantPipe bool
		wantSock bool
		wantErr  string
	}{
		{name: "not under herd: no-op"},
		{name: "shared_socket: pipe", pipe: true, wantPipe: true},
		{name: "notify socket", socket: "live", wantSock: true},
		{name: "both", pipe: true, socket: "live", wantPipe: true, wantSock: true},
		{name: "herd closed the socket after the pipe spoke", pipe: true, socket: "gone", wantPipe: true},
		{name: "only a dead socket", socket: "gone", wantErr: "notify socket"},
		{name: "bad HERD_READY_FD", badFD: "two", wantErr: `HERD_READY_FD="two"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			var rd *os.File
			if tt.pipe {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				rd = r
				// A copy of the write end, as herd's fd 4: Ready closes it.
				fd, err := syscall.Dup(int(w.Fd()))
				if err != nil {
					t.Fatal(err)
				}
				w.Close()
				vars["HERD_READY_FD"] = strconv.Itoa(fd)
			}
			if tt.badFD != "" {
				vars["HERD_READY_FD"] = tt.badFD
			}
			var sock *net.UnixConn
			if tt.socket != "" {
				path := filepath.Join(dir, fmt.Sprintf("n%d.sock", i))
				c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
				if err != nil {
					t.Fatal(err)
				}
				if tt.socket == "gone" {
					c.Close()
				} else {
					defer c.Close()
					sock = c
				}
				vars["NOTIFY_SOCKET"] = path
			}
			e, _ := fakeEnv(vars, 1)
			err := e.ready()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v; want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantPipe {
				got, _ := io.ReadAll(rd) // EOF: Ready closed its end
				if string(got) != "READY=1\n" {
					t.Errorf("pipe got %q; want READY=1", got)
				}
				if _, ok := vars["HERD_READY_FD"]; ok {
					t.Errorf("HERD_READY_FD still set")
				}
			}
			if tt.wantSock {
				buf := make([]byte, 64)
				sock.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := sock.Read(buf)
				if err != nil || string(buf[:n]) != "READY=1" {
					t.Errorf("socket got %q, %v; want READY=1", buf[:n], err)
				}
			}
		})
	}
}

func TestDrainTimeout(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"", 4500 * time.Millisecond, false}, // herd's default 5s less 500 ms
		{"10s", 9500 * time.Millisecond, false},
		{"30000", 29500 * time.Millisecond, false}, // bare ms, as in herd.yaml
		{"2s", 1800 * time.Millisecond, false},     // a tenth when that is less
		{"1.5s", 1350 * time.Millisecond, false},
		{"soon", 4500 * time.Millisecond, true},
		{"-1s", 4500 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			e, _ := fakeEnv(map[string]string{"HERD_KILL_TIMEOUT": tt.value}, 1)
			got, err := e.drainTimeout()
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("drainTimeout(%q) = %s, %v; want %s, error %v", tt.value, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// Serve in process: a signal (SIGINT to this test process, caught
// by Serve) drains a request in flight; a drain that outlasts the bound
// returns an error and cuts it.
func TestServeDrain(t *testing.T) {
	tests := []struct {
		name      string
		kill      string        // HERD_KILL_TIMEOUT
		bound     time.Duration // Options.DrainTimeout
		hold      time.Duration // how long the request in flight takes
		bySignal  bool
		wantErr   bool
		wantReply bool
	}{
		{name: "SIGINT drains the request", kill: "5s", hold: 300 * time.Millisecond, bySignal: true, wantReply: true},
		{name: "ctx canceled drains the request", kill: "5s", hold: 300 * time.Millisecond, wantReply: true},
		{name: "past the bound: cut, error", kill: "300ms", hold: 5 * time.Second, wantErr: true},
		{name: "Options.DrainTimeout over the env", kill: "60s", bound: 300 * time.Millisecond, hold: 5 * time.Second, wantErr: true},
		{name: "Options.DrainTimeout longer than the env", kill: "100ms", bound: 5 * time.Second, hold: 300 * time.Millisecond, wantReply: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HERD_KILL_TIMEOUT", tt.kill)
			t.Setenv("HERD_READY_FD", "")
			// Ready's datagram is how the test knows signals are caught.
			notify := filepath.Join(t.TempDir(), "n.sock")
			nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			t.Setenv("NOTIFY_SOCKET", notify)

			started := make(chan struct{})
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				select {
				case <-time.After(tt.hold):
					io.WriteString(w, "done")
				case <-r.Context().Done():
				}
			})}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			served := make(chan error, 1)
			go func() { served <- (Options{Listener: ln, DrainTimeout: tt.bound}).Serve(ctx, srv) }()
			buf := make([]byte, 16)
			if n, err := nc.Read(buf); err != nil || string(buf[:n]) != "READY=1" {
				t.Fatalf("notify: %q %v", buf[:n], err)
			}
			reply := make(chan string, 1)
			go func() {
				client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				res, err := client.Get("http://" + ln.Addr().String() + "/")
				if err != nil {
					reply <- "error: " + err.Error()
					return
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					reply <- "error: " + err.Error()
					return
				}
				reply <- string(body)
			}()
			<-started
			if tt.bySignal {
				syscall.Kill(os.Getpid(), syscall.SIGINT)
			} else {
				cancel()
			}
			err = <-served
			if got := <-reply; (got == "done") != tt.wantReply {
				t.Errorf("client got %q; want the answer %v", got, tt.wantReply)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("Serve = %v; want error %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err %v; want context.DeadlineExceeded", err)
			}
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Close()
				t.Errorf("the listener still accepts after Serve returned")
			}
		})
	}
}
