package deploytest

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/herdhq/herd/internal/config"
)

// composeEnv is what compose.yaml asks the user to export.
var composeEnv = map[string]string{
	"HERD_ADMIN_TOKEN":  "0123456789abcdef0123456789abcdef",
	"POSTGRES_PASSWORD": "test-password",
}

// loadCompose loads deploy/compose.yaml as `docker compose` would, with env.
func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy")
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("herd-shop", true) })
}

// TestDeployComposeNeedsSecrets: compose.yaml refuses to start without the
// PostgreSQL password, naming it.
func TestDeployComposeNeedsSecrets(t *testing.T) {
	_, err := loadCompose(t, map[string]string{"HERD_ADMIN_TOKEN": composeEnv["HERD_ADMIN_TOKEN"]})
	if err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
		t.Fatalf("loading compose.yaml without POSTGRES_PASSWORD: got %v; want an error naming it", err)
	}
}

// TestDeployCompose loads deploy/compose.yaml with compose-go (the compose
// specification's own library: schema, interpolation, consistency) and
// checks what its parts say about each other and about herd and the shop.
func TestDeployCompose(t *testing.T) {
	p, err := loadCompose(t, composeEnv)
	if err != nil {
		t.Fatalf("loading deploy/compose.yaml: %v", err)
	}
	want := []string{"edge", "node", "postgres", "postgres-replica", "redis"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services: got %v; want %v", got, want)
	}
	shopEnv := shopEnvironment(t)
	herdConfigs := map[string]*config.Config{} // by service
	usedVolumes := map[string]bool{}

	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		t.Run(name, func(t *testing.T) {
			if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[0] == "NONE" {
				t.Errorf("no health check; depends_on: service_healthy needs one")
			}
			for dep, d := range s.DependsOn {
				target, ok := p.Services[dep]
				switch {
				case !ok:
					t.Errorf("depends_on %s: no such service", dep)
				case d.Condition != types.ServiceConditionHealthy:
					t.Errorf("depends_on %s: condition %q; want service_healthy", dep, d.Condition)
				case target.HealthCheck == nil:
					t.Errorf("depends_on %s: condition service_healthy, but %s has no health check", dep, dep)
				}
			}
			if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.NanoCPUs == 0 ||
				s.Deploy.Resources.Limits.MemoryBytes == 0 || s.Deploy.Resources.Reservations == nil {
				t.Errorf("deploy.resources: want limits (cpus, memory) and reservations, as the seed has")
			}
			for _, v := range s.Volumes {
				switch v.Type {
				case types.VolumeTypeVolume:
					if _, ok := p.Volumes[v.Source]; !ok {
						t.Errorf("volume %s: not declared under volumes:", v.Source)
					}
					usedVolumes[v.Source] = true
				case types.VolumeTypeBind:
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("bind mount %s: %v", v.Source, err)
					}
				}
			}
			for net := range s.Networks {
				if _, ok := p.Networks[net]; !ok {
					t.Errorf("network %s: not declared", net)
				}
			}
			// The services that run herd: their config, health check and
			// admin token.
			if !strings.HasPrefix(s.Image, "localhost/herd") {
				return
			}
			cfg := herdConfigOf(t, p, s)
			herdConfigs[name] = cfg
			if hc := s.HealthCheck; hc != nil {
				if got := strings.Join(hc.Test, " "); got != "CMD /usr/local/bin/herd health -f "+s.Command[2] {
					t.Errorf("health check %q; want herd health on the config the service runs (%s)", got, s.Command[2])
				}
			}
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= maxKillTimeout(cfg) {
				t.Errorf("stop_grace_period %v; want it above the apps' kill_timeout %s, or a drain is cut short", s.StopGracePeriod, maxKillTimeout(cfg))
			}
			for k, v := range s.Environment {
				if !shopEnv[k] {
					t.Errorf("environment %s: the shop does not read it (it reads %v)", k, keys(shopEnv))
				}
				if v != nil && strings.Contains(*v, "://") {
					checkHostIsService(t, p, "environment "+k, *v)
				}
			}
			if cfg.Registry.Redis != "" {
				checkHostIsService(t, p, "registry.redis", cfg.Registry.Redis)
			}
		})
	}
	for v := range p.Volumes {
		if !usedVolumes[v] {
			t.Errorf("volume %s: declared but no service mounts it", v)
		}
	}

	edge, node := herdConfigs["edge"], herdConfigs["node"]
	if edge == nil || node == nil {
		t.Fatal("edge and node must run herd")
	}
	// edge balances over the node replicas, found by their service name.
	if len(edge.Upstreams) != 1 || edge.Upstreams[0].Resolve == nil {
		t.Fatalf("edge: want one upstream that resolves the nodes")
	}
	r := edge.Upstreams[0].Resolve
	if _, ok := p.Services[r.Name]; !ok || r.Name != "node" {
		t.Errorf("edge resolves %q; want the node service", r.Name)
	}
	if got := portOf(t, node.Listen); r.Port != got {
		t.Errorf("edge reaches the nodes at port %d; they listen on %d", r.Port, got)
	}
	if n := p.Services["node"].Deploy.Replicas; n == nil || *n != 2 {
		t.Errorf("node replicas: got %v; want 2", n)
	}
	// The published port is the one edge listens on.
	ports := p.Services["edge"].Ports
	if len(ports) == 0 || ports[0].Target != uint32(portOf(t, edge.Listen)) {
		t.Errorf("edge publishes %v; want its listen: port %d", ports, portOf(t, edge.Listen))
	}
	for _, name := range []string{"node", "redis", "postgres", "postgres-replica"} {
		if len(p.Services[name].Ports) > 0 {
			t.Errorf("%s publishes ports; only edge should be reached from outside", name)
		}
	}
	// Redis keeps its data: AOF on, in a named volume.
	if cmd := strings.Join(p.Services["redis"].Command, " "); !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis command %q; want --appendonly yes", cmd)
	}
	// The replica streams from the primary.
	if env := p.Services["postgres-replica"].Environment["PRIMARY_HOST"]; env == nil || *env != "postgres" {
		t.Errorf("postgres-replica PRIMARY_HOST: got %v; want postgres", env)
	}
}

