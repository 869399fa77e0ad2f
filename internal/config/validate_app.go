package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
)

// validateApp checks one app under apps:, looking up its cwd, program and
// watch paths on disk.
func (v *validator) validateApp(a *App) {
	p := "apps." + a.Name
	v.validateProxyOptions(p+".proxy", a.Proxy)
	cwdOK := true
	if st, err := os.Stat(a.Cwd); err != nil {
		cwdOK = false
		v.add(p+".cwd", "folder %s does not exist; create it or fix the path (relative paths start at the config's folder)", a.Cwd)
	} else if !st.IsDir() {
		cwdOK = false
		v.add(p+".cwd", "%s is a file, not a folder; name the folder the app runs in", a.Cwd)
	}
	switch {
	case a.Mode == SharedMode && a.Listen == "":
		v.add(p+".mode", "shared_socket needs the address to share; add listen:, like listen: :3000")
	case a.Mode == SharedMode:
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			v.add(p+".listen", "%q is not an address; write host:port like 127.0.0.1:3000, or :3000", a.Listen)
		}
		if !a.Ready.Notify && !a.Ready.IPC {
			v.add(p+".ready", "a shared_socket app is ready when it says so (ready: {notify: true}, or ipc: true for process.send('ready')); probes would reach any instance")
		}
	case a.Listen != "":
		v.add(p+".listen", "listen: is only for mode: shared_socket; in proxy mode herd gives each instance its own PORT")
	}
	if a.Mode != SharedMode && a.QueueTimeout != 0 {
		v.add(p+".queue_timeout", "an app's queue_timeout is only for mode: shared_socket; in proxy mode set it on the route")
	}
	v.validateCommand(p, a, cwdOK)
	if a.Instances < 1 {
		v.add(p+".instances", "%d instances cannot run; write 1 or more, or \"max\"", a.Instances)
	}
	v.validateAutoscale(p, a)
	if a.WaitReady && !a.Ready.IPC {
		v.add(p+".wait_ready", "wait_ready: true means ready: {ipc: true} (process.send('ready')), but ready says otherwise; keep one of them")
	}
	if a.CronRestart != "" {
		if _, err := cron.ParseStandard(a.CronRestart); err != nil {
			v.add(p+".cron_restart", "%q is not a cron spec (%v); write 5 fields like \"0 3 * * *\" or @daily", a.CronRestart, err)
		}
	}
	if a.IncrementVar != "" {
		if _, err := strconv.Atoi(a.Env[a.IncrementVar]); err != nil {
			v.add(p+".increment_var", "env has no number named %s to increment; add it under env:, like %s: 3000", a.IncrementVar, a.IncrementVar)
		}
	}
	for _, code := range a.StopExitCodes {
		if code < 0 || code > 255 {
			v.add(p+".stop_exit_codes", "%d is not an exit code; write codes from 0 to 255", code)
		}
	}
	v.validateReady(p, a.Ready)
	if a.MaxRestarts < 0 {
		v.add(p+".max_restarts", "%d is negative; write 0 or more", a.MaxRestarts)
	}
	if a.Reload.Parallel < 1 {
		v.add(p+".reload.parallel", "%d instances at a time cannot replace any; write 1 or more", a.Reload.Parallel)
	}
	if a.MaxFails < 1 {
		v.add(p+".max_fails", "%d failures cannot mark an instance down; write 1 or more", a.MaxFails)
	}
	if msg := envKeyProblem(a.InstanceVar); msg != "" {
		v.add(p+".instance_var", "%s", msg)
	}
	for _, k := range slices.Sorted(maps.Keys(a.Env)) {
		if msg := envKeyProblem(k); msg != "" {
			v.add(p+".env."+k, "%s", msg)
		}
	}
	for i, w := range a.Watch {
		path := w
		if !filepath.IsAbs(path) {
			path = filepath.Join(a.Cwd, path)
		}
		if _, err := os.Stat(path); err != nil {
			v.add(p+".watch", "watch path %d, %s, does not exist; fix it or remove it", i, path)
		}
	}
	for _, pat := range a.IgnoreWatch {
		if _, err := filepath.Match(pat, ""); err != nil {
			v.add(p+".ignore_watch", "%q is not a glob pattern; write one like *.log or tmp", pat)
		}
	}
	if a.LogType != "" && a.LogType != "json" && a.LogType != "text" {
		v.add(p+".log_type", "unknown log_type %q; write json or text", a.LogType)
	}
}

// validateCommand checks that the app's program (or interpreter) can be
// run from its cwd; cwdOK is false when the cwd itself is not there.
func (v *validator) validateCommand(p string, a *App, cwdOK bool) {
	switch {
	case len(a.Command) == 0:
		v.missing(p, "command", "no command; add command: with the program to run and its arguments, like command: ./server --port $PORT")
	case !cwdOK:
		// A relative program cannot be looked for; the cwd problem says why.
	case a.Interpreter != "":
		if msg := checkExecutable(a.Interpreter, a.Cwd); msg != "" {
			v.add(p+".interpreter", "%s", msg)
		} else {
			v.validateScript(p, a)
		}
	case a.Build != "" && strings.Contains(a.Command[0], "/"):
		// The build makes the program; a missing one is its failure.
	default:
		if msg := checkExecutable(a.Command[0], a.Cwd); msg != "" {
			v.add(p+".command", "%s", msg)
		} else {
			v.validateScript(p, a)
		}
	}
}

