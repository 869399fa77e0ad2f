package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildStep: build: runs before the instances start and before a
// reload; a failing build stops herd up, or the reload, with its output.
func TestBuildStep(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    build: mkdir -p bin && cp TESTAPP bin/web
    command: ./bin/web --greeting built
    instances: 2
routes:
  - path: /
    to: web
`)
	var who whoAmI
	if code := h.getJSON("http://"+h.public+"/", &who); code != 200 || who.Greeting != "built" {
		t.Fatalf("GET / = %d %+v; want the built app", code, who)
	}
	pids := h.pids()

	h.rewriteConfig(t, "mkdir -p bin && cp", "echo main.go:3:undefined-x >&2; exit 1; cp")
	out, err := h.cli("reload", "web")
	if err == nil || !strings.Contains(out, "apps.web.build:") || !strings.Contains(out, "main.go:3:undefined-x") ||
		!strings.Contains(out, "the running instances keep serving") {
		t.Fatalf("reload with a failing build: %v\n%s\nwant an error with the build's output", err, out)
	}
	if now := h.pids(); len(now) != 2 || now[0] != pids[0] || now[1] != pids[1] {
		t.Errorf("instances after a failed build: %v; want the old ones %v", now, pids)
	}

	// herd up with that config fails before starting anything.
	path := filepath.Join(h.dir, "herd.yaml")
	text, _ := os.ReadFile(path)
	fresh, _, _ := writeConfig(t, "")
	header, _ := os.ReadFile(fresh)
	body := string(text)[strings.Index(string(text), "apps:"):]
	os.WriteFile(fresh, append(header, body...), 0o644)
	var stderr bytes.Buffer
	c := exec.Command(herdBin, "up", "-f", fresh)
	c.Stderr = &stderr
	if err := c.Run(); err == nil || !strings.Contains(stderr.String(), "main.go:3:undefined-x") || strings.Contains(stderr.String(), "instance ready") {
		t.Errorf("herd up with a failing build: %v\n%s\nwant a failure with the build's output and nothing started", err, stderr.String())
	}
}
