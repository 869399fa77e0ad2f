package config

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// parseProblems parses yml and returns its problems, one a line, or "".
func parseProblems(t *testing.T, yml string) (*Config, string) {
	t.Helper()
	c, err := Parse("herd.yaml", []byte(yml))
	if err == nil {
		return c, ""
	}
	var ps Errors
	if !errors.As(err, &ps) {
		t.Fatalf("got error %T %v; want Errors", err, err)
	}
	return nil, err.Error()
}

// TestReadinessModes covers the readiness modes beside the port probes:
// process (ready: none) and ipc (wait_ready), and what they allow and refuse.
func TestReadinessModes(t *testing.T) {
	const route = "routes:\n  - {path: /, to: web}\n"
	tests := []struct {
		name    string
		yaml    string
		want    Ready  // of the first app, when there is no problem
		problem string // the whole message, or a part of it; "" for none
	}{
		{"ready: none is process", "apps:\n  worker: {command: sh, ready: none}\n", Ready{Process: true}, ""},
		{"ready: process", "apps:\n  worker: {command: sh, ready: process}\n", Ready{Process: true}, ""},
		{"ready: {process: true}", "apps:\n  worker: {command: sh, ready: {process: true}}\n", Ready{Process: true}, ""},
		{"ready: ipc", "apps:\n  worker: {command: sh, ready: ipc}\n", Ready{IPC: true}, ""},
		{"ready: /health", "apps:\n  web: {command: sh, ready: /health}\n" + route, Ready{HTTP: "/health"}, ""},
		{"ready: tcp", "apps:\n  web: {command: sh, ready: tcp}\n" + route, Ready{TCP: true}, ""},
		{"ready: notify", "apps:\n  web: {command: sh, ready: notify}\n" + route, Ready{Notify: true}, ""},
		{"wait_ready is ipc", "apps:\n  web: {command: sh, wait_ready: true}\n" + route, Ready{IPC: true}, ""},
		{"wait_ready in shared_socket mode is ipc", "apps:\n  web: {command: sh, wait_ready: true, mode: shared_socket, listen: ':3000'}\n", Ready{IPC: true}, ""},
		{"shared_socket defaults to notify", "apps:\n  web: {command: sh, mode: shared_socket, listen: ':3000'}\n", Ready{Notify: true}, ""},
		{"workers need no routes", "apps:\n  a: {command: sh, ready: none}\n  b: {command: sh, ready: ipc}\n", Ready{Process: true}, ""},
		{"a worker beside a shared_socket app needs no routes", "apps:\n  a: {command: sh, ready: none}\n  b: {command: sh, mode: shared_socket, listen: ':3000'}\n", Ready{Process: true}, ""},
		{"an app with a port still needs a route", "apps:\n  web: {command: sh}\n  worker: {command: sh, ready: none}\n", Ready{},
			"herd.yaml:1: routes: no routes; add one, like routes: [{path: /, to: web}]"},
		{"a route to a process app", "apps:\n  worker: {command: sh, ready: none}\nroutes:\n  - {path: /, to: worker}\n", Ready{},
			"herd.yaml:4: routes.0.to: app worker serves no port (ready: process); remove the route or give it a readiness check on its port, like ready: {http: /health}"},
		{"two modes", "apps:\n  web:\n    command: sh\n    ready: {process: true, ipc: true}\n", Ready{},
			"herd.yaml:4: apps.web.ready: set exactly one of http: /path, tcp: true, notify: true, ipc: true or process: true (got 2)"},
		{"an unknown word", "apps:\n  web:\n    command: sh\n    ready: sometimes\n" + route, Ready{},
			`herd.yaml:4: apps.web.ready: unknown readiness "sometimes"; write a path like /health, tcp, notify, ipc, none`},
		{"wait_ready against ready", "apps:\n  web:\n    command: sh\n    wait_ready: true\n    ready: notify\n" + route, Ready{},
			"herd.yaml:4: apps.web.wait_ready: wait_ready: true means ready: {ipc: true}"},
		{"shared_socket with process", "apps:\n  web:\n    command: sh\n    mode: shared_socket\n    listen: ':3000'\n    ready: none\n", Ready{},
			"herd.yaml:6: apps.web.ready: a shared_socket app is ready when it says so"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, got := parseProblems(t, tc.yaml)
			if tc.problem != "" {
				if !strings.Contains(got, tc.problem) || strings.Count(got, "\n") != 0 {
					t.Fatalf("got problems:\n%s\nwant one containing:\n%s", got, tc.problem)
				}
				return
			}
			if got != "" {
				t.Fatalf("got problems:\n%s\nwant none", got)
			}
			if c.Apps[0].Ready != tc.want {
				t.Errorf("got ready %+v; want %+v", c.Apps[0].Ready, tc.want)
			}
		})
	}
}

func TestInstancesMaxMinus(t *testing.T) {
	tests := []struct {
		in      string
		want    Instances
		problem string
	}{
		{"max", Instances(runtime.NumCPU()), ""},
		{"max-1", Instances(max(runtime.NumCPU()-1, 1)), ""},
		{"MAX-2", Instances(max(runtime.NumCPU()-2, 1)), ""},
		{"max-1000", 1, ""},
		{"max-0", 0, `"max-0": write max-N with N a whole number of 1 or more`},
		{"max-x", 0, `"max-x": write max-N`},
		{"-1", 0, `-1 instances cannot run; write 1 or more, "max" (one per CPU), or "max-1", which is what PM2's -1 means`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			c, got := parseProblems(t, "apps:\n  web: {command: sh, instances: '"+tc.in+"'}\nroutes:\n  - {path: /, to: web}\n")
			if tc.problem != "" {
				if !strings.Contains(got, tc.problem) {
					t.Fatalf("got problems:\n%s\nwant one containing %q", got, tc.problem)
				}
				return
			}
			if got != "" {
				t.Fatalf("got problems:\n%s\nwant none", got)
			}
			if c.Apps[0].Instances != tc.want {
				t.Errorf("got %d instances; want %d", c.Apps[0].Instances, tc.want)
			}
		})
	}
}

// TestUnitlessDurationWarning: a bare number is milliseconds, as in PM2,
// and one too small to be meant is warned of, with its line.
func TestUnitlessDurationWarning(t *testing.T) {
	tests := []struct {
		name, value string
		want        string // the warning, or ""
	}{
		{"2 is 2ms", "2", "herd.yaml:5: apps.web.listen_timeout: 2 is 2ms (a number without a unit is milliseconds, as in PM2); did you mean 2s?"},
		{"49 is warned", "49", "herd.yaml:5: apps.web.listen_timeout: 49 is 49ms (a number without a unit is milliseconds, as in PM2); did you mean 49s?"},
		{"50 is not", "50", ""},
		{"0 is the default", "0", ""},
		{"a unit is meant", "2ms", ""},
		{"seconds", "2s", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, problems := parseProblems(t, "apps:\n  web:\n    command: sh\n    instances: 1\n    listen_timeout: "+tc.value+"\nroutes:\n  - {path: /, to: web}\n")
			if problems != "" {
				t.Fatal(problems)
			}
			got := ""
			if len(c.Warnings) > 0 {
				got = c.Warnings.Error()
			}
			if got != tc.want {
				t.Errorf("got warnings %q; want %q", got, tc.want)
			}
		})
	}
}
