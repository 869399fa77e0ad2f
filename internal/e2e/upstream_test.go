package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
)

// startTestapp runs the test app outside herd, as an upstream server, and
// returns its address and process.
func startTestapp(t *testing.T, greeting string) (string, *exec.Cmd) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(testappBin, "--greeting", greeting)
	cmd.Env = append(os.Environ(), "PORT="+strings.Split(addr, ":")[1])
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 5*time.Second, "the upstream server "+greeting, func() bool {
		c, err := netDial(addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, cmd
}

func TestStaticUpstreams(t *testing.T) {
	heavy, heavyCmd := startTestapp(t, "heavy")
	light, lightCmd := startTestapp(t, "light")
	spare, _ := startTestapp(t, "spare")
	off, _ := startTestapp(t, "off")
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP
upstreams:
  legacy:
    servers:
      - {url: http://%s, weight: 3}
      - {url: http://%s}
      - {url: http://%s, backup: true}
      - {url: http://%s, down: true}
    fail_timeout: 30s
routes:
  - path: /
    to: legacy
  - path: /web
    to: web
`, heavy, light, spare, off))

	greetings := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			var who whoAmI
			if code := h.getJSON("http://"+h.public+"/", &who); code != 200 {
				t.Fatalf("GET / = %d", code)
			}
			seen[who.Greeting]++
		}
		return seen
	}
	seen := greetings(80)
	if seen["heavy"] != 60 || seen["light"] != 20 {
		t.Errorf("weights 3:1 gave %v; want heavy 60, light 20, no backup, nothing to the down server", seen)
	}
	// With one primary gone, the other takes everything; the backup still waits.
	lightCmd.Process.Signal(syscall.SIGKILL)
	lightCmd.Wait()
	seen = greetings(20)
	if seen["heavy"] != 20 {
		t.Errorf("light gone: %v; want every request on heavy, none failed", seen)
	}
	// With every primary gone, the backup serves.
	heavyCmd.Process.Signal(syscall.SIGKILL)
	heavyCmd.Wait()
	seen = greetings(10)
	if seen["spare"] != 10 {
		t.Errorf("every primary gone: %v; want the backup to answer all", seen)
	}
}

// TestConfigReloadSwapsRoutes: SIGHUP re-reads herd.yaml and swaps routes
// and upstreams without failing a request; a broken file changes nothing.
func TestConfigReloadSwapsRoutes(t *testing.T) {
	legacy, _ := startTestapp(t, "legacy")
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP --greeting web
    instances: 2
upstreams:
  legacy:
    servers: [{url: "http://%s"}]
routes:
  - path: /
    to: web
`, legacy))
	l := startLoadGET("http://" + h.public)
	time.Sleep(200 * time.Millisecond)

	// herd keeps the path, so the new route is one the test app serves: /slow.
	h.rewriteConfig(t, "routes:\n", "routes:\n  - path: /slow\n    to: legacy\n")
	if out, err := h.cli("reload", "all"); err != nil {
		t.Fatalf("herd reload all: %v\n%s", err, out)
	}
	var who whoAmI
	res, body := get(t, "http://"+h.public+"/slow?ms=0")
	json.Unmarshal(body, &who)
	if res != 200 || who.Greeting != "legacy" {
		t.Errorf("GET /slow after the reload = %d %s; want the legacy upstream", res, body)
	}

	// A broken file changes nothing and says why.
	h.rewriteConfig(t, "to: legacy", "to: nowhere")
	out, err := h.cli("reload", "all")
	if err == nil || !strings.Contains(out, `herd.yaml:`) || !strings.Contains(out, "nothing was changed") {
		t.Errorf("reload with a bad file: %v\n%s; want the problem with its line and nothing changed", err, out)
	}
	if _, body := get(t, "http://"+h.public+"/slow?ms=0"); !strings.Contains(string(body), `"greeting":"legacy"`) {
		t.Errorf("after the refused reload GET /slow = %s; want the previous routes still served", body)
	}
	// SIGHUP does the same as reload all.
	h.rewriteConfig(t, "to: nowhere", "to: web")
	h.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "SIGHUP to route /slow to web", func() bool {
		var w whoAmI
		_, b := get(t, "http://"+h.public+"/slow?ms=0")
		json.Unmarshal(b, &w)
		return w.Greeting == "web"
	})
	time.Sleep(200 * time.Millisecond)
	l.finish(t)
}

func TestActiveHealthChecks(t *testing.T) {
	one, _ := startTestapp(t, "one")
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP
upstreams:
  good:
    servers: [{url: "http://%s"}]
    health: {path: /health, interval: 100ms}
  bad:
    servers: [{url: "http://%s"}]
    health: {path: /missing, interval: 100ms, fails: 2}
routes:
  - path: /
    to: good
  - path: /slow
    to: bad
    queue_timeout: 300ms
`, one, one))
	time.Sleep(500 * time.Millisecond) // a few probes
	if code, body := get(t, "http://"+h.public+"/"); code != 200 {
		t.Errorf("GET / via the passing upstream = %d %s", code, body)
	}
	code, body := get(t, "http://"+h.public+"/slow?ms=0")
	if code != 503 || !strings.Contains(string(body), "fails its health check") {
		t.Errorf("GET via the upstream failing its check = %d %s; want 503 saying why", code, body)
	}
	if !strings.Contains(h.out.String(), "health check fails; server out of service") {
		t.Errorf("herd's log does not say the server failed its check")
	}
}

// TestGatewayRoutesByServiceName is the seed's APIGateway: /api/NAME/...
// reaches the app or upstream NAME.
func TestGatewayRoutesByServiceName(t *testing.T) {
	legacy, _ := startTestapp(t, "legacy")
	h := startHerd(t, fmt.Sprintf(`
apps:
  users:
    command: TESTAPP --greeting users
    instances: 2
  orders:
    command: TESTAPP --greeting orders
upstreams:
  legacy:
    servers: [{url: "http://%s"}]
routes:
  - path: /api
    gateway: true
    queue_timeout: 300ms
`, legacy))
	for path, want := range map[string]string{
		"/api/users/":            "users",
		"/api/orders/slow?ms=0":  "orders",
		"/api/legacy/slow?ms=0":  "legacy",
		"/api/users/slow?ms=0&x": "users",
	} {
		var who whoAmI
		if code := h.getJSON("http://"+h.public+path, &who); code != 200 || who.Greeting != want {
			t.Errorf("GET %s = %d %+v; want %s", path, code, who, want)
		}
	}
	code, body := get(t, "http://"+h.public+"/api/billing/x")
	if code != 404 || !strings.Contains(string(body), `no service named \"billing\"`) || !strings.Contains(string(body), "legacy, orders, users") {
		t.Errorf("unknown service = %d %s; want 404 JSON listing the services", code, body)
	}
	if out, err := h.cli("stop", "orders"); err != nil {
		t.Fatalf("herd stop orders: %v\n%s", err, out)
	}
	code, body = get(t, "http://"+h.public+"/api/orders/")
	if code != 503 || !strings.Contains(string(body), `"app":"orders"`) {
		t.Errorf("stopped service = %d %s; want 503 JSON naming orders", code, body)
	}
}

// TestReloadKeepsUnchangedLimits: `herd reload all` keeps a route's rate
// limit state while its rate_limit: is unchanged (NGINX keeps its zones),
// and starts afresh when it changes.
func TestReloadKeepsUnchangedLimits(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
routes:
  - path: /
    to: web
    rate_limit: {rate: 2r/m}
`)
	get := func() int {
		res, err := http.Get("http://" + h.public + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if a, b := get(), get(); a != 200 || b != 429 {
		t.Fatalf("two requests at 2r/m = %d, %d; want 200, 429", a, b)
	}
	if out, err := h.cli("reload", "all"); err != nil {
		t.Fatalf("herd reload all: %v\n%s", err, out)
	}
	if code := get(); code != 429 {
		t.Errorf("after a reload that left the limit alone = %d; want still 429", code)
	}
	h.rewriteConfig(t, "2r/m", "3r/m")
	if out, err := h.cli("reload", "all"); err != nil {
		t.Fatalf("herd reload all: %v\n%s", err, out)
	}
	if code := get(); code != 200 {
		t.Errorf("after a reload that changed the limit = %d; want 200 from a fresh limit", code)
	}
}

// An edit of one server of an upstream keeps the others' live state: a
// server passive health marked down stays down across a reload that only
// changed another server's weight.
func TestReloadKeepsOtherServersState(t *testing.T) {
	live, _ := startTestapp(t, "live")
	dead := freeAddr(t) // nothing listens there
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP
upstreams:
  legacy:
    servers:
      - {url: http://%s}
      - {url: http://%s}
    fail_timeout: 5m
routes:
  - path: /
    to: legacy
`, dead, live))
	deadHealthy := func() bool {
		var body struct {
			Services []struct {
				Name      string `json:"name"`
				Instances []struct {
					ID      string `json:"id"`
					Healthy bool   `json:"healthy"`
				} `json:"instances"`
			} `json:"services"`
		}
		h.getJSON("http://"+h.admin+"/services", &body)
		for _, s := range body.Services {
			for _, in := range s.Instances {
				if s.Name == "legacy" && in.ID == dead {
					return in.Healthy
				}
			}
		}
		t.Fatalf("/services lacks legacy's %s: %+v", dead, body)
		return false
	}
	// Requests retry the dead server's connect error on the live one, and
	// mark the dead one down for fail_timeout.
	for range 4 {
		var who whoAmI
		if code := h.getJSON("http://"+h.public+"/", &who); code != 200 || who.Greeting != "live" {
			t.Fatalf("GET / = %d %+v; want the live server", code, who)
		}
	}
	if deadHealthy() {
		t.Fatal("the dead server is still healthy after connect errors")
	}
	h.rewriteConfig(t, "{url: http://"+live+"}", "{url: http://"+live+", weight: 2}")
	if out, err := h.cli("reload", "all"); err != nil {
		t.Fatalf("herd reload all: %v\n%s", err, out)
	}
	if deadHealthy() {
		t.Error("a reload that changed only the live server's weight made the dead server healthy again")
	}
}

