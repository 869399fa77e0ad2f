package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadFull is the golden test: testdata/full.yaml, which sets every key,
// decodes to these values.
func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	on := true // the default of security_headers
	defaultRetry := Retry{On: []string{"error", "timeout"}, Tries: 2}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Apps) != 2 || len(c.Routes) != 2 {
		t.Fatalf("got %d apps and %d routes; want 2 and 2", len(c.Apps), len(c.Routes))
	}
	web, api := c.Apps[0], c.Apps[1]
	tests := []struct {
		name      string
		got, want any
	}{
		{"file", c.File, "testdata/full.yaml"},
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"admin", c.Admin, "127.0.0.1:9090"},
		{"trusted_proxies", c.TrustedProxies[0].String() + " " + c.TrustedProxies[1].String(), "10.0.0.0/8 127.0.0.1/32"},
		{"apps in file order", web.Name + " " + api.Name, "web api"},
		{"web.Line", web.Line, 5},
		{"web.command", web.Command, Command{"sh", "-c", `echo "hi there"`}},
		{"web.cwd", web.Cwd, dir},
		{"web.env", web.Env, map[string]string{"NODE_ENV": "production", "WORKERS": "4", "DEBUG": "false"}},
		{"web.instances", web.Instances, Instances(3)},
		{"web.instance_var", web.InstanceVar, "WORKER_ID"},
		{"web.ready", web.Ready, Ready{HTTP: "/health"}},
		{"web.listen_timeout", web.ListenTimeout, Duration(20 * time.Second)},
		{"web.restart_delay (bare ms)", web.RestartDelay, Duration(250 * time.Millisecond)},
		{"web.min_uptime", web.MinUptime, Duration(2 * time.Second)},
		{"web.max_restarts", web.MaxRestarts, 5},
		{"web.drain_timeout", web.DrainTimeout, Duration(time.Minute)},
		{"web.kill_timeout", web.KillTimeout, Duration(1500 * time.Millisecond)},
		{"web.stop_signal", web.StopSignal, Signal(syscall.SIGINT)},
		{"web.reload", web.Reload, ReloadOptions{Parallel: 2}},
		{"web.max_fails", web.MaxFails, 3},
		{"web.fail_timeout", web.FailTimeout, Duration(30 * time.Second)},
		{"api.command (a list)", api.Command, Command{"sh", "-c", "exit 0"}},
		{"api.instances max", api.Instances, Instances(runtime.NumCPU())},
		{"api.ready", api.Ready, Ready{Notify: true}},
		{"routes.0", *c.Routes[0], Route{Line: 27, Path: "/api", To: "api", Balance: RandomTwo, QueueTimeout: Duration(2 * time.Second), SecurityHeaders: &on, MaxBody: 10 << 20, Retry: defaultRetry}},
		{"routes.1 defaults", *c.Routes[1], Route{Line: 31, Path: "/", To: "web", Balance: RoundRobin, QueueTimeout: Duration(5 * time.Second), SecurityHeaders: &on, MaxBody: 10 << 20, Retry: defaultRetry}},
		{"Line(apps.web.instances)", c.Line("apps.web.instances"), 9},
		{"Line(apps.web)", c.Line("apps.web"), 5},
		{"Line(apps.web.env.WORKERS)", c.Line("apps.web.env.WORKERS"), 8},
		{"Line(routes.1)", c.Line("routes.1"), 31},
		{"Line(routes.0.to)", c.Line("routes.0.to"), 28},
		{"Line(never written)", c.Line("apps.api.cwd"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %#v; want %#v", tc.got, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("herd.yaml", []byte("apps:\n  web:\n    command: sh\nroutes:\n  - {path: /, to: web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, r := c.Apps[0], c.Routes[0]
	dir, _ := filepath.Abs(".")
	tests := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"admin", c.Admin, "127.0.0.1:9090"},
		{"instances", a.Instances, Instances(1)},
		{"instance_var", a.InstanceVar, "NODE_APP_INSTANCE"},
		{"ready", a.Ready, Ready{TCP: true}},
		{"listen_timeout", a.ListenTimeout, Duration(10 * time.Second)},
		{"restart_delay", a.RestartDelay, Duration(100 * time.Millisecond)},
		{"min_uptime", a.MinUptime, Duration(time.Second)},
		{"max_restarts", a.MaxRestarts, 16},
		{"drain_timeout", a.DrainTimeout, Duration(30 * time.Second)},
		{"kill_timeout", a.KillTimeout, Duration(5 * time.Second)},
		{"stop_signal", a.StopSignal, Signal(syscall.SIGTERM)},
		{"reload.parallel", a.Reload.Parallel, 1},
		{"max_fails", a.MaxFails, 1},
		{"fail_timeout", a.FailTimeout, Duration(10 * time.Second)},
		{"cwd is the config's folder", a.Cwd, dir},
		{"balance", r.Balance, RoundRobin},
		{"queue_timeout", r.QueueTimeout, Duration(5 * time.Second)},
		{"mode", a.Mode, ProxyMode},
		{"autorestart", *a.Autorestart, true},
		{"weight", a.Weight, 1},
		{"app proxy", a.Proxy, ProxyOptions{ConnectTimeout: Duration(3 * time.Second), ReadTimeout: Duration(60 * time.Second),
			SendTimeout: Duration(60 * time.Second), Keepalive: 256, KeepaliveTimeout: Duration(4 * time.Second)}},
		{"logs", c.Logs, Logs{Dir: filepath.Join(dir, ".herd/logs"), MaxSize: 10 << 20, MaxFiles: 5, MaxAge: Duration(14 * 24 * time.Hour)}},
		{"access_log", c.AccessLog, AccessLog{Format: "combined", Path: filepath.Join(dir, ".herd/logs/access.log")}},
		{"server", []any{c.Server.ReadHeaderTimeout, c.Server.IdleTimeout, c.Server.MaxHeaderBytes, *c.Server.FastPath, *c.Server.MergeSlashes},
			[]any{Duration(10 * time.Second), Duration(75 * time.Second), Size(64 << 10), true, true}},
		{"tls stays off", c.TLS, TLS{}},
		{"registry", []any{c.Registry.TTL, c.Registry.Prefix, c.Registry.Advertise, c.Registry.Check},
			[]any{Duration(30 * time.Second), "herd:", "127.0.0.1", HealthCheck{Path: "/health", Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second), Passes: 1, Fails: 2}}},
		{"route security_headers", *r.SecurityHeaders, true},
		{"route max_body", r.MaxBody, Size(10 << 20)},
		{"route retry", r.Retry, Retry{On: []string{"error", "timeout"}, Tries: 2}},
		{"route compress stays off", r.Compress, Compress{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %#v; want %#v", tc.got, tc.want)
			}
		})
	}
}

