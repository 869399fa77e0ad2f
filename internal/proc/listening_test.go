package proc

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestParseHexAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0100007F:0BB8", "127.0.0.1:3000"},
		{"00000000:1F90", ":8080"},
		{"00000000000000000000000000000000:0050", ":80"},
		{"00000000000000000000000001000000:1F90", "[::1]:8080"},
	}
	for _, tc := range tests {
		got, err := parseHexAddr(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseHexAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseHexAddr("zz:1"); err == nil {
		t.Error("parseHexAddr accepted a malformed address")
	}
}

// A child in its own process group listens on a port it chose; the group's
// listening addresses name it, and not a port it merely connected to.
func TestListeningAddrsOfAChildGroup(t *testing.T) {
	if os.Getenv("HERD_PROC_LISTEN_CHILD") == "1" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString(strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestListeningAddrsOfAChildGroup$")
	cmd.Env = append(os.Environ(), "HERD_PROC_LISTEN_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var port int
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	if port, err = strconv.Atoi(string(buf[:n-1])); err != nil {
		t.Fatalf("child said %q", buf[:n])
	}
	got, err := ListeningAddrs(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1:" + strconv.Itoa(port); !slices.Contains(got, want) {
		t.Errorf("ListeningAddrs = %v; want it to hold %s", got, want)
	}
	// This test process listens too, but is not in the child's group.
	mine, _ := net.Listen("tcp", "127.0.0.1:0")
	defer mine.Close()
	got, _ = ListeningAddrs(cmd.Process.Pid)
	if slices.Contains(got, mine.Addr().String()) {
		t.Errorf("ListeningAddrs = %v holds the parent's %s", got, mine.Addr())
	}
}
