// Package pm2import turns a PM2 ecosystem file into an equivalent herd.yaml
// and lists what it could not map, so a PM2 user can run `herd up` without
// hand edits for the common options. Every key of PM2's ecosystem
// reference is either carried over or named in the notes with the reason
// (rules); a fork-mode app without a port becomes a worker (ready: none),
// wait_ready becomes ready: ipc, and instances: -1 becomes max-1.
package pm2import

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Result is a converted ecosystem file.
type Result struct {
	// YAML is the herd.yaml text.
	YAML []byte
	// Unmapped lists, one per line, what was dropped or changed and why.
	Unmapped []string
}

// Load reads an ecosystem file: JSON (ecosystem.json), or JavaScript
// (ecosystem.config.js), which is evaluated with node when node is present.
func Load(ctx context.Context, path string) ([]byte, error) {
	if strings.HasSuffix(path, ".js") || strings.HasSuffix(path, ".cjs") {
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, fmt.Errorf("pm2import: %s is JavaScript and node is not installed; install node or export it to JSON with `pm2 ecosystem` / `node -e`", path)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, node, "-e", "process.stdout.write(JSON.stringify(require(process.argv[1])))", abs)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("pm2import: evaluating %s with node: %v: %s", path, err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pm2import: %w", err)
	}
	return data, nil
}

// app is one PM2 app, with the options herd maps. Numbers that PM2 takes
// either as numbers or strings are json.RawMessage. Aliases PM2 accepts
// (exec for script, cron for cron_restart…) are read into the same field.
type app struct {
	Name                   string          `json:"name"`
	Script                 string          `json:"script"`
	Exec                   string          `json:"exec"`
	Args                   json.RawMessage `json:"args"`
	Cwd                    string          `json:"cwd"`
	Instances              json.RawMessage `json:"instances"`
	ExecMode               string          `json:"exec_mode"`
	Interpreter            string          `json:"interpreter"`
	ExecInterpreter        string          `json:"exec_interpreter"`
	InterpreterArgs        json.RawMessage `json:"interpreter_args"`
	InterpreterArgsCamel   json.RawMessage `json:"interpreterArgs"`
	NodeArgs               json.RawMessage `json:"node_args"`
	Env                    map[string]any  `json:"env"`
	Port                   json.RawMessage `json:"port"`
	MaxMemoryRestart       json.RawMessage `json:"max_memory_restart"`
	CronRestart            string          `json:"cron_restart"`
	Cron                   string          `json:"cron"`
	Autorestart            *bool           `json:"autorestart"`
	StopExitCodes          json.RawMessage `json:"stop_exit_codes"`
	RestartDelay           json.RawMessage `json:"restart_delay"`
	ExpBackoffRestartDelay json.RawMessage `json:"exp_backoff_restart_delay"`
	MinUptime              json.RawMessage `json:"min_uptime"`
	MaxRestarts            json.RawMessage `json:"max_restarts"`
	KillTimeout            json.RawMessage `json:"kill_timeout"`
	WaitReady              bool            `json:"wait_ready"`
	ListenTimeout          json.RawMessage `json:"listen_timeout"`
	InstanceVar            string          `json:"instance_var"`
	IncrementVar           string          `json:"increment_var"`
	Watch                  json.RawMessage `json:"watch"`
	IgnoreWatch            json.RawMessage `json:"ignore_watch"`
	MergeLogs              bool            `json:"merge_logs"`
	CombineLogs            bool            `json:"combine_logs"`
	LogDateFormat          string          `json:"log_date_format"`
	LogType                string          `json:"log_type"`
	Time                   bool            `json:"time"`
	rest                   map[string]any  // every key, to report the ones not carried over
	envSets                map[string]map[string]any
}

// rule says what becomes of one key of a PM2 app. Every key of PM2's
// ecosystem reference (its lib/API/schema.json, with its aliases) has one:
// either it is carried over into herd.yaml, or the import notes why not.
type rule struct {
	carried bool
	// why, for a key not carried over: the reason, and what to do instead.
	why string
	// same is a value of the key that needs no note: PM2's default, which
	// is what herd does anyway (treekill: true).
	same any
}

