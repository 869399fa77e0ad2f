package pm2import

import (
	"context"
	"github.com/herdhq/herd/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herdhq/herd/internal/config"
)

const ecosystemJSON = `{
  "apps": [
    {
      "name": "api server",
      "script": "./server.js",
      "args": ["--mode", "fast lane"],
      "instances": "max",
      "exec_mode": "cluster",
      "env": {"NODE_ENV": "development", "PORT": 3000, "DEBUG": false},
      "env_production": {"NODE_ENV": "production", "PORT": 3000},
      "max_memory_restart": "1G",
      "min_uptime": "10s",
      "max_restarts": 10,
      "autorestart": true,
      "watch": ["src"],
      "ignore_watch": ["*.log"],
      "out_file": "./logs/out.log",
      "kill_timeout": 5000,
      "wait_ready": true,
      "listen_timeout": 10000,
      "instance_var": "INSTANCE_ID",
      "cron_restart": "0 3 * * *",
      "node_args": "--max-old-space-size=2048",
      "stop_exit_codes": 0,
      "restart_delay": 250
    },
    {"name": "worker", "script": "worker.py", "interpreter": "python3", "instances": 2, "exp_backoff_restart_delay": 100}
  ]
}`

func TestConvert(t *testing.T) {
	res, err := Convert([]byte(ecosystemJSON))
	if err != nil {
		t.Fatal(err)
	}
	yml := string(res.YAML)
	for _, want := range []string{
		"listen: :3000",
		"api-server:",
		`command: ./server.js --mode 'fast lane'`,
		"interpreter: node",
		"interpreter_args: --max-old-space-size=2048",
		"instances: max",
		"NODE_ENV: development",
		`DEBUG: "false"`,
		"env_production:",
		"ready: ipc",
		"stop_signal: SIGINT",
		"listen_timeout: 10s",
		"restart_delay: 250ms",
		"min_uptime: 10s",
		"max_restarts: 10",
		"kill_timeout: 5s",
		"max_memory_restart: 1G",
		`cron_restart: 0 3 * * *`,
		"instance_var: INSTANCE_ID",
		"stop_exit_codes:\n      - 0",
		"worker:",
		"interpreter: python3",
		"exp_backoff_restart_delay: 100ms",
		"watch:\n      - src",
		"ignore_watch:\n      - '*.log'",
		"path: /\n    to: api-server",
	} {
		if !strings.Contains(yml, want) {
			t.Errorf("herd.yaml lacks %q:\n%s", want, yml)
		}
	}
	if strings.Contains(yml, "PORT") {
		t.Errorf("PORT kept in env; herd assigns it:\n%s", yml)
	}
	notes := strings.Join(res.Unmapped, "\n")
	for _, want := range []string{`named "api server"`, "env.PORT 3000 became listen: :3000", "out_file is not carried over: herd writes", "wait_ready became ready: ipc",
		"worker: a fork-mode app with no PORT"} {
		if !strings.Contains(notes, want) {
			t.Errorf("unmapped notes lack %q:\n%s", want, notes)
		}
	}

	// The result is a valid herd.yaml, given the programs exist.
	for _, prog := range []string{"node", "python3"} {
		testenv.Tool(t, prog)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "herd.yaml")
	os.WriteFile(path, res.YAML, 0o644)
	os.Mkdir(filepath.Join(dir, "src"), 0o755)
	// herd check finds a missing script, as PM2 does: give it the scripts.
	os.WriteFile(filepath.Join(dir, "server.js"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "worker.py"), nil, 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("converted herd.yaml does not load:\n%v\n%s", err, yml)
	}
	api := cfg.App("api-server")
	if got := strings.Join(api.Argv(), " "); got != "node --max-old-space-size=2048 ./server.js --mode fast lane" {
		t.Errorf("argv = %q", got)
	}
	if !api.Ready.IPC || api.MaxMemoryRestart != 1<<30 || api.EnvSets["production"]["NODE_ENV"] != "production" {
		t.Errorf("api-server = %+v", api)
	}
}

func TestConvertRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":  "apps: [",
		"no apps":   `{"apps": []}`,
		"no script": `[{"name": "x"}]`,
		"bad args":  `[{"name": "x", "script": "a", "args": 3}]`,
	} {
		if _, err := Convert([]byte(in)); err == nil {
			t.Errorf("%s: converted; want an error", name)
		}
	}
}

func TestLoadJavaScriptWithNode(t *testing.T) {
	testenv.Tool(t, "node")
	data, err := Load(context.Background(), "testdata/ecosystem.config.js")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.YAML), "api-server:") || !strings.Contains(string(res.YAML), "max_memory_restart: 1G") ||
		!strings.Contains(string(res.YAML), "merge_logs: true") || !strings.Contains(string(res.YAML), "log_date_format: YYYY-MM-DD HH:mm:ss Z") {
		t.Errorf("seed ecosystem converted to:\n%s", res.YAML)
	}
}
