package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBadConfigRefusedBeforeStart runs `herd up` and `herd check` on broken
// configs: each must exit 2 with a file:line message naming the fix, and
// `herd up` must start no instance.
func TestBadConfigRefusedBeforeStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	const good = "apps:\n  web:\n    command: TESTAPP\n    instances: 2\nroutes:\n  - path: /\n    to: web\n"
	tests := []struct {
		name string
		body string // after the listen: and admin: lines (lines 1 and 2)
		want []string
	}{
		{
			name: "unknown key",
			body: "apps:\n  web:\n    command: TESTAPP\n    instnces: 2\nroutes:\n  - path: /\n    to: web\n",
			want: []string{`herd.yaml:6: apps.web.instnces: unknown key "instnces"; did you mean "instances"?`},
		},
		{
			name: "wrong type",
			body: "apps:\n  web:\n    command: TESTAPP\n    instances: lots\nroutes:\n  - path: /\n    to: web\n",
			want: []string{`herd.yaml:6: apps.web.instances: "lots" is not a number; write a whole number like 3, or "max"`},
		},
		{
			name: "missing command",
			body: "apps:\n  web:\n    instances: 2\nroutes:\n  - path: /\n    to: web\n",
			want: []string{`herd.yaml:4: apps.web: no command; add command:`},
		},
		{
			name: "command not found",
			body: "apps:\n  web:\n    command: ./no/such/server --flag\nroutes:\n  - path: /\n    to: web\n",
			want: []string{`herd.yaml:5: apps.web.command: ./no/such/server not found`, "build it first or fix the path"},
		},
		{
			name: "unknown to",
			body: "apps:\n  web:\n    command: TESTAPP\nroutes:\n  - path: /\n    to: wbe\n",
			want: []string{`herd.yaml:8: routes.0.to: no app or upstream named "wbe"; did you mean "web"?`},
		},
		{
			name: "port in use",
			body: "PUBLIC_BUSY\n" + good,
			want: []string{`herd.yaml:1: listen: ` + busy.Addr().String() + ` is already in use; pick a free port or stop whatever holds it`},
		},
		{
			name: "unknown serve endpoint",
			body: good + "  - path: /h\n    serve: healthz\n",
			want: []string{`herd.yaml:11: routes.1.serve: unknown endpoint "healthz"; write serve: health or serve: services`},
		},
		{
			name: "registry redis not a URL",
			body: good + "registry:\n  redis: 127.0.0.1:6379\n",
			want: []string{`herd.yaml:11: registry.redis: "127.0.0.1:6379" is not a Redis URL; write redis://HOST:PORT/DB`},
		},
		{
			name: "registry redis not answering",
			body: good + "registry:\n  redis: redis://127.0.0.1:1/0\n",
			want: []string{`herd.yaml:11: registry.redis: registry: connecting to redis at 127.0.0.1:1`, "start Redis or fix the URL"},
		},
		{
			name: "rate limit redis not answering",
			body: good + "    rate_limit: {rate: 10r/s, redis: \"redis://127.0.0.1:1/0\"}\n",
			want: []string{`herd.yaml:8: routes.0: route /: rate_limit.redis: connecting to redis at 127.0.0.1:1`, "start Redis or fix the URL"},
		},
		{
			name: "several problems at once, in line order",
			body: "apps:\n  web:\n    command: TESTAPP\n    instances: -1\n    balance: x\nroutes:\n  - path: api\n    to: web\n",
			want: []string{
				"herd.yaml:6: apps.web.instances: -1 instances cannot run",
				`herd.yaml:7: apps.web.balance: unknown key "balance"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			path, _, _ := writeConfig(t, "")
			text, _ := os.ReadFile(path)
			cfg := string(text)
			if strings.HasPrefix(body, "PUBLIC_BUSY\n") {
				body = strings.TrimPrefix(body, "PUBLIC_BUSY\n")
				cfg = regexp.MustCompile(`(?m)^listen: .*$`).ReplaceAllString(cfg, "listen: "+busy.Addr().String())
			}
			cfg += strings.ReplaceAll(body, "TESTAPP", testappBin)
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"up", "check"} {
				var stdout, stderr bytes.Buffer
				c := exec.Command(herdBin, cmd, "-f", path)
				c.Dir = filepath.Dir(path)
				c.Stdout, c.Stderr = &stdout, &stderr
				err := c.Run()
				code := c.ProcessState.ExitCode()
				if code != 2 {
					t.Fatalf("herd %s: exit %d (%v); want 2\nstdout: %s\nstderr: %s", cmd, code, err, stdout.String(), stderr.String())
				}
				got := strings.ReplaceAll(stderr.String(), filepath.Dir(path)+"/", "")
				for _, w := range tc.want {
					if !strings.Contains(got, w) {
						t.Errorf("herd %s stderr:\n%s\nwant a line containing:\n%s", cmd, got, w)
					}
				}
				if cmd == "up" && (stdout.Len() > 0 || strings.Contains(got, "herd listening") || strings.Contains(got, "instance ready")) {
					t.Errorf("herd up started something on a bad config:\nstdout: %s\nstderr: %s", stdout.String(), got)
				}
			}
		})
	}
}

func TestCheckAcceptsGoodConfig(t *testing.T) {
	path, _, _ := writeConfig(t, "apps:\n  web:\n    command: TESTAPP\nroutes:\n  - path: /\n    to: web\n")
	out, err := exec.Command(herdBin, "check", "-f", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok (1 apps, 1 routes)") {
		t.Fatalf("herd check: %v\n%s", err, out)
	}
}
