package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, defaults and validates the config at path. On any
// problem it returns Errors listing every one, and no config.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the config: %v; pass another file with -f", errors.Unwrap(err))}}
	}
	return Parse(path, data)
}

// Parse is Load on data already read; file names it in messages, and
// relative cwd: paths resolve against its folder.
func Parse(file string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxProblem(file, err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, Errors{{File: file, Line: 1, Msg: "the config is empty; it needs at least apps: and routes: (see the README)"}}
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Line: doc.Line, Msg: fmt.Sprintf("want a mapping of keys (listen:, apps:, routes:…) at the top, got %s", kindName(doc))}}
	}
	c := &Config{File: file, lines: map[string]int{}}
	d := &decoder{file: file, lines: c.lines}
	d.decode(doc, reflect.ValueOf(c).Elem(), "")
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// syntaxProblem turns a YAML error ("yaml: line 3: …") into a Problem.
func syntaxProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, strings.TrimSpace(after)
			}
		}
	}
	return Problem{File: file, Line: line, Msg: "YAML syntax: " + msg + "; check indentation and quoting"}
}

// applyDefaults is the one place defaults are set: zero means default.
func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Admin == "" {
		c.Admin = "127.0.0.1:9090"
	}
	base := filepath.Dir(c.File)
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	for _, a := range c.Apps {
		if a.Instances == 0 {
			a.Instances = 1
		}
		if a.InstanceVar == "" {
			a.InstanceVar = "NODE_APP_INSTANCE"
		}
		if a.Ready == (Ready{}) && c.Line("apps."+a.Name+".ready") == 0 {
			a.Ready.TCP = true
		}
		setDefault(&a.ListenTimeout, 10*time.Second)
		setDefault(&a.RestartDelay, 100*time.Millisecond)
		setDefault(&a.MinUptime, time.Second)
		setDefault(&a.DrainTimeout, 30*time.Second)
		setDefault(&a.KillTimeout, 5*time.Second)
		setDefault(&a.FailTimeout, 10*time.Second)
		if a.MaxRestarts == 0 {
			a.MaxRestarts = 16
		}
		if a.MaxFails == 0 {
			a.MaxFails = 1
		}
		if a.Reload.Parallel == 0 {
			a.Reload.Parallel = 1
		}
		if a.StopSignal == 0 {
			a.StopSignal = Signal(syscall.SIGTERM)
		}
		switch {
		case a.Cwd == "":
			a.Cwd = base
		case !filepath.IsAbs(a.Cwd):
			a.Cwd = filepath.Join(base, a.Cwd)
		}
	}
	for _, r := range c.Routes {
		if r.Balance == "" {
			r.Balance = RoundRobin
		}
		setDefault(&r.QueueTimeout, 5*time.Second)
	}
}

