// Package pm2import turns a PM2 ecosystem file into an equivalent herd.yaml
// and lists what it could not map, so a PM2 user can run `herd up` without
// hand edits for the common options.
package pm2import

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
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
// either as numbers or strings are json.RawMessage.
type app struct {
	Name                   string          `json:"name"`
	Script                 string          `json:"script"`
	Args                   json.RawMessage `json:"args"`
	Cwd                    string          `json:"cwd"`
	Instances              json.RawMessage `json:"instances"`
	ExecMode               string          `json:"exec_mode"`
	Interpreter            string          `json:"interpreter"`
	InterpreterArgs        json.RawMessage `json:"interpreter_args"`
	NodeArgs               json.RawMessage `json:"node_args"`
	Env                    map[string]any  `json:"env"`
	MaxMemoryRestart       json.RawMessage `json:"max_memory_restart"`
	CronRestart            string          `json:"cron_restart"`
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
	rest                   map[string]any  // every key, to report the unmapped ones
	envSets                map[string]map[string]any
}

// known are the PM2 keys mapped above, or deliberately dropped without a note.
var known = map[string]bool{
	"name": true, "script": true, "args": true, "cwd": true, "instances": true, "exec_mode": true,
	"interpreter": true, "interpreter_args": true, "node_args": true, "env": true,
	"max_memory_restart": true, "cron_restart": true, "autorestart": true, "stop_exit_codes": true,
	"restart_delay": true, "exp_backoff_restart_delay": true, "min_uptime": true, "max_restarts": true,
	"kill_timeout": true, "wait_ready": true, "listen_timeout": true, "instance_var": true, "increment_var": true,
	"watch": true, "ignore_watch": true,
}

// herd.yaml, as written: field order is the order in the file.
type herdFile struct {
	Listen string              `yaml:"listen,omitempty"`
	Admin  string              `yaml:"admin,omitempty"`
	Apps   *yaml.Node          `yaml:"apps"`
	Routes []map[string]string `yaml:"routes"`
}

type herdApp struct {
	Command                string                       `yaml:"command"`
	Cwd                    string                       `yaml:"cwd,omitempty"`
	Interpreter            string                       `yaml:"interpreter,omitempty"`
	InterpreterArgs        string                       `yaml:"interpreter_args,omitempty"`
	Instances              any                          `yaml:"instances,omitempty"`
	Env                    map[string]string            `yaml:"env,omitempty"`
	EnvSets                map[string]map[string]string `yaml:",inline"`
	Ready                  map[string]any               `yaml:"ready,omitempty"`
	ListenTimeout          string                       `yaml:"listen_timeout,omitempty"`
	RestartDelay           string                       `yaml:"restart_delay,omitempty"`
	ExpBackoffRestartDelay string                       `yaml:"exp_backoff_restart_delay,omitempty"`
	MinUptime              string                       `yaml:"min_uptime,omitempty"`
	MaxRestarts            int                          `yaml:"max_restarts,omitempty"`
	KillTimeout            string                       `yaml:"kill_timeout,omitempty"`
	MaxMemoryRestart       string                       `yaml:"max_memory_restart,omitempty"`
	CronRestart            string                       `yaml:"cron_restart,omitempty"`
	Autorestart            *bool                        `yaml:"autorestart,omitempty"`
	StopExitCodes          []int                        `yaml:"stop_exit_codes,omitempty"`
	InstanceVar            string                       `yaml:"instance_var,omitempty"`
	IncrementVar           string                       `yaml:"increment_var,omitempty"`
	Watch                  any                          `yaml:"watch,omitempty"`
	IgnoreWatch            []string                     `yaml:"ignore_watch,omitempty"`
}