// TestAccepted checks inputs that must parse, and what they parse to.
func TestAccepted(t *testing.T) {
	const route = "routes:\n  - {path: /, to: web}\n"
	tests := []struct {
		name  string
		yaml  string
		check func(c *Config) (got, want any)
	}{
		{"duration in ms", "apps:\n  web: {command: sh, kill_timeout: 1500}\n" + route,
			func(c *Config) (any, any) { return c.Apps[0].KillTimeout, Duration(1500 * time.Millisecond) }},
		{"signal as TERM", "apps:\n  web: {command: sh, stop_signal: term}\n" + route,
			func(c *Config) (any, any) { return c.Apps[0].StopSignal, Signal(syscall.SIGTERM) }},
		{"signal as a number", "apps:\n  web: {command: sh, stop_signal: 10}\n" + route,
			func(c *Config) (any, any) { return c.Apps[0].StopSignal, Signal(10) }},
		{"IPv6 address is a /128", "trusted_proxies: ['::1']\napps:\n  web: {command: sh}\n" + route,
			func(c *Config) (any, any) { return c.TrustedProxies[0].String(), "::1/128" }},
		{"CIDR is masked", "trusted_proxies: [10.1.2.3/8]\napps:\n  web: {command: sh}\n" + route,
			func(c *Config) (any, any) { return c.TrustedProxies[0].String(), "10.0.0.0/8" }},
		{"relative cwd joins the config's folder", "apps:\n  web: {command: sh, cwd: testdata}\n" + route,
			func(c *Config) (any, any) {
				dir, _ := filepath.Abs("testdata")
				return c.Apps[0].Cwd, dir
			}},
		{"merge keys", "x-base: &base {instances: 2, env: {A: '1'}}\n" +
			"apps:\n  web: {<<: *base, command: sh, instances: 3}\n  api: {<<: *base, command: sh}\n" + route,
			func(c *Config) (any, any) {
				return []any{c.Apps[0].Instances, c.Apps[1].Instances, c.Apps[1].Env["A"], c.Line("apps.api.instances")},
					[]any{Instances(3), Instances(2), "1", 1}
			}},
		{"aliases", "apps:\n  web: {command: &sh sh}\n  api: {command: *sh}\n" + route,
			func(c *Config) (any, any) { return c.Apps[1].Command, Command{"sh"} }},
		{"null means the default", "apps:\n  web:\n    command: sh\n    kill_timeout:\n" + route,
			func(c *Config) (any, any) { return c.Apps[0].KillTimeout, Duration(5 * time.Second) }},
		{"env scalars are their text", "apps:\n  web:\n    command: sh\n    env: {A: 1.50, B: true, C: 'x y', D: 0x1F}\n" + route,
			func(c *Config) (any, any) {
				return c.Apps[0].Env, map[string]string{"A": "1.50", "B": "true", "C": "x y", "D": "0x1F"}
			}},
		{"env_NAME blocks", "apps:\n  web:\n    command: sh\n    env_production: {A: prod}\n" + route,
			func(c *Config) (any, any) { return c.Apps[0].EnvSets["production"]["A"], "prod" }},
		{"registry as a Redis URL", "registry: redis://10.0.0.5:6379/0\napps:\n  web: {command: sh}\n" + route,
			func(c *Config) (any, any) {
				return []any{c.Registry.Redis, c.Registry.Prefix, time.Duration(c.Registry.TTL)}, []any{"redis://10.0.0.5:6379/0", "herd:", 30 * time.Second}
			}},
		{"registry as a mapping", "registry: {redis: 'redis://r:6379/1', ttl: 10s, require: [web]}\napps:\n  web: {command: sh}\n" + route,
			func(c *Config) (any, any) {
				return []any{c.Registry.Redis, time.Duration(c.Registry.TTL), c.Registry.Require, c.Registry.Check.Path},
					[]any{"redis://r:6379/1", 10 * time.Second, []string{"web"}, "/health"}
			}},
		{"listen and admin on other hosts", "listen: 127.0.0.1:9090\nadmin: 127.0.0.2:9090\napps:\n  web: {command: sh}\n" + route,
			func(c *Config) (any, any) { return c.Admin, "127.0.0.2:9090" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("herd.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatalf("got error:\n%v\nwant none", err)
			}
			if got, want := tc.check(c); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v; want %#v", got, want)
			}
		})
	}
}

