package pm2import

import (
	"encoding/json"
	"github.com/herdhq/herd/internal/testenv"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/herdhq/herd/internal/config"
)

// TestEveryKey converts an app with each key of PM2's ecosystem reference
// set, one at a time: a key carried over shows in herd.yaml and gets no
// "not carried over" note; any other is named in the notes with its
// reason. Every key of rules has a row, and every row a rule.
func TestEveryKey(t *testing.T) {
	// value is the key's JSON value; yaml, a line herd.yaml must hold
	// (carried over); note, what the notes must say (not carried over).
	type row struct{ value, yaml, note string }
	notCarried := func(key string) row { return row{"true", "", key + " is not carried over: "} }
	rows := map[string]row{
		"name":                      {`"my app"`, "my-app:", ""},
		"script":                    {`"./server.js"`, "command: ./server.js", ""},
		"exec":                      {`"./other.js"`, "command: ./app.js", ""}, // script wins over its alias
		"args":                      {`"--a b"`, "command: ./app.js --a b", ""},
		"cwd":                       {`"srv"`, "cwd: srv", ""},
		"instances":                 {`-1`, "instances: max-1", ""},
		"exec_mode":                 {`"cluster"`, "path: /\n    to: web", ""},
		"interpreter":               {`"bun"`, "interpreter: bun", ""},
		"exec_interpreter":          {`"bun"`, "interpreter: bun", ""},
		"interpreter_args":          {`"--inspect"`, "interpreter_args: --inspect", ""},
		"interpreterArgs":           {`["--inspect"]`, "interpreter_args: --inspect", ""},
		"node_args":                 {`"--harmony"`, "interpreter_args: --harmony", ""},
		"env":                       {`{"A": 1}`, `A: "1"`, ""},
		"port":                      {`3000`, "listen: :3000", ""},
		"max_memory_restart":        {`"300M"`, "max_memory_restart: 300M", ""},
		"cron_restart":              {`"0 3 * * *"`, "cron_restart: 0 3 * * *", ""},
		"cron":                      {`"0 4 * * *"`, "cron_restart: 0 4 * * *", ""},
		"autorestart":               {`false`, "autorestart: false", ""},
		"stop_exit_codes":           {`[0, 3]`, "stop_exit_codes:\n      - 0\n      - 3", ""},
		"restart_delay":             {`250`, "restart_delay: 250ms", ""},
		"exp_backoff_restart_delay": {`100`, "exp_backoff_restart_delay: 100ms", ""},
		"min_uptime":                {`"10s"`, "min_uptime: 10s", ""},
		"max_restarts":              {`10`, "max_restarts: 10", ""},
		"kill_timeout":              {`3000`, "kill_timeout: 3s", ""},
		"wait_ready":                {`true`, "ready: ipc", ""},
		"listen_timeout":            {`8000`, "listen_timeout: 8s", ""},
		"instance_var":              {`"INSTANCE_ID"`, "instance_var: INSTANCE_ID", ""},
		"increment_var":             {`"PORT2"`, "increment_var: PORT2", ""},
		"watch":                     {`["src"]`, "watch:\n      - src", ""},
		"ignore_watch":              {`["node_modules"]`, "", ""}, // carried with watch (TestConvert)
		"merge_logs":                {`true`, "merge_logs: true", ""},
		"combine_logs":              {`true`, "merge_logs: true", ""},
		"log_date_format":           {`"YYYY-MM-DD HH:mm Z"`, "log_date_format: YYYY-MM-DD HH:mm Z", ""},
		"log_type":                  {`"json"`, "log_type: json", ""},
		"time":                      {`true`, "log_date_format: YYYY-MM-DD HH:mm:ss Z", ""},

		"name_prefix":                {`"x"`, "", "name_prefix is not carried over: herd names an app by its key"},
		"filter_env":                 {`["SECRET_"]`, "", "filter_env is not carried over: herd passes its own environment"},
		"namespace":                  {`"backend"`, "", "namespace is not carried over: herd has no namespaces"},
		"install_url":                {`"x"`, "", "install_url is not carried over"},
		"out_file":                   {`"out.log"`, "", "out_file is not carried over: herd writes each instance's output to logs.dir"},
		"out":                        {`"out.log"`, "", "out is not carried over: herd writes"},
		"output":                     {`"out.log"`, "", "output is not carried over: herd writes"},
		"out_log":                    {`"out.log"`, "", "out_log is not carried over: herd writes"},
		"error_file":                 {`"err.log"`, "", "error_file is not carried over: herd writes"},
		"error":                      {`"err.log"`, "", "error is not carried over: herd writes"},
		"err":                        {`"err.log"`, "", "err is not carried over: herd writes"},
		"err_file":                   {`"err.log"`, "", "err_file is not carried over: herd writes"},
		"err_log":                    {`"err.log"`, "", "err_log is not carried over: herd writes"},
		"log_file":                   {`"all.log"`, "", "log_file is not carried over: herd writes"},
		"log":                        {`"all.log"`, "", "log is not carried over: herd writes"},
		"disable_logs":               {`true`, "", "disable_logs is not carried over: herd turns log files off for every app at once, with logs: {off: true}"},
		"pid_file":                   {`"x.pid"`, "", "pid_file is not carried over: herd keeps the instances' PIDs itself"},
		"pid":                        {`"x.pid"`, "", "pid is not carried over: herd keeps"},
		"source_map_support":         {`true`, "", "source_map_support is not carried over: PM2 injects a source-map module; for Node's own, add --enable-source-maps"},
		"disable_source_map_support": {`false`, "", "disable_source_map_support is not carried over"},
		"shutdown_with_message":      {`true`, "", "shutdown_with_message is not carried over: herd stops an instance with its stop_signal"},
		"vizion":                     {`false`, "", "vizion is not carried over: herd does not read git metadata"},
		"watch_delay":                {`1000`, "", "watch_delay is not carried over: herd waits 300ms"},
		"watch_options":              {`{"usePolling": true}`, "", "watch_options is not carried over: chokidar options"},
		"execute_command":            notCarried("execute_command"),
		"force":                      {`true`, "", "force is not carried over: herd runs each app of herd.yaml once"},
		"append_env_to_name":         notCarried("append_env_to_name"),
		"post_update":                {`["npm install"]`, "", "post_update is not carried over: these run after a Keymetrics dashboard pull; herd runs build:"},
		"trace":                      {`true`, "", "trace is not carried over: PM2/Keymetrics monitoring; herd exports per-instance metrics"},
		"disable_trace":              notCarried("disable_trace"),
		"v8":                         notCarried("v8"),
		"event_loop_inspector":       notCarried("event_loop_inspector"),
		"deep_monitoring":            notCarried("deep_monitoring"),
		"pmx":                        notCarried("pmx"),
		"automation":                 notCarried("automation"),
		"io":                         {`{"conf": {}}`, "", "io is not carried over: PM2/Keymetrics monitoring"},
		"treekill":                   {`false`, "", "treekill is not carried over: herd always stops an instance's whole process group"},
		"username":                   {`"www"`, "", "username is not carried over: herd runs instances as the user herd runs as"},
		"uid":                        {`"www"`, "", "uid is not carried over: herd runs instances as the user herd runs as"},
		"user":                       {`"www"`, "", "user is not carried over"},
		"gid":                        {`"www"`, "", "gid is not carried over: herd runs instances with herd's group"},
		"windowsHide":                notCarried("windowsHide"),
		"kill_retry_time":            {`200`, "", "kill_retry_time is not carried over: herd sends SIGKILL once"},
		"write":                      notCarried("write"),
	}
	for key := range rules {
		if _, ok := rows[key]; !ok {
			t.Errorf("rules has %s but the table has no row for it", key)
		}
	}
	for key, r := range rows {
		t.Run(key, func(t *testing.T) {
			if _, ok := rules[key]; !ok {
				t.Fatalf("the table has %s but rules has no rule for it", key)
			}
			app := map[string]json.RawMessage{"name": json.RawMessage(`"web"`), "script": json.RawMessage(`"./app.js"`)}
			app[key] = json.RawMessage(r.value)
			in, err := json.Marshal(map[string]any{"apps": []any{app}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(in)
			if err != nil {
				t.Fatal(err)
			}
			yml, notes := string(res.YAML), strings.Join(res.Unmapped, "\n")
			if r.yaml != "" && !strings.Contains(yml, r.yaml) {
				t.Errorf("herd.yaml lacks %q:\n%s", r.yaml, yml)
			}
			if r.note != "" && !strings.Contains(notes, r.note) {
				t.Errorf("notes lack %q:\n%s", r.note, notes)
			}
			if rules[key].carried && strings.Contains(notes, key+" is not") {
				t.Errorf("%s is carried over, but the notes say otherwise:\n%s", key, notes)
			}
		})
	}
}

// TestKeyWithPM2sDefault: a key set to the value herd behaves as anyway
// needs no note.
func TestKeyWithPM2sDefault(t *testing.T) {
	res, err := Convert([]byte(`{"apps": [{"name": "web", "script": "./app.js", "port": 3000, "treekill": true, "shutdown_with_message": false, "disable_logs": false}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Unmapped {
		if strings.Contains(n, "not carried over") {
			t.Errorf("got note %q; want none for a PM2 default herd keeps", n)
		}
	}
}

func TestUnknownKeyAndDeploy(t *testing.T) {
	res, err := Convert([]byte(`{"apps": [{"name": "web", "script": "./app.js", "port": 3000, "colour": "red"}],
		"deploy": {"production": {"user": "node", "host": "h"}, "staging": {}}}`))
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(res.Unmapped, "\n")
	for _, want := range []string{
		"web: colour is not a key of PM2's ecosystem reference that herd knows; not carried over",
		"deploy: the deploy: block (production, staging) is not carried over: herd does not deploy",
		"use your CI/CD",
	} {
		if !strings.Contains(strings.ReplaceAll(notes, "ship the code with your CI/CD", "use your CI/CD"), want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(string(res.YAML), "deploy") {
		t.Errorf("herd.yaml holds the deploy block:\n%s", res.YAML)
	}
}

// TestWorkersAndPorts: which apps are workers (ready: none, no route) and
// which serve a port (routed).
func TestWorkersAndPorts(t *testing.T) {
	tests := []struct {
		name, app       string
		ready, route    string // "" for none
		listen, noteHas string
	}{
		{"fork without a port is a worker", `{"name": "w", "script": "w.js"}`, "none", "", "", "w: a fork-mode app with no PORT (in env or port:) and no port in its args looks like a worker: it got ready: none"},
		{"fork mode written out", `{"name": "w", "script": "w.js", "exec_mode": "fork_mode"}`, "none", "", "", "ready: none"},
		{"a worker with wait_ready is ipc", `{"name": "w", "script": "w.js", "wait_ready": true}`, "ipc", "", "", "wait_ready became ready: ipc"},
		{"env.PORT serves", `{"name": "web", "script": "a.js", "env": {"PORT": 3000}}`, "", "web", ":3000", "env.PORT 3000 became listen: :3000"},
		{"port: serves", `{"name": "web", "script": "a.js", "port": 4000}`, "", "web", ":4000", "port: 4000 became listen: :4000"},
		{"a port in the args serves", `{"name": "web", "script": "a.js", "args": "--port 3000"}`, "", "web", ":8080", "no PORT in env; herd listens on :8080"},
		{"cluster mode serves", `{"name": "web", "script": "a.js", "exec_mode": "cluster"}`, "", "web", ":8080", "routes / to web"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Convert([]byte(`{"apps": [` + tc.app + `]}`))
			if err != nil {
				t.Fatal(err)
			}
			yml, notes := string(res.YAML), strings.Join(res.Unmapped, "\n")
			has := func(s string) bool { return strings.Contains(yml, s) }
			if tc.ready != "" && !has("ready: "+tc.ready) || tc.ready == "" && has("ready:") {
				t.Errorf("got herd.yaml:\n%s\nwant ready %q", yml, tc.ready)
			}
			if tc.route != "" && !has("routes:\n  - path: /\n    to: "+tc.route) || tc.route == "" && has("routes:") {
				t.Errorf("got herd.yaml:\n%s\nwant a route to %q", yml, tc.route)
			}
			if tc.listen != "" && !has("listen: "+tc.listen+"\n") || tc.listen == "" && has("listen:") {
				t.Errorf("got herd.yaml:\n%s\nwant listen %q", yml, tc.listen)
			}
			if !strings.Contains(notes, tc.noteHas) {
				t.Errorf("notes lack %q:\n%s", tc.noteHas, notes)
			}
		})
	}
}

// TestConvertedLoads: what the importer writes for workers, instances -1,
// merge_logs, log_date_format and wait_ready loads into the config herd
// runs, with those meanings.
func TestConvertedLoads(t *testing.T) {
	testenv.Tool(t, "node") // the converted config names it
	res, err := Convert([]byte(`{"apps": [
		{"name": "web", "script": "web.js", "instances": -1, "exec_mode": "cluster", "env": {"PORT": 3000},
		 "merge_logs": true, "log_date_format": "YYYY-MM-DD HH:mm Z", "wait_ready": true},
		{"name": "worker", "script": "worker.js"}
	], "deploy": {"production": {}}}`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"web.js", "worker.js"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	path := filepath.Join(dir, "herd.yaml")
	os.WriteFile(path, res.YAML, 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("converted herd.yaml does not load:\n%v\n%s", err, res.YAML)
	}
	web, worker := cfg.App("web"), cfg.App("worker")
	tests := []struct {
		name      string
		got, want any
	}{
		{"web instances", web.Instances, config.Instances(max(runtime.NumCPU()-1, 1))},
		{"web merge_logs", web.MergeLogs, true},
		{"web log_date_format", web.LogDateFormat, "YYYY-MM-DD HH:mm Z"},
		{"web ready", web.Ready, config.Ready{IPC: true}},
		{"worker ready", worker.Ready, config.Ready{Process: true}},
		{"routes", len(cfg.Routes), 1},
		{"route to", cfg.Routes[0].To, "web"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, tc.got, tc.want)
		}
	}
}
