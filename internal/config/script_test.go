package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScript(t *testing.T) {
	tests := []struct {
		name        string
		command     string
		interpreter string
		iargs       string
		want        string // "" for nothing to check
	}{
		{"node app.js", "node app.js", "", "", "app.js"},
		{"nodejs path", "/usr/bin/nodejs ./srv/app.js --port 3", "", "", "./srv/app.js"},
		{"node flags", "node --enable-source-maps --max-old-space-size=2048 server.js", "", "", "server.js"},
		{"node -r takes a value", "node -r dotenv/config app.js", "", "", "app.js"},
		{"node -e has no script", "node -e 'require(\"./x\")'", "", "", ""},
		{"node alone", "node", "", "", ""},
		{"node a folder or bare name", "node server", "", "", ""},
		{"node after --", "node -- app.js", "", "", "app.js"},
		{"python3 -u", "python3 -u worker.py", "", "", "worker.py"},
		{"python -W takes a value", "python -W ignore x.py", "", "", "x.py"},
		{"python -m has no script", "python3 -m http.server 8000", "", "", ""},
		{"ruby -I takes a value", "ruby -I lib app.rb", "", "", "app.rb"},
		{"php", "php -d memory_limit=1G index.php", "", "", "index.php"},
		{"php -S is a server", "php -S 0.0.0.0:8000", "", "", ""},
		{"deno run", "deno run -A --config deno.json main.ts", "", "", "main.ts"},
		{"deno task is not a script", "deno task start", "", "", ""},
		{"deno run of a URL", "deno run https://example.com/x.ts", "", "", ""},
		{"bun file", "bun src/index.ts", "", "", "src/index.ts"},
		{"bun run file", "bun run index.ts", "", "", "index.ts"},
		{"bun run a package script", "bun run dev", "", "", ""},
		{"expanded at start", "node $SCRIPT", "", "", ""},
		{"not an interpreter", "./server --port 3", "", "", ""},
		{"npm start", "npm start", "", "", ""},
		{"interpreter: node", "app.js --x", "node", "", "app.js"},
		{"interpreter: node, a bare name is still the script", "server", "node", "", "server"},
		{"interpreter with args", "app.js", "node", "--inspect", "app.js"},
		{"interpreter herd does not know", "run.sh a b", "bash", "", "run.sh"},
		{"unknown interpreter, an option first", "-c 'echo'", "bash", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := SplitCommand(tc.command)
			if err != nil {
				t.Fatal(err)
			}
			iargs, _ := SplitCommand(tc.iargs)
			a := &App{Command: cmd, Interpreter: tc.interpreter, InterpreterArgs: iargs}
			got, i := a.Script()
			if got != tc.want {
				t.Fatalf("Script() = %q; want %q", got, tc.want)
			}
			if got != "" && a.Argv()[i] != got {
				t.Errorf("index %d is %q in %q; want the script", i, a.Argv()[i], a.Argv())
			}
		})
	}
}

// TestScriptNotFound: a missing script fails validation with its line, as
// PM2 says "Script not found" before starting anything.
func TestScriptNotFound(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Fake interpreters, so that the test needs none installed.
	bin := t.TempDir()
	for _, name := range []string{"node", "python3", "deno"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	const route = "routes:\n  - {path: /, to: web}\n"
	tests := []struct {
		name, app string // the lines under apps.web, from line 3
		want      string // the problem, or ""
	}{
		{"there", "    command: node app.js\n", ""},
		{"missing", "    command: node nope.js\n",
			"herd.yaml:3: apps.web.command: script nope.js not found (looked for " + filepath.Join(dir, "nope.js") + "; a relative path starts at the app's cwd); fix the path, or set cwd: to the folder that holds it"},
		{"missing with interpreter:", "    interpreter: node\n    command: ./nope.js\n", "herd.yaml:4: apps.web.command: script ./nope.js not found"},
		{"python3", "    command: python3 -u worker.py\n", "herd.yaml:3: apps.web.command: script worker.py not found"},
		{"deno run", "    command: deno run -A main.ts\n", "herd.yaml:3: apps.web.command: script main.ts not found"},
		{"relative to cwd", "    cwd: " + t.TempDir() + "\n    command: node app.js\n", "herd.yaml:4: apps.web.command: script app.js not found"},
		{"a build makes it", "    build: 'true'\n    command: node dist/server.js\n", ""},
		{"no script", "    command: node -e 'setInterval(() => {}, 1000)'\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yml := "apps:\n  web:\n" + tc.app + route
			c, err := Parse(filepath.Join(dir, "herd.yaml"), []byte(yml))
			got := ""
			if err != nil {
				got = strings.ReplaceAll(err.Error(), filepath.Join(dir, "herd.yaml"), "herd.yaml")
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got problems:\n%s\nwant none", got)
				}
				_ = c
				return
			}
			if !strings.HasPrefix(got, tc.want) || strings.Contains(got, "\n") {
				t.Errorf("got problems:\n%s\nwant one starting:\n%s", got, tc.want)
			}
		})
	}
}

// TestCheckListenersShared: `herd check` finds a shared_socket app's
// listen: in use, with its line, as `herd up` does when it binds it.
func TestCheckListenersShared(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	tests := []struct {
		name, yaml, want string
	}{
		{"shared listen in use",
			"listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\napps:\n  web:\n    command: sh\n    mode: shared_socket\n    listen: " + addr + "\n",
			"herd.yaml:7: apps.web.listen: " + addr + " is already in use; pick a free port or stop whatever holds it"},
		{"shared listen free",
			"listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\napps:\n  web:\n    command: sh\n    mode: shared_socket\n    listen: 127.0.0.1:0\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("herd.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if ps := CheckListeners(c); ps != nil {
				got = ps.Error()
			}
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
	// Bind leaves nothing bound when one address fails.
	c, err := Parse("herd.yaml", []byte(tests[0].yaml))
	if err != nil {
		t.Fatal(err)
	}
	c.Listen = "127.0.0.1:0"
	if ls, ps := Bind(c, c.Listeners()); ls != nil || len(ps) != 1 {
		t.Errorf("Bind = %v, %v; want no listeners and one problem", ls, ps)
	}
}