// want is one expected problem: the exact "file:line: path: " it starts
// with, and a phrase of its fix.
type want struct{ at, fix string }

func TestProblems(t *testing.T) {
	const head = "apps:\n  web:\n    command: sh\n" // lines 1-3
	const route = "routes:\n  - path: /\n    to: web\n"
	tests := []struct {
		name string
		yaml string
		want []want // in line order
	}{
		{"cache without a size", head + "routes:\n  - path: /\n    to: web\n    cache: {valid: {200: 1m}}\n",
			[]want{{`herd.yaml:7: routes.0.cache.size: `, `a cache needs a size bounding its memory`}}},
		{"tls without a key", "tls: {listen: \":8443\", cert: c.pem}\n" + head + route,
			[]want{{`herd.yaml:1: tls: `, `tls needs both cert: and key:`}}},
		{"tls with unreadable files", "tls: {listen: \":8443\", cert: c.pem, key: k.pem}\n" + head + route,
			[]want{{`herd.yaml:1: tls.cert: `, `cannot load the certificate and key`}}},
		{"hash with a backup server", head + "upstreams:\n  u:\n    servers: [{url: \"http://127.0.0.1:1\"}, {url: \"http://127.0.0.1:2\", backup: true}]\nroutes:\n  - {path: /, to: u, balance: ip_hash}\n",
			[]want{{`herd.yaml:8: routes.0.balance: `, `ip_hash with backup servers in upstream u`}}},
		{"unknown top-level key", "lisen: :80\n" + head + route,
			[]want{{`herd.yaml:1: lisen: `, `unknown key "lisen"; did you mean "listen"?`}}},
		{"unknown app key, did you mean", head + "    instnces: 2\n" + route,
			[]want{{`herd.yaml:4: apps.web.instnces: `, `did you mean "instances"?`}}},
		{"unknown app key, a synonym", head + "    script: app.js\n" + route,
			[]want{{`herd.yaml:4: apps.web.script: `, `did you mean "command"?`}}},
		{"unknown app key, far from any", head + "    colour: red\n" + route,
			[]want{{`herd.yaml:4: apps.web.colour: `, `valid keys: `}}},
		{"instances not a number", head + "    instances: lots\n" + route,
			[]want{{`herd.yaml:4: apps.web.instances: `, `"lots" is not a number; write a whole number like 3, or "max"`}}},
		{"instances a list", head + "    instances: [1]\n" + route,
			[]want{{`herd.yaml:4: apps.web.instances: `, `got a list; write a whole number like 3, or "max"`}}},
		{"instances zero", head + "    instances: 0\n" + route,
			[]want{{`herd.yaml:4: apps.web.instances: `, `write 1 or more`}}},
		{"int a string", head + "    max_restarts: many\n" + route,
			[]want{{`herd.yaml:4: apps.web.max_restarts: `, `write one, like max_restarts: 16`}}},
		{"string a mapping", "listen: {port: 80}\n" + head + route,
			[]want{{`herd.yaml:1: listen: `, `want a single value, got a mapping (key: value lines); write it like listen: 127.0.0.1:8080`}}},
		{"apps a list", "apps: [web]\n" + route,
			[]want{{`herd.yaml:1: apps: `, `want a mapping of names to settings, got a list; write it like apps: {web: {command: ./server}}`}}},
		{"routes a mapping", head + "routes: {path: /}\n",
			[]want{{`herd.yaml:4: routes: `, `write it like routes: [{path: /, to: web}]`}}},
		{"route item a string", head + "routes:\n  - /\n",
			[]want{{`herd.yaml:5: routes.0: `, `write it like - {path: /, to: web}`}}},
		{"env value a list", head + "    env: {A: [1]}\n" + route,
			[]want{{`herd.yaml:4: apps.web.env.A: `, `write it like NODE_ENV: production`}}},
		{"missing command", "apps:\n  web:\n    instances: 2\n" + route,
			[]want{{`herd.yaml:2: apps.web: `, `no command; add command:`}}},
		{"command not found", "apps:\n  web:\n    command: ./nope --x\n" + route,
			[]want{{`herd.yaml:3: apps.web.command: `, `build it first or fix the path`}}},
		{"command not in PATH", "apps:\n  web:\n    command: no-such-program-xyz\n" + route,
			[]want{{`herd.yaml:3: apps.web.command: `, `"no-such-program-xyz" is not in PATH`}}},
		{"command a folder", "apps:\n  web:\n    command: ./testdata\n" + route,
			[]want{{`herd.yaml:3: apps.web.command: `, `is a folder`}}},
		{"command not executable", "apps:\n  web:\n    command: ./testdata/full.yaml\n" + route,
			[]want{{`herd.yaml:3: apps.web.command: `, `chmod +x`}}},
		{"empty command", "apps:\n  web:\n    command: \"\"\n" + route,
			[]want{{`herd.yaml:3: apps.web.command: `, `the command is empty; write the program`}}},
		{"unterminated quote, not also missing", "apps:\n  web:\n    command: sh -c 'oops\n" + route,
			[]want{{`herd.yaml:3: apps.web.command: `, `unterminated ' quote`}}},
		{"cwd missing", head + "    cwd: no/such/dir\n" + route,
			[]want{{`herd.yaml:4: apps.web.cwd: `, `does not exist; create it or fix the path`}}},
		{"app name", "apps:\n  my app:\n    command: sh\nroutes:\n  - {path: /, to: my app}\n",
			[]want{{`herd.yaml:2: apps.my app: `, `rename it, like my-app`}}},
		{"app defined twice", head + "  web:\n    command: sh\n" + route,
			[]want{{`herd.yaml:4: apps.web: `, `"web" is written twice (first on line 2); keep one`}}},
		{"key written twice", head + "    instances: 2\n    instances: 3\n" + route,
			[]want{{`herd.yaml:5: apps.web.instances: `, `written twice (first on line 4)`}}},
		{"unknown to, did you mean", "apps:\n  web: {command: sh}\n  api: {command: sh}\nroutes:\n  - path: /\n    to: wbe\n",
			[]want{{`herd.yaml:6: routes.0.to: `, `no app or upstream named "wbe"; did you mean "web"? (apps and upstreams: web, api)`}}},
		{"unknown to, far from any", head + "routes:\n  - path: /\n    to: billing\n",
			[]want{{`herd.yaml:6: routes.0.to: `, `no app or upstream named "billing"; name one of them or define it under apps: (apps and upstreams: web)`}}},
		{"route without to", head + "routes:\n  - path: /\n",
			[]want{{`herd.yaml:5: routes.0: `, `no to:; name the app`}}},
		{"bad balance", head + "routes:\n  - path: /\n    to: web\n    balance: fastest\n",
			[]want{{`herd.yaml:7: routes.0.balance: `, `unknown policy "fastest"; write round_robin, least_conn, random_two, ip_hash or hash`}}},
		{"misspelt balance", head + "routes:\n  - path: /\n    to: web\n    balance: least_con\n",
			[]want{{`herd.yaml:7: routes.0.balance: `, `did you mean "least_conn"?`}}},
		{"bad duration", head + "    kill_timeout: soon\n" + route,
			[]want{{`herd.yaml:4: apps.web.kill_timeout: `, `"soon" is not a duration; write one like 10s`}}},
		{"negative duration", head + "    kill_timeout: -1s\n" + route,
			[]want{{`herd.yaml:4: apps.web.kill_timeout: `, `negative; write a duration of 0 or more`}}},
		{"bad signal", head + "    stop_signal: SIGNOPE\n" + route,
			[]want{{`herd.yaml:4: apps.web.stop_signal: `, `write one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGKILL`}}},
		{"ready with two modes", head + "    ready: {http: /health, tcp: true}\n" + route,
			[]want{{`herd.yaml:4: apps.web.ready: `, `set exactly one of http: /path, tcp: true, notify: true, ipc: true or process: true (got 2)`}}},
		{"ready with none", head + "    ready: {tcp: false}\n" + route,
			[]want{{`herd.yaml:4: apps.web.ready: `, `(got 0)`}}},
		{"ready http not a path", head + "    ready: {http: health}\n" + route,
			[]want{{`herd.yaml:4: apps.web.ready.http: `, `write one starting with /`}}},
		{"bool not bool, ready not also empty", head + "    ready: {tcp: yes}\n" + route,
			[]want{{`herd.yaml:4: apps.web.ready.tcp: `, `"yes" is not true or false; write true or false`}}},
		{"max_fails 0 written", head + "    max_fails: 0\n" + route,
			[]want{{`herd.yaml:4: apps.web.max_fails: `, `write 1 or more`}}},
		{"max_restarts negative", head + "    max_restarts: -1\n" + route,
			[]want{{`herd.yaml:4: apps.web.max_restarts: `, `write 0 or more`}}},
		{"env key with =", head + "    env: {A=B: x}\n" + route,
			[]want{{`herd.yaml:4: apps.web.env.A=B: `, `write A: B`}}},
		{"env key empty", head + "    env: {'': x}\n" + route,
			[]want{{`herd.yaml:4: apps.web.env.: `, `write NAME: value`}}},
		{"bad trusted proxy", "trusted_proxies: [10.0.0.0/33]\n" + head + route,
			[]want{{`herd.yaml:1: trusted_proxies.0: `, `"10.0.0.0/33" is not a CIDR; write one like 10.0.0.0/8`}}},
		{"route path without slash", head + "routes:\n  - path: api\n    to: web\n",
			[]want{{`herd.yaml:5: routes.0.path: `, `must start with /; write /api`}}},
		{"duplicate route", head + route + "  - path: /\n    to: web\n",
			[]want{{`herd.yaml:7: routes.1.path: `, `already routed by routes.0; remove one`}}},
		{"listen not an address", "listen: 8080\n" + head + route,
			[]want{{`herd.yaml:1: listen: `, `write host:port like 127.0.0.1:8080, or :8080`}}},
		{"same listen and admin", "listen: 127.0.0.1:9000\nadmin: 127.0.0.1:9000\n" + head + route,
			[]want{{`herd.yaml:2: admin: `, `cannot share 127.0.0.1:9000 with listen; pick another port`}}},
		{"admin on listen's wildcard port", "listen: :9000\nadmin: 127.0.0.1:9000\n" + head + route,
			[]want{{`herd.yaml:2: admin: `, `cannot share`}}},
		{"no apps", "apps:\n" + route,
			[]want{{`herd.yaml:1: apps: `, `no apps; add one`}}},
		{"no routes", head,
			[]want{{`herd.yaml:1: routes: `, `no routes; add one, like routes: [{path: /, to: web}]`}}},
		{"merge of a scalar", head + "    <<: 3\n" + route,
			[]want{{`herd.yaml:4: apps.web.<<: `, `write <<: *name`}}},
		{"empty file", "",
			[]want{{`herd.yaml:1: `, `the config is empty; write at least apps:`}}},
		{"only comments", "# nothing yet\n",
			[]want{{`herd.yaml:1: `, `the config is empty`}}},
		{"top level is a list", "- a\n- b\n",
			[]want{{`herd.yaml:1: `, `want a mapping of keys (listen:, apps:, routes:…) at the top, got a list; start with a line like apps:`}}},
		{"yaml syntax error", "listen: :80\napps:\n\tweb: {}\n",
			[]want{{`herd.yaml:3: `, `YAML syntax: found character that cannot start any token; check indentation and quoting`}}},
		{"unclosed flow mapping", "apps: {web: {command: sh}\n",
			[]want{{`herd.yaml:1: `, `YAML syntax: did not find expected ',' or '}'`}}},
		{"second document", head + route + "---\nlisten: :80\n",
			[]want{{`herd.yaml:8: `, `a second YAML document (after ---) is not read; keep one document`}}},
		{"several problems, decoding and validating, in line order",
			"listen: localhost\napps:\n  web:\n    command: sh\n    instances: 0\n    kill_timeout: x\n    colour: red\nroutes:\n  - path: /\n    to: wbe\n",
			[]want{
				{`herd.yaml:1: listen: `, `is not an address`},
				{`herd.yaml:5: apps.web.instances: `, `0 instances cannot run`},
				{`herd.yaml:6: apps.web.kill_timeout: `, `"x" is not a duration`},
				{`herd.yaml:7: apps.web.colour: `, `unknown key "colour"`},
				{`herd.yaml:10: routes.0.to: `, `did you mean "web"?`},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("herd.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("got a config (%+v); want problems", c)
			}
			if c != nil {
				t.Errorf("got a config and an error; want only the error")
			}
			var problems Errors
			if !errors.As(err, &problems) {
				t.Fatalf("got error %T %v; want Errors", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) || len(problems) != len(tc.want) {
				t.Fatalf("got %d problems:\n%s\nwant %d", len(lines), err, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w.at) || !strings.Contains(strings.TrimPrefix(lines[i], w.at), w.fix) {
					t.Errorf("problem %d:\ngot  %s\nwant %s…%s…", i, lines[i], w.at, w.fix)
				}
				if lines[i] != problems[i].Error() {
					t.Errorf("problem %d: Errors not in line order: got %q; want %q", i, problems[i].Error(), lines[i])
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such.yaml")
	want := "testdata/no-such.yaml: cannot read the config: no such file or directory; create it, or name another file with -f"
	if err == nil || err.Error() != want {
		t.Errorf("got %v; want %s", err, want)
	}
}

func TestProblemLine(t *testing.T) {
	c, err := Parse("herd.yaml", []byte("apps:\n  web:\n    command: sh\nroutes:\n  - {path: /, to: web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"written key", "apps.web.command", "herd.yaml:3: apps.web.command: m"},
		{"default under a written key", "apps.web.kill_timeout", "herd.yaml:2: apps.web.kill_timeout: m"},
		{"default at the top", "listen", "herd.yaml: listen: m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Problem(tc.path, "m").Error(); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{"words", "./bin/web --greeting hi", []string{"./bin/web", "--greeting", "hi"}, ""},
		{"runs of blanks", "  a   b\tc \n d", []string{"a", "b", "c", "d"}, ""},
		{"single quotes keep everything", `node -e 'console.log("x y") \n $HOME'`, []string{"node", "-e", `console.log("x y") \n $HOME`}, ""},
		{"double quote escapes", `echo "a \"b\" \$HOME \` + "`" + `x\` + "`" + ` \\ \n"`, []string{"echo", `a "b" $HOME ` + "`x`" + ` \ \n`}, ""},
		{"backslash outside quotes", `a\ b c\'d \"`, []string{"a b", "c'd", `"`}, ""},
		{"quotes join a word", `x''y ""z a"b c"'d e'`, []string{"xy", "z", "ab cd e"}, ""},
		{"empty quoted word", `a "" ''`, []string{"a", "", ""}, ""},
		{"no expansion", `$PORT ~ * $(id)`, []string{"$PORT", "~", "*", "$(id)"}, ""},
		{"backslash-newline continues", "a\\\nb", []string{"ab"}, ""},
		{"trailing backslash", `a\`, []string{"a"}, ""},
		{"empty", "", nil, ""},
		{"unterminated single quote", `sh -c 'open`, nil, "unterminated ' quote"},
		{"unterminated double quote", `sh -c "open \"`, nil, `unterminated " quote`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitCommand(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("SplitCommand(%q) error = %v; want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitCommand(%q) error = %v; want none", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SplitCommand(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheckListeners(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"listen in use", "listen: " + addr + "\nadmin: 127.0.0.1:0\n",
			"herd.yaml:1: listen: " + addr + " is already in use; pick a free port or stop whatever holds it"},
		{"admin in use", "listen: 127.0.0.1:0\nadmin: " + addr + "\n",
			"herd.yaml:2: admin: " + addr + " is already in use; pick a free port or stop whatever holds it"},
		{"both free", "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("herd.yaml", []byte(tc.yaml+"apps:\n  web:\n    command: sh\nroutes:\n  - {path: /, to: web}\n"))
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
}

// TestEveryFieldDecodes walks the config types, so that a key added to
// types.go with a Go type the decoder cannot fill fails here, not in a
// panic on someone's herd.yaml.
func TestEveryFieldDecodes(t *testing.T) {
	decoderType := reflect.TypeFor[nodeDecoder]()
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string) string
	walk = func(t reflect.Type, path string) string {
		if reflect.PointerTo(t).Implements(decoderType) || seen[t] {
			return ""
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice:
			return walk(t.Elem(), path+"[]")
		case reflect.Map:
			if t.Key().Kind() != reflect.String {
				return path + ": map keys must be strings"
			}
			return walk(t.Elem(), path+"[]")
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "" || name == "-" {
					continue
				}
				if opts == "keyed" && (f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Pointer) {
					return path + "." + name + ": keyed wants a slice of pointers"
				}
				if opts == "prefix" && f.Type.Kind() != reflect.Map {
					return path + "." + name + ": prefix wants a map"
				}
				if msg := walk(f.Type, path+"."+name); msg != "" {
					return msg
				}
			}
			return ""
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			return ""
		}
		return path + ": no decoder for " + t.String()
	}
	if msg := walk(reflect.TypeFor[Config](), "config"); msg != "" {
		t.Error(msg)
	}
}

// TestDeepAliases makes sure aliases and merges cost what the file says, not
// what it expands to ("billion laughs").
func TestDeepAliases(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("x0: &a0 {k0: 1}\n")
	for i := 1; i < 40; i++ {
		sb.WriteString("x" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " {<<: [")
		for j := range 8 {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("*a" + strconv.Itoa(i-1))
		}
		sb.WriteString("], k" + strconv.Itoa(i) + ": 1}\n")
	}
	sb.WriteString("<<: *a39\n")
	done := make(chan error, 1)
	go func() {
		_, err := Parse("herd.yaml", []byte(sb.String()))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), `unknown key "k0"`) {
			t.Errorf("got %v; want unknown keys", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Parse did not finish in 10s; merges are expanded exponentially")
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"apps:\n  web:\n    command: sh\nroutes:\n  - {path: /, to: web}\n",
		"listen: [\n",
		"apps: {a: {command: [x, 1], env: {K: [1]}, ready: {http: 3}}}\nroutes: [{path: 1}]\n",
		"a: &x [*x]\n",
		"a: &x {<<: *x}\napps: &y {w: {<<: *y}}\n",
		"apps:\n  web: {command: 'a \"b', instances: max, stop_signal: 99}\nroutes: [~, {to: web}]\n",
		"---\n---\n",
		"trusted_proxies: [::1, 1.2.3.4/40, {a: b}]\n? [k]\n: v\n",
		"apps:\n  w: {command: node w.js, ready: none, instances: max-1, listen_timeout: 2}\n  x: {command: sh, ready: [ipc]}\n",
	}
	if data, err := os.ReadFile("testdata/full.yaml"); err == nil {
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if (err == nil) == (c == nil) {
			t.Fatalf("got config %v and error %v; want exactly one", c, err)
		}
		var ps Errors
		if err != nil && (!errors.As(err, &ps) || len(ps) == 0) {
			t.Fatalf("got error %T %v; want a non-empty Errors", err, err)
		}
	})
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{`a 'b c' "d \" e" f\ g`, `'`, `"\`, "\\\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			return
		}
		// Quoting each word and splitting again must give the words back.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := SplitCommand(strings.Join(quoted, " "))
		if err != nil || !reflect.DeepEqual(again, words) && len(words) > 0 {
			t.Fatalf("SplitCommand(%q) = %q; requoted it splits to %q, %v", s, words, again, err)
		}
	})
}

// TestSectionDefaults checks the defaults of the sections that apply only
// when the section is there (tls, upstreams, a route's options).
func TestSectionDefaults(t *testing.T) {
	const yml = "tls: {listen: ':8443', cert: testdata/none.pem, key: testdata/none.pem}\n" +
		"apps:\n  web: {command: sh}\n" +
		"upstreams:\n  u: {servers: [{url: 'http://127.0.0.1:9000'}], health: {path: /h}}\n" +
		"routes:\n  - {path: /, to: web, sticky: {}, cache: {size: 1M}, rate_limit: {rate: 10r/s}, conn_limit: {max: 3}, compress: true}\n" +
		"  - {path: /g, gateway: true}\n"
	c := &Config{File: "herd.yaml", lines: map[string]int{}}
	d := newDecoder("herd.yaml", c.lines)
	doc, p := parseYAML("herd.yaml", []byte(yml))
	if p != nil {
		t.Fatal(p)
	}
	d.decode(doc, reflect.ValueOf(c).Elem(), "")
	if len(d.problems) > 0 {
		t.Fatal(d.problems)
	}
	c.applyDefaults() // not validated: the certificate files do not exist
	dir, _ := filepath.Abs(".")
	u, r := c.Upstreams[0], c.Routes[0]
	ten := Duration(10 * time.Minute)
	tests := []struct {
		name      string
		got, want any
	}{
		{"tls files are absolute", c.TLS.Cert, filepath.Join(dir, "testdata/none.pem")},
		{"tls http2", *c.TLS.HTTP2, true},
		{"tls hsts_max_age", c.TLS.HSTSMaxAge, Duration(365 * 24 * time.Hour)},
		{"upstream max_fails", u.MaxFails, 1},
		{"upstream fail_timeout", u.FailTimeout, Duration(10 * time.Second)},
		{"upstream server weight", u.Servers[0].Weight, 1},
		{"upstream health", u.Health, HealthCheck{Path: "/h", Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second), Passes: 1, Fails: 2}},
		{"upstream proxy keepalive", u.Proxy.Keepalive, 256},
		{"sticky cookie", r.Sticky.Cookie, "herd_sticky"},
		{"cache valid", r.Cache.Valid, map[string]Duration{"200": ten, "301": ten, "302": ten}},
		{"rate_limit", []any{r.RateLimit.Key, r.RateLimit.Status}, []any{"ip", 429}},
		{"conn_limit", []any{r.ConnLimit.Key, r.ConnLimit.Status}, []any{"ip", 429}},
		{"compress", []any{r.Compress.Level, r.Compress.MinSize, *r.Compress.Zstd}, []any{5, Size(1 << 10), true}},
		{"gateway strip_prefix", *c.Routes[1].StripPrefix, true},
		{"strip_prefix only for gateways", r.StripPrefix, (*bool)(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %#v; want %#v", tc.got, tc.want)
			}
		})
	}
}
