package systemd

import (
	"github.com/herdhq/herd/internal/testenv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUnit(t *testing.T) {
	u := Unit(UnitOptions{Herd: "/usr/local/bin/herd", Config: "/srv/my app/herd.yaml", User: "web", Env: "production", StopTimeout: 35500 * time.Millisecond})
	for _, want := range []string{
		"Type=notify",
		`ExecStart=/usr/local/bin/herd up -f "/srv/my app/herd.yaml" --env production`,
		"ExecReload=/bin/kill -HUP $MAINPID",
		`WorkingDirectory="/srv/my app"`,
		"KillMode=mixed",
		"TimeoutStopSec=36",
		"User=web",
		"WantedBy=multi-user.target",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
}

// TestUnitVerifies runs systemd-analyze verify on a unit for real files,
// where systemd-analyze is installed.
func TestUnitVerifies(t *testing.T) {
	analyze := testenv.Tool(t, "systemd-analyze") // Debian package systemd
	dir := t.TempDir()
	herd, _ := exec.LookPath("true")
	cfg := filepath.Join(dir, "herd.yaml")
	os.WriteFile(cfg, []byte("{}"), 0o644)
	unit := filepath.Join(dir, "herd-test.service")
	os.WriteFile(unit, []byte(Unit(UnitOptions{Herd: herd, Config: cfg, StopTimeout: 10 * time.Second})), 0o644)
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	// verify also complains about the host's own units in containers; only
	// lines about our unit count.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "herd-test.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil && !strings.Contains(string(out), "herd-test.service") {
		t.Logf("systemd-analyze exited %v with nothing about our unit:\n%s", err, out)
	}
}

func TestNotify(t *testing.T) {
	if err := Notify("READY=1"); os.Getenv("NOTIFY_SOCKET") == "" && err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v; want nil", err)
	}
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _ := conn.Read(buf)
	if string(buf[:n]) != "READY=1" {
		t.Errorf("got %q; want READY=1", buf[:n])
	}
}