const (
	logsWhy = "herd writes each instance's output to logs.dir (APP-INDEX.log, or APP.log with merge_logs), rotated, and `herd logs APP` follows it; set logs: {dir: …} for the folder"
	apmWhy  = "PM2/Keymetrics monitoring; herd exports per-instance metrics on the admin listener's /metrics and `herd status`"
)

var rules = map[string]rule{
	// Carried over.
	"name": {carried: true}, "script": {carried: true}, "exec": {carried: true}, "args": {carried: true},
	"cwd": {carried: true}, "instances": {carried: true}, "exec_mode": {carried: true},
	"interpreter": {carried: true}, "exec_interpreter": {carried: true},
	"interpreter_args": {carried: true}, "interpreterArgs": {carried: true}, "node_args": {carried: true},
	"env": {carried: true}, "port": {carried: true},
	"max_memory_restart": {carried: true}, "cron_restart": {carried: true}, "cron": {carried: true},
	"autorestart": {carried: true}, "stop_exit_codes": {carried: true},
	"restart_delay": {carried: true}, "exp_backoff_restart_delay": {carried: true},
	"min_uptime": {carried: true}, "max_restarts": {carried: true}, "kill_timeout": {carried: true},
	"wait_ready": {carried: true}, "listen_timeout": {carried: true},
	"instance_var": {carried: true}, "increment_var": {carried: true},
	"watch": {carried: true}, "ignore_watch": {carried: true},
	"merge_logs": {carried: true}, "combine_logs": {carried: true},
	"log_date_format": {carried: true}, "log_type": {carried: true}, "time": {carried: true},

	// Not carried over, each with its reason.
	"name_prefix":                {why: "herd names an app by its key under apps:"},
	"filter_env":                 {why: "herd passes its own environment to every instance; unset what the app must not see before `herd up`, or set it under env:"},
	"namespace":                  {why: "herd has no namespaces: one herd.yaml is one group, and commands name apps (herd reload APP)"},
	"install_url":                {why: "herd does not install modules"},
	"out_file":                   {why: logsWhy},
	"out":                        {why: logsWhy},
	"output":                     {why: logsWhy},
	"out_log":                    {why: logsWhy},
	"error_file":                 {why: logsWhy},
	"error":                      {why: logsWhy},
	"err":                        {why: logsWhy},
	"err_file":                   {why: logsWhy},
	"err_log":                    {why: logsWhy},
	"log_file":                   {why: logsWhy},
	"log":                        {why: logsWhy},
	"disable_logs":               {why: "herd turns log files off for every app at once, with logs: {off: true}; output still reaches `herd logs`", same: false},
	"pid_file":                   {why: "herd keeps the instances' PIDs itself (herd status); it writes no pid files"},
	"pid":                        {why: "herd keeps the instances' PIDs itself (herd status); it writes no pid files"},
	"source_map_support":         {why: "PM2 injects a source-map module; for Node's own, add --enable-source-maps to interpreter_args"},
	"disable_source_map_support": {why: "PM2 injects a source-map module, herd does not; nothing to disable", same: true},
	"shutdown_with_message":      {why: "herd stops an instance with its stop_signal (SIGINT here, as PM2 sends), not process.send('shutdown'); handle SIGINT in the app", same: false},
	"vizion":                     {why: "herd does not read git metadata of the app"},
	"watch_delay":                {why: "herd waits 300ms after the last change before it reloads, fixed"},
	"watch_options":              {why: "chokidar options have no herd equivalent; herd watches with inotify, skipping ignore_watch"},
	"execute_command":            {why: "an internal PM2 option"},
	"force":                      {why: "herd runs each app of herd.yaml once; there is nothing to force"},
	"append_env_to_name":         {why: "herd app names do not change with --env"},
	"post_update":                {why: "these run after a Keymetrics dashboard pull; herd runs build: before each start and reload, or run them in your deploy"},
	"trace":                      {why: apmWhy},
	"disable_trace":              {why: apmWhy},
	"v8":                         {why: apmWhy},
	"event_loop_inspector":       {why: apmWhy},
	"deep_monitoring":            {why: apmWhy},
	"pmx":                        {why: apmWhy},
	"automation":                 {why: apmWhy},
	"io":                         {why: apmWhy},
	"treekill":                   {why: "herd always stops an instance's whole process group; leaving children running is not offered", same: true},
	"username":                   {why: "herd runs instances as the user herd runs as; run herd as that user (herd startup systemd --user NAME)"},
	"uid":                        {why: "herd runs instances as the user herd runs as; run herd as that user (herd startup systemd --user NAME)"},
	"user":                       {why: "herd runs instances as the user herd runs as; run herd as that user (herd startup systemd --user NAME)"},
	"gid":                        {why: "herd runs instances with herd's group; run herd as that user and group"},
	"windowsHide":                {why: "herd does not run on Windows"},
	"kill_retry_time":            {why: "herd sends SIGKILL once, kill_timeout after the stop signal"},
	"write":                      {why: "an internal PM2 option"},
}

