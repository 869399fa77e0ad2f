package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotifyAndSIGHUP runs herd as systemd would: with NOTIFY_SOCKET
// set, herd says READY=1 once its apps serve, RELOADING=1 and READY=1 around
// a SIGHUP reload, and STOPPING=1 on SIGTERM; instances never see the socket.
func TestSystemdNotifyAndSIGHUP(t *testing.T) {
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	messages := make(chan string, 16)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			messages <- string(buf[:n])
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-messages:
			if got != want {
				t.Fatalf("systemd got %q; want %q", got, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("systemd never got %q", want)
		}
	}

	t.Setenv("NOTIFY_SOCKET", sockPath)
	h := startHerdNoWait(t, `
apps:
  web:
    command: TESTAPP --greeting v1
    instances: 2
    ready: {http: /health}
routes:
  - path: /
    to: web
`)
	expect("READY=1")
	if code, body := get(t, "http://"+h.public+"/env?name=NOTIFY_SOCKET"); code != 200 || len(body) != 0 {
		t.Errorf("an instance sees NOTIFY_SOCKET=%q; want it unset", body)
	}
	before := h.pids()
	h.rewriteConfig(t, "--greeting v1", "--greeting v2")
	h.cmd.Process.Signal(syscall.SIGHUP)
	expect("RELOADING=1")
	expect("READY=1")
	if code, body := get(t, "http://"+h.public+"/"); code != 200 || !strings.Contains(string(body), `"greeting":"v2"`) {
		t.Errorf("after SIGHUP GET / = %d %s; want the reloaded v2", code, body)
	}
	for _, p := range before {
		if alive(p) {
			t.Errorf("pid %d survived the SIGHUP reload", p)
		}
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	expect("STOPPING=1")
	if code := h.waitExit(15 * time.Second); code != 0 {
		t.Errorf("exit code %d; want 0", code)
	}
}

func TestStartupAndImport(t *testing.T) {
	path, _, _ := writeConfig(t, "apps:\n  web:\n    command: TESTAPP\nroutes:\n  - path: /\n    to: web\n")
	out, err := exec.Command(herdBin, "startup", "systemd", "-f", path, "--user", "nobody").Output()
	if err != nil {
		t.Fatalf("herd startup systemd: %v", err)
	}
	unit := string(out)
	for _, want := range []string{"Type=notify", "up -f " + path, "ExecReload=/bin/kill -HUP $MAINPID", "User=nobody", "TimeoutStopSec=40"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}

	dir := t.TempDir()
	eco := filepath.Join(dir, "ecosystem.json")
	os.WriteFile(eco, []byte(`{"apps":[{"name":"web","script":"`+testappBin+`","args":"--greeting imported","instances":2,"env":{"PORT":"`+strings.Split(freeAddr(t), ":")[1]+`"}}]}`), 0o644)
	herdYAML := filepath.Join(dir, "herd.yaml")
	cmd := exec.Command(herdBin, "import", "pm2", eco, "-o", herdYAML)
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "env.PORT") {
		t.Fatalf("herd import pm2: %v\n%s", err, out)
	}
	if out, err := exec.Command(herdBin, "import", "pm2", eco, "-o", herdYAML).CombinedOutput(); err == nil || !strings.Contains(string(out), "--force") {
		t.Errorf("import over an existing file: %v\n%s; want a refusal naming --force", err, out)
	}
	// The imported file runs as written.
	data, _ := os.ReadFile(herdYAML)
	cfgText := strings.Replace(string(data), "admin: 127.0.0.1:9090", "admin: "+freeAddr(t), 1)
	os.WriteFile(herdYAML, []byte(cfgText), 0o644)
	if out, err := exec.Command(herdBin, "check", "-f", herdYAML).CombinedOutput(); err != nil {
		t.Fatalf("herd check on the imported file: %v\n%s\n%s", err, out, cfgText)
	}
}
