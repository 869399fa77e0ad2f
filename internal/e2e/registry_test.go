package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
	"github.com/herdhq/herd/svcclient"
)

type servicesBody struct {
	Services []struct {
		Name      string `json:"name"`
		Kind      string `json:"kind"`
		Healthy   int    `json:"healthy"`
		Instances []struct {
			ID      string `json:"id"`
			URL     string `json:"url"`
			Healthy bool   `json:"healthy"`
			Node    string `json:"node"`
		} `json:"instances"`
	} `json:"services"`
}

func TestRegistryOverTheAdminAPI(t *testing.T) {
	billing, billingCmd := startTestapp(t, "billing")
	// /health stays 503 until billing registers, so wait for the instances.
	h := startHerdNoWait(t, `
apps:
  users:
    command: TESTAPP --greeting users
    instances: 2
registry:
  check: {interval: 100ms, fails: 2}
  require: [users, billing]
routes:
  - path: /api
    gateway: true
    queue_timeout: 200ms
  - path: /healthz
    serve: health
  - path: /services
    serve: services
`)
	h.waitAllReady()
	adminURL := "http://" + h.admin
	code, body := get(t, adminURL+"/health")
	if code != 503 || !strings.Contains(string(body), `"failing": [`) || !strings.Contains(string(body), "no ready instance of: billing") {
		t.Fatalf("/health before billing registers = %d %s; want 503 naming billing", code, body)
	}
	// Instances reach the gateway on herd's internal loopback listener,
	// which serves the same routes as the public one.
	code, body = get(t, "http://"+h.public+"/api/users/env?name=HERD_GATEWAY_URL")
	gateway := string(body)
	if code != 200 || !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/api$`).MatchString(gateway) {
		t.Fatalf("an instance's HERD_GATEWAY_URL = %d %q; want http://127.0.0.1:PORT/api", code, body)
	}
	if code, body := get(t, gateway+"/users/env?name=HERD_APP"); code != 200 || string(body) != "users" {
		t.Errorf("GET %s/users/env = %d %q; want the users service through the instances' listener", gateway, code, body)
	}

	code, reply := sendJSON(t, "POST", adminURL+"/services", fmt.Sprintf(`{"name": "billing", "url": "http://%s", "ttl": "2s"}`, billing), nil)
	if code != 200 {
		t.Fatalf("POST /services = %d %s; want 200", code, reply)
	}
	var who whoAmI
	if code := h.getJSON("http://"+h.public+"/api/billing/", &who); code != 200 || who.Greeting != "billing" {
		t.Fatalf("GET /api/billing/ = %d %+v; want the registered billing", code, who)
	}
	for _, url := range []string{adminURL + "/health", "http://" + h.public + "/healthz"} {
		if code, body := get(t, url); code != 200 {
			t.Errorf("%s with every required service up = %d %s; want 200", url, code, body)
		}
	}
	var list servicesBody
	if code := h.getJSON("http://"+h.public+"/services", &list); code != 200 || len(list.Services) != 2 {
		t.Fatalf("public /services = %d %+v; want users and billing", code, list)
	}
	if s := list.Services[0]; s.Name != "users" || s.Kind != "app" || s.Healthy != 2 {
		t.Errorf("users in /services = %+v; want an app with 2 healthy", s)
	}
	if s := list.Services[1]; s.Name != "billing" || s.Kind != "registered" || s.Instances[0].URL != "http://"+billing {
		t.Errorf("billing in /services = %+v; want registered at %s", s, billing)
	}

	// A heartbeat keeps it; then the server dies: the health check takes
	// it out of service long before its registration expires.
	if code, reply := sendJSON(t, "POST", adminURL+"/services", fmt.Sprintf(`{"name": "billing", "url": "http://%s", "ttl": 3}`, billing), nil); code != 200 {
		t.Fatalf("heartbeat = %d %s", code, reply)
	}
	billingCmd.Process.Kill()
	waitFor(t, 5*time.Second, "the dead billing to fail its health check", func() bool {
		code, _ := get(t, adminURL+"/health")
		return code == 503
	})
	code, body = get(t, "http://"+h.public+"/api/billing/")
	if code != 503 || !strings.Contains(string(body), "billing") {
		t.Errorf("GET a service whose only instance is down = %d %s; want 503 naming it", code, body)
	}
	// Without heartbeats it expires, and the gateway no longer knows it.
	waitFor(t, 6*time.Second, "billing's registration to expire", func() bool {
		code, _ := get(t, "http://"+h.public+"/api/billing/")
		return code == 404
	})

	// DELETE takes a registration out at once.
	code, reply = sendJSON(t, "POST", adminURL+"/services", fmt.Sprintf(`{"name": "audit", "url": "http://%s"}`, freeAddr(t)), nil)
	var saved struct{ ID string }
	json.Unmarshal([]byte(reply), &saved)
	if code != 200 || saved.ID == "" {
		t.Fatalf("register audit = %d %s", code, reply)
	}
	req, _ := http.NewRequest("DELETE", adminURL+"/services/audit/"+saved.ID, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("DELETE = %v %v; want 204", res, err)
	}
	res.Body.Close()
	if code, body := get(t, "http://"+h.public+"/api/audit/"); code != 404 {
		t.Errorf("a deregistered service = %d %s; want 404", code, body)
	}
	if code, reply := sendJSON(t, "POST", adminURL+"/services", `{"name": "users", "url": "http://127.0.0.1:1"}`, nil); code != 409 || !strings.Contains(reply, `"field": "name"`) {
		t.Errorf("registering an app's name = %d %s; want 409 naming the field", code, reply)
	}
}

// TestNodesShareARedisRegistry runs two herd processes on one real Redis:
// each routes to the other's apps and to what was registered on either,
// and a node that stops is forgotten at once.
func TestNodesShareARedisRegistry(t *testing.T) {
	redisURL := testenv.Redis(t)
	prefix := "herde2e:" + randomHex(t) + ":"
	config := func(app string) string {
		return fmt.Sprintf(`
apps:
  %s:
    command: TESTAPP --greeting %s
    instances: 2
registry:
  redis: %s
  prefix: "%s"
routes:
  - path: /api
    gateway: true
    queue_timeout: 200ms
`, app, app, redisURL, prefix)
	}
	a := startHerd(t, config("users"))
	bnode := startHerd(t, config("orders"))

	greeting := func(h *herd, service string) string {
		var who whoAmI
		if code := h.getJSON("http://"+h.public+"/api/"+service+"/", &who); code != 200 {
			return ""
		}
		return who.Greeting
	}
	waitFor(t, 5*time.Second, "node b to route to a's users", func() bool { return greeting(bnode, "users") == "users" })
	waitFor(t, 5*time.Second, "node a to route to b's orders", func() bool { return greeting(a, "orders") == "orders" })

	billing, _ := startTestapp(t, "billing")
	start := time.Now()
	if code, reply := sendJSON(t, "POST", "http://"+a.admin+"/services", fmt.Sprintf(`{"name": "billing", "url": "http://%s", "ttl": "30s"}`, billing), nil); code != 200 {
		t.Fatalf("register on a = %d %s", code, reply)
	}
	waitFor(t, 5*time.Second, "node b to route to billing", func() bool { return greeting(bnode, "billing") == "billing" })
	// Announced on a channel, or at worst read at the next 500 ms poll; the
	// bound leaves room for a loaded test machine.
	took := time.Since(start)
	t.Logf("node b routed to billing %s after it registered on node a", took)
	if took > 2*time.Second {
		t.Errorf("node b routed to a registration made on a after %s; want within a second or so", took)
	}
	var list servicesBody
	bnode.getJSON("http://"+bnode.admin+"/services", &list)
	var users int
	for _, s := range list.Services {
		if s.Name == "users" {
			users = s.Healthy
		}
	}
	if users != 2 {
		t.Errorf("node b's /services shows %d healthy users; want a's 2: %+v", users, list)
	}

	a.cmd.Process.Signal(syscall.SIGTERM)
	a.waitExit(20 * time.Second)
	waitFor(t, 3*time.Second, "node b to forget the stopped node's users", func() bool {
		code, _ := get(t, "http://"+bnode.public+"/api/users/")
		return code == 404
	})
}

// TestNodesShareARedisRateLimit: two herd nodes with one rate_limit.redis
// count a client's requests together, as one NGINX zone would on one box.
func TestNodesShareARedisRateLimit(t *testing.T) {
	redisURL := testenv.Redis(t)
	config := fmt.Sprintf(`
apps:
  web:
    command: TESTAPP
registry:
  prefix: "herde2e:%s:"
routes:
  - path: /
    to: web
    rate_limit: {rate: 6r/m, burst: 2, nodelay: true, key: "header:X-Client", redis: "%s"}
`, randomHex(t), redisURL)
	nodes := []*herd{startHerd(t, config), startHerd(t, config)}
	send := func(h *herd, client string) int {
		req, _ := http.NewRequest("GET", "http://"+h.public+"/", nil)
		req.Header.Set("X-Client", client)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 429 && res.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return res.StatusCode
	}
	// 1 + a burst of 2 pass, whichever node they reach; the 4th is refused.
	var codes []int
	for i := range 4 {
		codes = append(codes, send(nodes[i%2], "alice"))
	}
	if fmt.Sprint(codes) != "[200 200 200 429]" {
		t.Errorf("alice's 4 requests alternating between two nodes: %v; want [200 200 200 429]", codes)
	}
	if code := send(nodes[1], "bob"); code != 200 {
		t.Errorf("another client = %d; want 200", code)
	}
}

// TestSvcclientAgainstHerd calls a real herd's services with svcclient, both
// through the gateway and straight from the registry, and sees the breaker
// open on a stopped app.
func TestSvcclientAgainstHerd(t *testing.T) {
	h := startHerd(t, `
apps:
  users:
    command: TESTAPP --greeting users
    instances: 2
routes:
  - path: /api
    gateway: true
    queue_timeout: 100ms
`)
	ctx := context.Background()
	for name, resolver := range map[string]svcclient.Resolver{
		"gateway":  svcclient.Gateway("http://" + h.public + "/api"),
		"registry": svcclient.Registry("http://"+h.admin, time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			c := svcclient.New(resolver, svcclient.WithBreaker(3, time.Minute))
			pids := map[int]bool{}
			for range 6 {
				var who whoAmI
				if err := c.Get(svcclient.WithRequestID(ctx, "e2e-"+name), "users", "/", &who); err != nil || who.Greeting != "users" {
					t.Fatalf("GET users: %+v, %v", who, err)
				}
				pids[who.Pid] = true
			}
			if len(pids) != 2 {
				t.Errorf("calls reached %d instances; want both", len(pids))
			}
			var headers map[string]string
			if err := c.Get(svcclient.WithRequestID(ctx, "e2e-"+name), "users", "/headers", &headers); err != nil || headers["X-Request-Id"] != "e2e-"+name {
				t.Errorf("the instance saw X-Request-Id %v (%v); want e2e-%s", headers["X-Request-Id"], err, name)
			}
			var e *svcclient.Error
			if err := c.Get(ctx, "billing", "/", nil); !errors.As(err, &e) || e.Status != 404 {
				t.Errorf("an unknown service: %v; want a 404 *svcclient.Error", err)
			}
		})
	}
	if out, err := h.cli("stop", "users"); err != nil {
		t.Fatalf("herd stop users: %v\n%s", err, out)
	}
	c := svcclient.New(svcclient.Gateway("http://"+h.public+"/api"), svcclient.WithBreaker(2, time.Minute), svcclient.WithRetries(1))
	for range 2 {
		if err := c.Get(ctx, "users", "/", nil); svcclient.StatusOf(err) != 503 {
			t.Fatalf("a stopped app: %v; want 503", err)
		}
	}
	if err := c.Get(ctx, "users", "/", nil); !errors.Is(err, svcclient.ErrCircuitOpen) {
		t.Errorf("after 2 failures: %v; want the circuit open", err)
	}
}