// herd.yaml, as written: field order is the order in the file.
type herdFile struct {
	Listen string              `yaml:"listen,omitempty"`
	Admin  string              `yaml:"admin,omitempty"`
	Apps   *yaml.Node          `yaml:"apps"`
	Routes []map[string]string `yaml:"routes,omitempty"`
}

type herdApp struct {
	Command                string                       `yaml:"command"`
	Cwd                    string                       `yaml:"cwd,omitempty"`
	Interpreter            string                       `yaml:"interpreter,omitempty"`
	InterpreterArgs        string                       `yaml:"interpreter_args,omitempty"`
	Instances              any                          `yaml:"instances,omitempty"`
	Env                    map[string]string            `yaml:"env,omitempty"`
	EnvSets                map[string]map[string]string `yaml:",inline"`
	Ready                  string                       `yaml:"ready,omitempty"`
	ListenTimeout          string                       `yaml:"listen_timeout,omitempty"`
	RestartDelay           string                       `yaml:"restart_delay,omitempty"`
	ExpBackoffRestartDelay string                       `yaml:"exp_backoff_restart_delay,omitempty"`
	MinUptime              string                       `yaml:"min_uptime,omitempty"`
	MaxRestarts            int                          `yaml:"max_restarts,omitempty"`
	KillTimeout            string                       `yaml:"kill_timeout,omitempty"`
	StopSignal             string                       `yaml:"stop_signal,omitempty"`
	MaxMemoryRestart       string                       `yaml:"max_memory_restart,omitempty"`
	CronRestart            string                       `yaml:"cron_restart,omitempty"`
	Autorestart            *bool                        `yaml:"autorestart,omitempty"`
	StopExitCodes          []int                        `yaml:"stop_exit_codes,omitempty"`
	InstanceVar            string                       `yaml:"instance_var,omitempty"`
	IncrementVar           string                       `yaml:"increment_var,omitempty"`
	Watch                  any                          `yaml:"watch,omitempty"`
	IgnoreWatch            []string                     `yaml:"ignore_watch,omitempty"`
	MergeLogs              bool                         `yaml:"merge_logs,omitempty"`
	LogDateFormat          string                       `yaml:"log_date_format,omitempty"`
	LogType                string                       `yaml:"log_type,omitempty"`
}