// validateScript checks that the script an interpreter is to run (node
// app.js) is there, as PM2 does before it starts anything ("Script not
// found"): otherwise every instance would exit at once, in a crash loop.
// An app with a build: is not checked; the build may make the script.
func (v *validator) validateScript(p string, a *App) {
	script, i := a.Script()
	if script == "" || a.Build != "" {
		return
	}
	path := script
	if !filepath.IsAbs(path) {
		path = filepath.Join(a.Cwd, path)
	}
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return
	}
	key := p + ".command"
	if i < len(a.Argv())-len(a.Command) {
		key = p + ".interpreter_args"
		if len(a.NodeArgs) > 0 && i >= 1+len(a.InterpreterArgs) {
			key = p + ".node_args"
		}
	}
	v.add(key, "script %s not found (looked for %s; a relative path starts at the app's cwd); fix the path, or set cwd: to the folder that holds it", script, path)
}

// validateReady checks an app's ready: at p.
func (v *validator) validateReady(p string, r Ready) {
	if n := countModes(r); n != 1 {
		v.add(p+".ready", "set exactly one of http: /path, tcp: true, notify: true, ipc: true or process: true (got %d), like ready: {http: /health}, or ready: none for a process that serves no port", n)
	}
	if r.HTTP != "" && !strings.HasPrefix(r.HTTP, "/") {
		v.add(p+".ready.http", "%q is not a path; write one starting with /, like /health", r.HTTP)
	}
}

func countModes(r Ready) int {
	n := 0
	for _, on := range []bool{r.HTTP != "", r.TCP, r.Notify, r.IPC, r.Process} {
		if on {
			n++
		}
	}
	return n
}

// envKeyProblem says what is wrong with an environment variable name, or "".
// Only what the OS cannot carry is refused: names like NODE.ENV are unusual
// but legal.
func envKeyProblem(k string) string {
	switch {
	case k == "":
		return "a variable needs a name; write NAME: value"
	case strings.Contains(k, "="):
		name, value, _ := strings.Cut(k, "=")
		return fmt.Sprintf("%q holds =, which ends a variable's name; write %s: %s", k, name, value)
	case strings.ContainsRune(k, 0):
		return fmt.Sprintf("%q holds a NUL byte; use letters, digits and _", k)
	}
	return ""
}

// checkExecutable returns why prog cannot be run from cwd, or "".
func checkExecutable(prog, cwd string) string {
	if !strings.Contains(prog, "/") {
		_, err := exec.LookPath(prog)
		switch {
		case errors.Is(err, exec.ErrDot):
			return fmt.Sprintf("%q is found only through a relative folder in PATH; write its path, like ./%s", prog, prog)
		case err != nil:
			return fmt.Sprintf("%q is not in PATH (%s); install it, or if you build it yourself, write its path like ./bin/%s", prog, os.Getenv("PATH"), prog)
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
		return fmt.Sprintf("%s is a folder (%s); name the program inside it", prog, path)
	case !st.Mode().IsRegular():
		return fmt.Sprintf("%s is not a regular file (%s); name the program itself", prog, path)
	case st.Mode()&0o111 == 0:
		return fmt.Sprintf("%s is not executable; chmod +x it", prog)
	}
	return ""
}

// validateAutoscale checks an app's autoscale: bounds, and a target herd
// can measure in the app's mode.
func (v *validator) validateAutoscale(p string, a *App) {
	as := a.Autoscale
	if as == nil {
		return
	}
	p += ".autoscale"
	switch {
	case as.Max == 0:
		v.add(p, "autoscale needs max:, the most instances herd may run, like autoscale: {min: 2, max: 8}")
	case as.Min < 1 || as.Max < as.Min:
		v.add(p, "min %d and max %d do not bound a count; write 1 <= min <= max, like {min: 2, max: 8}", as.Min, as.Max)
	case int(a.Instances) < as.Min || int(a.Instances) > as.Max:
		v.add(p, "instances: %d is outside min %d and max %d; start within them, or leave instances out (it starts at min)", a.Instances, as.Min, as.Max)
	}
	if as.Inflight != 0 && as.CPU != 0 {
		v.add(p, "inflight and cpu are both targets; keep one")
	}
	if as.Inflight < 0 || as.CPU < 0 {
		v.add(p, "a target must be positive, like inflight: 4 or cpu: 70")
	}
	if as.Inflight > 0 && (a.Mode == SharedMode || a.Ready.Process) {
		v.add(p+".inflight", "herd does not see this app's requests (shared_socket or a worker); scale it on cpu:, like cpu: 70")
	}
}
