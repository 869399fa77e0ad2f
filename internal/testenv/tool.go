package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Tool returns the path of the program name (node, python3,
// systemd-analyze, …) that a test runs. Without it the test skips, unless
// HERD_REQUIRE_SERVICES=1, where it fails: scripts/test.sh installs every
// tool the tests ask for, so a missing one is a broken install.
func Tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed; `make test` (scripts/test.sh) installs it"
	if os.Getenv("HERD_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