// Convert maps an ecosystem file's JSON ({"apps": [...]} or a bare list)
// to herd.yaml.
func Convert(data []byte) (*Result, error) {
	apps, top, err := parseApps(data)
	if err != nil {
		return nil, err
	}
	if len(apps) == 0 {
		return nil, fmt.Errorf("pm2import: the ecosystem file has no apps")
	}
	res := &Result{}
	note := func(app, format string, args ...any) {
		res.Unmapped = append(res.Unmapped, app+": "+fmt.Sprintf(format, args...))
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		switch k {
		case "apps":
		case "deploy":
			envs := ""
			if m, ok := top[k].(map[string]any); ok && len(m) > 0 {
				envs = " (" + strings.Join(slices.Sorted(maps.Keys(m)), ", ") + ")"
			}
			note("deploy", "the deploy: block%s is not carried over: herd does not deploy (PM2's deploy pulls git over SSH and runs hooks); ship the code with your CI/CD, then run `herd reload all` (or send herd SIGHUP)", envs)
		default:
			note(k, "the top-level key %s is not carried over: herd reads only apps from an ecosystem file", k)
		}
	}
	out := herdFile{Admin: "127.0.0.1:9090", Apps: &yaml.Node{Kind: yaml.MappingNode}}
	routed, served := "", "" // the app routed on a PORT; the first app serving a port
	used := map[string]bool{}
	for i, a := range apps {
		name := safeName(a.Name, i, used)
		if name != a.Name {
			note(name, "named %q in PM2; herd app names hold letters, digits, - and _", a.Name)
		}
		script := cmp.Or(a.Script, a.Exec)
		if script == "" {
			return nil, fmt.Errorf("pm2import: app %q has no script", a.Name)
		}
		h := herdApp{Cwd: a.Cwd, InstanceVar: a.InstanceVar, IncrementVar: a.IncrementVar,
			CronRestart: cmp.Or(a.CronRestart, a.Cron), Autorestart: a.Autorestart,
			MergeLogs: a.MergeLogs || a.CombineLogs, LogDateFormat: a.LogDateFormat,
			// PM2 stops an app with SIGINT, so apps written for it shut down
			// gracefully on SIGINT; herd's default is SIGTERM.
			StopSignal: "SIGINT"}
		args, err := words(a.Args)
		if err != nil {
			return nil, fmt.Errorf("pm2import: %s: args: %w", name, err)
		}
		h.Command = shellJoin(append([]string{script}, args...))
		interp := cmp.Or(a.Interpreter, a.ExecInterpreter)
		switch {
		case interp != "" && interp != "none":
			h.Interpreter = interp
		case interp == "" && (strings.HasSuffix(script, ".js") || strings.HasSuffix(script, ".cjs") || strings.HasSuffix(script, ".mjs")):
			h.Interpreter = "node" // PM2's default for JavaScript
		}
		iargs, _ := words(a.InterpreterArgs)
		cargs, _ := words(a.InterpreterArgsCamel)
		nargs, _ := words(a.NodeArgs)
		if all := slices.Concat(iargs, cargs, nargs); len(all) > 0 {
			h.InterpreterArgs = shellJoin(all)
		}
		var instNote string
		h.Instances, instNote = instances(a.Instances)
		if instNote != "" {
			note(name, "%s", instNote)
		}
		cluster := a.ExecMode == "cluster" || a.ExecMode == "cluster_mode"
		if !cluster {
			if n, ok := h.Instances.(int); ok && n > 1 {
				note(name, "exec_mode fork with %d instances: herd runs them as %d instances behind its balancer, each on its own PORT", n, n)
			}
		}
		h.Env = map[string]string{}
		for k, v := range a.Env {
			h.Env[k] = scalar(v)
		}
		port, hasPort := h.Env["PORT"]
		from := "env.PORT"
		if p := strings.Trim(string(a.Port), `"`); p != "" && p != "null" {
			port, hasPort, from = p, true, "port:" // PM2's port: is short for env.PORT
		}
		serves := hasPort || cluster || listensByArgs(args)
		// PM2 cluster workers share one port; herd gives each instance its own
		// PORT and listens on the shared one itself.
		if hasPort {
			delete(h.Env, "PORT")
			if routed == "" {
				out.Listen = ":" + port
				routed = name
				note(name, "%s %s became listen: :%s; herd gives each instance its own PORT and balances between them", from, port, port)
			} else {
				note(name, "%s %s dropped: herd gives each instance its own PORT; route this app under routes: to reach it", from, port)
			}
		}
		if serves && served == "" {
			served = name
		}
		if len(h.Env) == 0 {
			h.Env = nil
		}
		for set, vars := range a.envSets {
			if h.EnvSets == nil {
				h.EnvSets = map[string]map[string]string{}
			}
			m := map[string]string{}
			for k, v := range vars {
				if k == "PORT" {
					note(name, "env_%s.PORT dropped: herd gives each instance its own PORT", set)
					continue
				}
				m[k] = scalar(v)
			}
			h.EnvSets["env_"+set] = m
		}
		switch {
		case a.WaitReady:
			h.Ready = "ipc"
			note(name, "wait_ready became ready: ipc: herd gives the app an IPC channel and takes an instance into service when it calls process.send('ready'); one that has not within listen_timeout is not counted online, as PM2 would, but stopped and started again")
		case !serves:
			h.Ready = "none"
			note(name, "a fork-mode app with no PORT (in env or port:) and no port in its args looks like a worker: it got ready: none (ready once up min_uptime) and no route; if it serves HTTP, give it ready: {http: /health} and a route")
		}
		h.ListenTimeout = millis(a.ListenTimeout)
		h.RestartDelay = millis(a.RestartDelay)
		h.ExpBackoffRestartDelay = millis(a.ExpBackoffRestartDelay)
		h.MinUptime = millis(a.MinUptime)
		h.KillTimeout = millis(a.KillTimeout)
		if n, err := strconv.Atoi(strings.Trim(string(a.MaxRestarts), `"`)); err == nil {
			h.MaxRestarts = n
		}
		h.MaxMemoryRestart = strings.Trim(string(a.MaxMemoryRestart), `"`)
		if a.StopExitCodes != nil {
			var one int
			if json.Unmarshal(a.StopExitCodes, &h.StopExitCodes) != nil && json.Unmarshal(a.StopExitCodes, &one) == nil {
				h.StopExitCodes = []int{one}
			}
		}
		var watchOn bool
		if json.Unmarshal(a.Watch, &watchOn) == nil {
			if watchOn {
				h.Watch = true
			}
		} else if paths, err := words(a.Watch); err == nil && len(paths) > 0 {
			h.Watch = paths
		}
		if h.Watch != nil {
			h.IgnoreWatch, _ = words(a.IgnoreWatch)
			if len(h.IgnoreWatch) > 0 {
				note(name, "ignore_watch: PM2 reads these as regular expressions, herd as globs (matched against each path element and the path): check them")
			}
		}
		switch a.LogType {
		case "":
		case "json":
			h.LogType = "json"
		default:
			note(name, "log_type %q is not carried over: herd writes json or plain text", a.LogType)
		}
		if a.Time && h.LogDateFormat == "" {
			h.LogDateFormat = "YYYY-MM-DD HH:mm:ss Z" // PM2's time: true prefixes each line with its time
		}
		for _, k := range slices.Sorted(maps.Keys(a.rest)) {
			if strings.HasPrefix(k, "env_") {
				continue
			}
			r, ok := rules[k]
			switch {
			case !ok:
				note(name, "%s is not a key of PM2's ecosystem reference that herd knows; not carried over", k)
			case r.carried:
			case r.same != nil && reflect.DeepEqual(a.rest[k], r.same):
			default:
				note(name, "%s is not carried over: %s", k, r.why)
			}
		}
		var node yaml.Node
		if err := node.Encode(h); err != nil {
			return nil, fmt.Errorf("pm2import: %s: %w", name, err)
		}
		out.Apps.Content = append(out.Apps.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, &node)
	}
	switch {
	case routed != "":
		out.Routes = []map[string]string{{"path": "/", "to": routed}}
	case served != "":
		out.Listen = ":8080"
		out.Routes = []map[string]string{{"path": "/", "to": served}}
		note(served, "no PORT in env; herd listens on :8080 and routes / to %s", served)
	}
	var buf bytes.Buffer
	buf.WriteString("# herd.yaml converted from a PM2 ecosystem file by `herd import pm2`.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("pm2import: writing YAML: %w", err)
	}
	res.YAML = buf.Bytes()
	return res, nil
}

