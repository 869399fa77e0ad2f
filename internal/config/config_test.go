package config

import (
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if c.Listen != "127.0.0.1:8080" || c.Admin != "127.0.0.1:9090" {
		t.Errorf("listen/admin = %s/%s", c.Listen, c.Admin)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "127.0.0.1/32" {
		t.Errorf("trusted_proxies = %v", c.TrustedProxies)
	}
	if len(c.Apps) != 2 || c.Apps[0].Name != "web" || c.Apps[1].Name != "api" {
		t.Fatalf("apps not in file order: %v", c.Apps)
	}
	web := c.Apps[0]
	want := &App{
		Name: "web", Line: 5,
		Command:       Command{"sh", "-c", `echo "hi there"`},
		Cwd:           dir,
		Env:           map[string]string{"NODE_ENV": "production", "WORKERS": "4", "DEBUG": "false"},
		Instances:     3,
		InstanceVar:   "WORKER_ID",
		Ready:         Ready{HTTP: "/health"},
		ListenTimeout: Duration(20 * time.Second), RestartDelay: Duration(250 * time.Millisecond),
		MinUptime: Duration(2 * time.Second), MaxRestarts: 5,
		DrainTimeout: Duration(time.Minute), KillTimeout: Duration(1500 * time.Millisecond),
		StopSignal: Signal(syscall.SIGINT), Reload: ReloadOptions{Parallel: 2}, MaxFails: 3, FailTimeout: Duration(30 * time.Second),
	}
	if !reflect.DeepEqual(web, want) {
		t.Errorf("web =\n%+v\nwant\n%+v", web, want)
	}
	api := c.Apps[1]
	if int(api.Instances) != runtime.NumCPU() || !api.Ready.Notify || api.InstanceVar != "NODE_APP_INSTANCE" ||
		api.KillTimeout != Duration(5*time.Second) || api.MaxRestarts != 16 || api.StopSignal != Signal(syscall.SIGTERM) {
		t.Errorf("api defaults wrong: %+v", api)
	}
	if r := c.Routes[0]; r.Path != "/api" || r.To != "api" || r.Balance != RandomTwo || r.QueueTimeout != Duration(2*time.Second) || r.Line != 27 {
		t.Errorf("routes[0] = %+v", r)
	}
	if r := c.Routes[1]; r.Balance != RoundRobin || r.QueueTimeout != Duration(5*time.Second) {
		t.Errorf("routes[1] defaults = %+v", r)
	}
	if got := c.Line("apps.web.instances"); got != 9 {
		t.Errorf("Line(apps.web.instances) = %d; want 9", got)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("herd.yaml", []byte("apps:\n  web:\n    command: sh\nroutes:\n  - {path: /, to: web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if c.Listen != ":8080" || c.Admin != "127.0.0.1:9090" || a.Instances != 1 || !a.Ready.TCP ||
		a.ListenTimeout != Duration(10*time.Second) || a.RestartDelay != Duration(100*time.Millisecond) ||
		a.MinUptime != Duration(time.Second) || a.DrainTimeout != Duration(30*time.Second) || a.MaxFails != 1 ||
		a.FailTimeout != Duration(10*time.Second) {
		t.Errorf("defaults not applied: %+v %+v", c, a)
	}
}

func TestProblems(t *testing.T) {
	const head = "apps:\n  web:\n    command: sh\n"
	const route = "routes:\n  - path: /\n    to: web\n"
	tests := []struct {
		name string
		yaml string
		want []string // each a line of the error, in order
	}{
		{"unknown top-level key", "lisen: :80\n" + head + route,
			[]string{`herd.yaml:1: lisen: unknown key "lisen"; did you mean "listen"?`}},
		{"unknown app key, far from any", head + "    colour: red\n" + route,
			[]string{`herd.yaml:4: apps.web.colour: unknown key "colour"; valid keys: command, cwd,`}},
		{"instances not a number", head + "    instances: lots\n" + route,
			[]string{`herd.yaml:4: apps.web.instances: "lots" is not a number; write a whole number like 3, or "max"`}},
		{"instances a list", head + "    instances: [1]\n" + route,
			[]string{`herd.yaml:4: apps.web.instances: want a number of instances, got a list`}},
		{"apps a list", "apps: [web]\n" + route,
			[]string{`herd.yaml:1: apps: want a mapping of names to settings, got a list`}},
		{"missing command", "apps:\n  web:\n    instances: 2\n" + route,
			[]string{`herd.yaml:2: apps.web: no command; add command:`}},
		{"command not found", "apps:\n  web:\n    command: ./nope\n" + route,
			[]string{`herd.yaml:3: apps.web.command: ./nope not found (looked for `}},
		{"command not in PATH", "apps:\n  web:\n    command: no-such-program-xyz\n" + route,
			[]string{`herd.yaml:3: apps.web.command: "no-such-program-xyz" is not in PATH`}},
		{"empty command", "apps:\n  web:\n    command: \"\"\n" + route,
			[]string{`herd.yaml:3: apps.web.command: the command is empty`}},
		{"unterminated quote", "apps:\n  web:\n    command: sh -c 'oops\n" + route,
			[]string{`herd.yaml:3: apps.web.command: unterminated ' quote`}},
		{"unknown to", head + "routes:\n  - path: /\n    to: wbe\n",
			[]string{`herd.yaml:6: routes.0.to: no app named "wbe"; did you mean "web"? (apps: web)`}},
		{"bad balance", head + "routes:\n  - path: /\n    to: web\n    balance: fastest\n",
			[]string{`herd.yaml:7: routes.0.balance: unknown policy "fastest"; write round_robin, least_conn or random_two`}},
		{"bad duration", head + "    kill_timeout: soon\n" + route,
			[]string{`herd.yaml:4: apps.web.kill_timeout: "soon" is not a duration; write one like 10s`}},
		{"negative duration", head + "    kill_timeout: -1s\n" + route,
			[]string{`herd.yaml:4: apps.web.kill_timeout: "-1s" is negative`}},
		{"bad signal", head + "    stop_signal: SIGNOPE\n" + route,
			[]string{`herd.yaml:4: apps.web.stop_signal: unknown signal "SIGNOPE"; write one of SIGTERM`}},
		{"two ready modes", head + "    ready: {http: /health, tcp: true}\n" + route,
			[]string{`herd.yaml:4: apps.web.ready: set exactly one of http: /path, tcp: true or notify: true (got 2)`}},
		{"ready http not a path", head + "    ready: {http: health}\n" + route,
			[]string{`herd.yaml:4: apps.web.ready.http: "health" is not a path; write one starting with /`}},
		{"bool not bool", head + "    ready: {tcp: yes please}\n" + route,
			[]string{`herd.yaml:4: apps.web.ready.tcp: "yes please" is not true or false`}},
		{"bad trusted proxy", "trusted_proxies: [10.0.0.0/33]\n" + head + route,
			[]string{`herd.yaml:1: trusted_proxies.0: "10.0.0.0/33" is not a CIDR`}},
		{"route path without slash", head + "routes:\n  - path: api\n    to: web\n",
			[]string{`herd.yaml:5: routes.0.path: "api" must start with /; write /api`}},
		{"duplicate route", head + route + "  - path: /\n    to: web\n",
			[]string{`herd.yaml:7: routes.1.path: path / is already routed by routes.0`}},
		{"same listen and admin", "listen: 127.0.0.1:9000\nadmin: 127.0.0.1:9000\n" + head + route,
			[]string{`herd.yaml:2: admin: the admin listener cannot share 127.0.0.1:9000 with listen`}},
		{"no routes", head,
			[]string{`herd.yaml:1: routes: no routes; add one`}},
		{"empty file", "",
			[]string{`herd.yaml:1: the config is empty`}},
		{"top level is a list", "- a\n- b\n",
			[]string{`herd.yaml:1: want a mapping of keys (listen:, apps:, routes:…) at the top, got a list`}},
		{"yaml syntax error", "listen: :80\napps:\n\tweb: {}\n",
			[]string{`herd.yaml:3: YAML syntax: found character that cannot start any token; check indentation and quoting`}},
		{"several problems, in line order", "apps:\n  web:\n    command: sh\n    instances: 0\n    kill_timeout: x\nroutes:\n  - path: /\n    to: web\n",
			[]string{
				`herd.yaml:4: apps.web.instances: 0 instances cannot run`,
				`herd.yaml:5: apps.web.kill_timeout: "x" is not a duration`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("herd.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v); want problems", c)
			}
			var problems Errors
			if !errors.As(err, &problems) {
				t.Fatalf("error %T %v; want Errors", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d problems:\n%s\nwant %d", len(lines), err, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d:\ngot  %s\nwant %s…", i, lines[i], w)
				}
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"./bin/web --greeting hi", []string{"./bin/web", "--greeting", "hi"}, false},
		{"  a   b\tc ", []string{"a", "b", "c"}, false},
		{`node -e 'console.log("x y")'`, []string{"node", "-e", `console.log("x y")`}, false},
		{`echo "a \"b\" \$HOME \n"`, []string{"echo", `a "b" $HOME \n`}, false},
		{`a\ b c`, []string{"a b", "c"}, false},
		{`x''y ""`, []string{"xy", ""}, false},
		{`$PORT`, []string{"$PORT"}, false},
		{"", nil, false},
		{`'open`, nil, true},
		{`"open`, nil, true},
	}
	for _, tc := range tests {
		got, err := SplitCommand(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("SplitCommand(%q) error = %v; want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckListeners(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	c, err := Parse("herd.yaml", []byte("admin: 127.0.0.1:0\nlisten: "+busy.Addr().String()+"\napps:\n  web:\n    command: sh\nroutes:\n  - {path: /, to: web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := CheckListeners(c).Error()
	want := "herd.yaml:2: listen: " + busy.Addr().String() + " is already in use; pick a free port or stop whatever holds it"
	if got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("apps:\n  web:\n    command: sh\nroutes:\n  - {path: /, to: web}\n"))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("apps: {a: {command: [x, 1], env: {K: [1]}, ready: {http: 3}}}\nroutes: [{path: 1}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err == nil && c == nil {
			t.Fatal("no config and no error")
		}
		if err != nil && c != nil {
			t.Fatal("a config and an error")
		}
	})
}
