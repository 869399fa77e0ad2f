package cli

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck runs `herd check` on configs that load with a warning, or that
// fail on what only check's extra steps find.
func TestCheck(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	const head = "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n"
	tests := []struct {
		name     string
		yaml     string
		code     int
		stderr   string // a line it must hold
		noStdout bool
	}{
		{"a bare small duration warns, and passes", head + "apps:\n  web:\n    command: sh\n    listen_timeout: 2\nroutes:\n  - {path: /, to: web}\n", 0,
			"warning: herd.yaml:6: apps.web.listen_timeout: 2 is 2ms (a number without a unit is milliseconds, as in PM2); did you mean 2s?", false},
		{"a shared_socket listen: in use", head + "apps:\n  web:\n    command: sh\n    mode: shared_socket\n    listen: " + busy.Addr().String() + "\n", 2,
			"herd.yaml:7: apps.web.listen: " + busy.Addr().String() + " is already in use", true},
		{"a missing script", head + "apps:\n  web:\n    command: nope.sh\n    interpreter: sh\nroutes:\n  - {path: /, to: web}\n", 2,
			"herd.yaml:5: apps.web.command: script nope.sh not found", true},
		{"a worker without routes", head + "apps:\n  worker:\n    command: sh\n    ready: none\n", 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "herd.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := Main([]string{"check", "-f", path}, &stdout, &stderr)
			got := strings.ReplaceAll(stderr.String(), path, "herd.yaml")
			if code != tc.code {
				t.Fatalf("exit %d; want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), got)
			}
			if tc.stderr != "" && !strings.Contains(got, tc.stderr) {
				t.Errorf("stderr:\n%s\nwant a line holding:\n%s", got, tc.stderr)
			}
			if tc.stderr == "" && got != "" {
				t.Errorf("stderr:\n%s\nwant nothing", got)
			}
			if ok := strings.Contains(stdout.String(), ": ok ("); ok == tc.noStdout {
				t.Errorf("stdout %q; want ok: %v", stdout.String(), !tc.noStdout)
			}
		})
	}
}