// listensByArgs reports whether an app's arguments name a port or an
// address to listen on (--port 3000, --listen :80, -p 8080, PORT=…).
func listensByArgs(args []string) bool {
	for _, w := range args {
		lw := strings.ToLower(w)
		if strings.Contains(lw, "port") || strings.Contains(lw, "listen") || strings.Contains(lw, "bind") || lw == "-p" {
			return true
		}
	}
	return false
}

// parseApps reads the apps of an ecosystem file, and its top-level keys
// (nil for a bare list).
func parseApps(data []byte) ([]app, map[string]any, error) {
	var top map[string]any
	var wrapped struct {
		Apps []json.RawMessage `json:"apps"`
	}
	var list []json.RawMessage
	if err := json.Unmarshal(data, &wrapped); err == nil && wrapped.Apps != nil {
		list = wrapped.Apps
		_ = json.Unmarshal(data, &top)
	} else if err := json.Unmarshal(data, &list); err != nil {
		var one json.RawMessage
		if json.Unmarshal(data, &one) != nil {
			return nil, nil, fmt.Errorf("pm2import: not JSON: %w", err)
		}
		return nil, nil, fmt.Errorf("pm2import: want {\"apps\": [...]} or a list of apps")
	}
	apps := make([]app, len(list))
	for i, raw := range list {
		if err := json.Unmarshal(raw, &apps[i]); err != nil {
			return nil, nil, fmt.Errorf("pm2import: app %d: %w", i, err)
		}
		if err := json.Unmarshal(raw, &apps[i].rest); err != nil {
			return nil, nil, fmt.Errorf("pm2import: app %d: %w", i, err)
		}
		for k, v := range apps[i].rest {
			if set, ok := strings.CutPrefix(k, "env_"); ok {
				if m, ok := v.(map[string]any); ok {
					if apps[i].envSets == nil {
						apps[i].envSets = map[string]map[string]any{}
					}
					apps[i].envSets[set] = m
				}
			}
		}
	}
	return apps, top, nil
}