func setDefault(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// Validate checks a decoded, defaulted config and returns Errors with every
// problem, or nil.
func (c *Config) Validate() error {
	var ps Errors
	add := func(path, format string, args ...any) {
		ps = append(ps, c.Problem(path, fmt.Sprintf(format, args...)))
	}
	for key, addr := range map[string]string{"listen": c.Listen, "admin": c.Admin} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			add(key, "%q is not an address; write host:port like 127.0.0.1:8080, or :8080 for every interface", addr)
		}
	}
	if c.Listen == c.Admin {
		add("admin", "the admin listener cannot share %s with listen; pick another port", c.Admin)
	}

	names := make([]string, 0, len(c.Apps))
	apps := map[string]bool{}
	for _, a := range c.Apps {
		names = append(names, a.Name)
		apps[a.Name] = true
	}
	if len(c.Apps) == 0 {
		ps = append(ps, Problem{File: c.File, Line: max(c.Line("apps"), 1), Path: "apps",
			Msg: "no apps; add one, like apps: {web: {command: ./server, instances: 2}}"})
	}
	for _, a := range c.Apps {
		p := "apps." + a.Name
		if len(a.Command) == 0 {
			ps = append(ps, Problem{File: c.File, Line: a.Line, Path: p,
				Msg: "no command; add command: with the program to run, like command: ./server --flag value"})
		} else if msg := checkExecutable(a.Command[0], a.Cwd); msg != "" {
			add(p+".command", "%s", msg)
		}
		if st, err := os.Stat(a.Cwd); err != nil || !st.IsDir() {
			add(p+".cwd", "folder %s does not exist; create it or fix the path (relative paths start at the config's folder)", a.Cwd)
		}
		if n := countModes(a.Ready); n != 1 {
			add(p+".ready", "set exactly one of http: /path, tcp: true or notify: true (got %d)", n)
		}
		if a.Ready.HTTP != "" && !strings.HasPrefix(a.Ready.HTTP, "/") {
			add(p+".ready.http", "%q is not a path; write one starting with /, like /health", a.Ready.HTTP)
		}
		if a.MaxRestarts < 0 {
			add(p+".max_restarts", "%d is negative; write 0 or more", a.MaxRestarts)
		}
		if a.Reload.Parallel < 0 {
			add(p+".reload.parallel", "%d is negative; write 1 or more", a.Reload.Parallel)
		}
		if a.MaxFails < 0 {
			add(p+".max_fails", "%d is negative; write 1 or more", a.MaxFails)
		}
		if a.InstanceVar != "" && !envNameOK(a.InstanceVar) {
			add(p+".instance_var", "%q is not a variable name; use letters, digits and _", a.InstanceVar)
		}
		for k := range a.Env {
			if !envNameOK(k) {
				add(p+".env."+k, "%q is not a variable name; use letters, digits and _", k)
			}
		}
	}

	if len(c.Routes) == 0 {
		ps = append(ps, Problem{File: c.File, Line: max(c.Line("routes"), 1), Path: "routes",
			Msg: "no routes; add one, like routes: [{path: /, to: web}]"})
	}
	paths := map[string]int{}
	for i, r := range c.Routes {
		p := "routes." + strconv.Itoa(i)
		switch {
		case r.Path == "":
			ps = append(ps, Problem{File: c.File, Line: r.Line, Path: p, Msg: "no path; add path: / (or a prefix like /api)"})
		case !strings.HasPrefix(r.Path, "/"):
			add(p+".path", "%q must start with /; write /%s", r.Path, r.Path)
		default:
			if first, dup := paths[r.Path]; dup {
				add(p+".path", "path %s is already routed by routes.%d; remove one", r.Path, first)
			}
			paths[r.Path] = i
		}
		switch {
		case r.To == "":
			ps = append(ps, Problem{File: c.File, Line: r.Line, Path: p, Msg: "no to:; name the app that serves it, like to: web"})
		case !apps[r.To]:
			sorted := append([]string(nil), names...)
			sort.Strings(sorted)
			add(p+".to", "no app named %q; %s (apps: %s)", r.To, suggest(r.To, names, "define it under apps:"), strings.Join(sorted, ", "))
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

func countModes(r Ready) int {
	n := 0
	for _, on := range []bool{r.HTTP != "", r.TCP, r.Notify} {
		if on {
			n++
		}
	}
	return n
}

func envNameOK(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// checkExecutable returns why prog cannot be run from cwd, or "".
func checkExecutable(prog, cwd string) string {
	if !strings.Contains(prog, "/") {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Sprintf("%q is not in PATH; install it, or write its path like ./bin/%s", prog, prog)
		}
		return ""
	}
	path := prog
	if !filepath.IsAbs(path) {
		path = filepath.Join(cwd, path)
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Sprintf("%s not found (looked for %s); build it first or fix the path", prog, path)
	case st.IsDir():
		return fmt.Sprintf("%s is a folder; name the program inside it", prog)
	case st.Mode()&0o111 == 0:
		return fmt.Sprintf("%s is not executable; chmod +x it", prog)
	}
	return ""
}

// App returns the app named name, or nil.
func (c *Config) App(name string) *App {
	for _, a := range c.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// CheckListeners tries to bind the listen and admin addresses and reports
// those already in use, for `herd check`. `herd up` binds them for real.
func CheckListeners(c *Config) Errors {
	var ps Errors
	for _, key := range []string{"listen", "admin"} {
		addr := c.Listen
		if key == "admin" {
			addr = c.Admin
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			ps = append(ps, ListenProblem(c, key, addr, err))
			continue
		}
		l.Close()
	}
	return ps
}

// ListenProblem words a failure to listen on addr, the value of key.
func ListenProblem(c *Config, key, addr string, err error) Problem {
	if errors.Is(err, syscall.EADDRINUSE) {
		return c.Problem(key, fmt.Sprintf("%s is already in use; pick a free port or stop whatever holds it", addr))
	}
	return c.Problem(key, fmt.Sprintf("cannot listen on %s: %v", addr, err))
}