// An upstream found in DNS (SRV records, as a Kubernetes headless Service
// has) follows the records: a server added to DNS takes requests, one
// removed stops taking them, and while DNS fails the last servers stay;
// no request fails throughout.
func TestUpstreamFromDNS(t *testing.T) {
	dns := testenv.StartDNS(t)
	a, _ := startTestapp(t, "a")
	b, _ := startTestapp(t, "b")
	port := func(addr string) uint16 {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return uint16(n)
	}
	dns.SetA("a.herd.test", "127.0.0.1")
	dns.SetA("b.herd.test", "127.0.0.1")
	const srv = "_http._tcp.api.herd.test"
	dns.SetSRV(srv, testenv.SRV{Target: "a.herd.test", Port: port(a)})
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP
upstreams:
  api:
    resolve: {srv: %s, every: 1s, resolver: %q}
routes:
  - path: /
    to: api
`, srv, dns.Addr))
	c := newRawClient(h.public)
	defer c.close()
	greetings := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			code, body, err := c.do("GET", "/", "")
			if err != nil || code != 200 {
				t.Fatalf("GET / = %d %s %v", code, body, err)
			}
			var who whoAmI
			json.Unmarshal(body, &who)
			seen[who.Greeting]++
		}
		return seen
	}
	waitFor(t, 10*time.Second, "the server in DNS to answer", func() bool { return greetings(4)["a"] == 4 })
	dns.SetSRV(srv, testenv.SRV{Target: "a.herd.test", Port: port(a)}, testenv.SRV{Target: "b.herd.test", Port: port(b)})
	waitFor(t, 10*time.Second, "a server added to DNS to take requests", func() bool { return greetings(10)["b"] > 0 })
	dns.SetSRV(srv, testenv.SRV{Target: "b.herd.test", Port: port(b)})
	waitFor(t, 10*time.Second, "a server removed from DNS to stop taking requests", func() bool { return greetings(10)["b"] == 10 })
	dns.Fail(true)
	waitFor(t, 10*time.Second, "herd to log the failing lookups", func() bool {
		return strings.Contains(h.out.String(), "DNS lookup failed; keeping the servers of the last answer")
	})
	if seen := greetings(10); seen["b"] != 10 {
		t.Errorf("while DNS fails: %v; want the last servers (b) to keep serving", seen)
	}
}