var nameRE = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func safeName(name string, i int, used map[string]bool) string {
	n := strings.Trim(nameRE.ReplaceAllString(name, "-"), "-")
	if n == "" {
		n = "app" + strconv.Itoa(i+1)
	}
	for base, k := n, 2; used[n]; k++ {
		n = base + "-" + strconv.Itoa(k)
	}
	used[n] = true
	return n
}

// words reads args given as a string (split like a shell) or a list.
func words(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("want a string or a list of strings")
	}
	return strings.Fields(s), nil
}

// shellJoin quotes words that need it, so herd's shell-like split gets them back.
func shellJoin(ws []string) string {
	out := make([]string, len(ws))
	for i, w := range ws {
		if w == "" || strings.ContainsAny(w, " \t\n'\"\\$`") {
			w = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}

// instances maps PM2's instances to herd's, with a note when the form
// changes: 0 and "max" are one per CPU; -N is N fewer than the CPUs, herd's
// "max-N".
func instances(raw json.RawMessage) (any, string) {
	s := strings.Trim(string(raw), `"`)
	switch s {
	case "", "null":
		return nil, ""
	case "max", "0":
		return "max", ""
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return nil, fmt.Sprintf("instances %q is not carried over: write a number, max or max-N", s)
	case n < 0:
		return fmt.Sprintf("max%d", n), fmt.Sprintf("instances %d (PM2: one per CPU but %d) became instances: max%d", n, -n, n)
	}
	return n, ""
}

// millis turns PM2's milliseconds (a number, or a string like "1500" or "3s") into a duration.
func millis(raw json.RawMessage) string {
	s := strings.Trim(string(raw), `"`)
	if s == "" || s == "null" {
		return ""
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return (time.Duration(n) * time.Millisecond).String()
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d.String()
	}
	return ""
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}
