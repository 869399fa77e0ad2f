package deploytest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herdhq/herd/internal/cli"
)

// TestDeployHealthCommand runs `herd health`, the image's HEALTHCHECK, against
// admin listeners that answer healthy, unhealthy, or not at all.
func TestDeployHealthCommand(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer healthy.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"unavailable","failing":["orders","users"]}`))
	}))
	defer failing.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	// A config whose admin: is the healthy server's address, on every
	// interface: herd health reaches it on loopback.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "herd.yaml")
	port := healthy.Listener.Addr().String()[strings.LastIndex(healthy.Listener.Addr().String(), ":"):]
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nadmin: 0.0.0.0"+port+"\nadmin_auth: {insecure: true}\napps:\n  w:\n    command: sh\n    ready: none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		output string // a line it must hold, stdout and stderr together
	}{
		{"healthy by --url", []string{"health", "--url", healthy.URL + "/health"}, 0, ": ok"},
		{"healthy by the config's admin address", []string{"health", "-f", cfg}, 0, "http://127.0.0.1" + port + "/health: ok"},
		{"unhealthy names what fails", []string{"health", "--url", failing.URL + "/health"}, 1, "503 Service Unavailable; failing: orders, users"},
		{"nothing listening", []string{"health", "--url", gone.URL + "/health"}, 1, "connection refused"},
		{"no config", []string{"health", "-f", filepath.Join(dir, "missing.yaml")}, 1, "cannot read the config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := cli.Main(tc.args, &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.output) {
				t.Errorf("herd %s: got exit %d and %q; want exit %d and %q", strings.Join(tc.args, " "), code, out.String(), tc.code, tc.output)
			}
		})
	}
}