// Convert maps an ecosystem file's JSON ({"apps": [...]} or a bare list)
// to herd.yaml.
func Convert(data []byte) (*Result, error) {
	apps, err := parseApps(data)
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
	out := herdFile{Admin: "127.0.0.1:9090", Apps: &yaml.Node{Kind: yaml.MappingNode}}
	routed := ""
	used := map[string]bool{}
	for i, a := range apps {
		name := safeName(a.Name, i, used)
		if name != a.Name {
			note(name, "named %q in PM2; herd app names hold letters, digits, - and _", a.Name)
		}
		if a.Script == "" {
			return nil, fmt.Errorf("pm2import: app %q has no script", a.Name)
		}
		h := herdApp{Cwd: a.Cwd, InstanceVar: a.InstanceVar, IncrementVar: a.IncrementVar, CronRestart: a.CronRestart, Autorestart: a.Autorestart}
		cmd := []string{a.Script}
		args, err := words(a.Args)
		if err != nil {
			return nil, fmt.Errorf("pm2import: %s: args: %w", name, err)
		}
		h.Command = shellJoin(append(cmd, args...))
		switch {
		case a.Interpreter != "" && a.Interpreter != "none":
			h.Interpreter = a.Interpreter
		case a.Interpreter == "" && (strings.HasSuffix(a.Script, ".js") || strings.HasSuffix(a.Script, ".cjs") || strings.HasSuffix(a.Script, ".mjs")):
			h.Interpreter = "node" // PM2's default for JavaScript
		}
		iargs, _ := words(a.InterpreterArgs)
		nargs, _ := words(a.NodeArgs)
		if all := append(iargs, nargs...); len(all) > 0 {
			h.InterpreterArgs = shellJoin(all)
		}
		h.Instances = instances(a.Instances)
		if a.ExecMode == "fork" || a.ExecMode == "fork_mode" {
			if n, ok := h.Instances.(int); ok && n > 1 {
				note(name, "exec_mode fork with %d instances: herd runs them as %d instances behind its balancer, each on its own PORT", n, n)
			}
		}
		h.Env = map[string]string{}
		for k, v := range a.Env {
			h.Env[k] = scalar(v)
		}
		// PM2 cluster workers share one port; herd gives each instance its own
		// PORT and listens on the shared one itself.
		if port, ok := h.Env["PORT"]; ok {
			delete(h.Env, "PORT")
			if routed == "" {
				out.Listen = ":" + port
				routed = name
				note(name, "env.PORT %s became listen: :%s; herd gives each instance its own PORT and balances between them", port, port)
			} else {
				note(name, "env.PORT %s dropped: herd gives each instance its own PORT; route this app under routes: to reach it", port)
			}
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
		if a.WaitReady {
			h.Ready = map[string]any{"notify": true}
			note(name, "wait_ready: herd waits for READY=1 on $NOTIFY_SOCKET (systemd's sd_notify), not process.send('ready'); or use ready: {http: /health}")
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
		}
		keys := make([]string, 0, len(a.rest))
		for k := range a.rest {
			if !known[k] && !strings.HasPrefix(k, "env_") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			note(name, "%s is not mapped%s", k, hint(k))
		}
		var node yaml.Node
		if err := node.Encode(h); err != nil {
			return nil, fmt.Errorf("pm2import: %s: %w", name, err)
		}
		out.Apps.Content = append(out.Apps.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, &node)
	}
	if routed == "" {
		routed = safeName(apps[0].Name, 0, map[string]bool{})
		out.Listen = ":8080"
		note(routed, "no PORT in env; herd listens on :8080 and routes / to %s", routed)
	}
	out.Routes = []map[string]string{{"path": "/", "to": routed}}
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

func parseApps(data []byte) ([]app, error) {
	var wrapped struct {
		Apps []json.RawMessage `json:"apps"`
	}
	var list []json.RawMessage
	if err := json.Unmarshal(data, &wrapped); err == nil && wrapped.Apps != nil {
		list = wrapped.Apps
	} else if err := json.Unmarshal(data, &list); err != nil {
		var one json.RawMessage
		if json.Unmarshal(data, &one) != nil {
			return nil, fmt.Errorf("pm2import: not JSON: %w", err)
		}
		return nil, fmt.Errorf("pm2import: want {\"apps\": [...]} or a list of apps")
	}
	apps := make([]app, len(list))
	for i, raw := range list {
		if err := json.Unmarshal(raw, &apps[i]); err != nil {
			return nil, fmt.Errorf("pm2import: app %d: %w", i, err)
		}
		if err := json.Unmarshal(raw, &apps[i].rest); err != nil {
			return nil, fmt.Errorf("pm2import: app %d: %w", i, err)
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
	return apps, nil
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

func instances(raw json.RawMessage) any {
	s := strings.Trim(string(raw), `"`)
	switch s {
	case "", "null":
		return nil
	case "max", "-1", "0":
		return "max" // PM2: 0 and -1 mean one per CPU (-1: minus one; herd has no such form)
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n
	}
	return nil
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

func hint(key string) string {
	switch key {
	case "out_file", "error_file", "log_file", "merge_logs", "log_date_format", "log_type":
		return "; herd sends instance output to its own log (herd logs APP)"
	case "port":
		return "; put PORT under env and herd listens on it"
	}
	return ""
}