// herdConfigOf loads, with herd's own loader, the config that a herd
// service runs (command up -f PATH, PATH a config mounted there), with the
// image's paths mapped onto this machine: the admin token file onto a
// temporary file of the token, the shop onto an existing program.
func herdConfigOf(t *testing.T, p *types.Project, s types.ServiceConfig) *config.Config {
	t.Helper()
	if len(s.Command) != 3 || s.Command[0] != "up" || s.Command[1] != "-f" {
		t.Fatalf("command %v; want up -f CONFIG", s.Command)
	}
	var file string
	for _, c := range s.Configs {
		if c.Target == s.Command[2] {
			file = p.Configs[c.Source].File
		}
	}
	if file == "" {
		t.Fatalf("%s: no config is mounted at %s", s.Name, s.Command[2])
	}
	tokenFile := ""
	for _, sec := range s.Secrets {
		def, ok := p.Secrets[sec.Source]
		if !ok {
			t.Fatalf("secret %s: not declared", sec.Source)
		}
		if def.Environment == "" || len(composeEnv[def.Environment]) < 16 {
			t.Errorf("secret %s: want it from an exported variable of 16 or more characters", sec.Source)
		}
		tokenFile = filepath.Join(t.TempDir(), sec.Source)
		if err := os.WriteFile(tokenFile, []byte(composeEnv[def.Environment]), 0o600); err != nil {
			t.Fatal(err)
		}
		target := sec.Target
		if target == "" {
			target = "/run/secrets/" + sec.Source
		}
		defer func(target string) {
			if cfg := loadHerdConfig(t, file, map[string]string{target: tokenFile}); cfg.AdminAuth.Token == "" {
				t.Errorf("%s: admin_auth does not read the token from %s", file, target)
			}
		}(target)
	}
	return loadHerdConfig(t, file, map[string]string{"/run/secrets/herd_admin_token": tokenFile})
}

// loadHerdConfig parses a herd config as `herd up` would, after replacing
// each key of paths by its value, and /usr/local/bin/shop (the image's)
// by this test's binary, which exists.
func loadHerdConfig(t *testing.T, file string, paths map[string]string) *config.Config {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for from, to := range paths {
		if to != "" {
			text = strings.ReplaceAll(text, from, to)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text = strings.ReplaceAll(text, "/usr/local/bin/shop", self)
	cfg, err := config.Parse(file, []byte(text))
	if err != nil {
		t.Fatalf("herd's loader refuses %s: %v", file, err)
	}
	if !strings.HasPrefix(cfg.Listen, "0.0.0.0:") {
		t.Errorf("%s: listen %s; in a container it must take every interface", file, cfg.Listen)
	}
	return cfg
}

// shopEnvironment is every variable examples/shop reads with getenv.
func shopEnvironment(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "examples", "shop", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`getenv\("([A-Z_]+)"\)`)
	vars := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			vars[m[1]] = true
		}
	}
	if !vars["DATABASE_URL"] || !vars["REDIS_URL"] {
		t.Fatalf("found %v in examples/shop; the pattern no longer finds its getenv calls", keys(vars))
	}
	return vars
}

// checkHostIsService fails unless every URL in list (comma-separated)
// names a service of the project as its host.
func checkHostIsService(t *testing.T, p *types.Project, what, list string) {
	t.Helper()
	for raw := range strings.SplitSeq(list, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		if _, ok := p.Services[u.Hostname()]; !ok {
			t.Errorf("%s: host %q is no service of compose.yaml", what, u.Hostname())
		}
	}
}

func maxKillTimeout(cfg *config.Config) time.Duration {
	var d time.Duration
	for _, a := range cfg.Apps {
		d = max(d, time.Duration(a.KillTimeout))
	}
	return d
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
