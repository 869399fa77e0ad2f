package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNotifyReadinessAndQueueing(t *testing.T) {
	h := startHerdNoWait(t, `
apps:
  web:
    command: TESTAPP --notify --ready-delay 1s
    instances: 2
    ready: {notify: true}
routes:
  - path: /
    to: web
`)
	// Before READY=1 an instance is starting, never ready.
	waitFor(t, 5*time.Second, "the admin listener", func() bool {
		res, err := http.Get("http://" + h.admin + "/status")
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	})
	for _, in := range h.status()["web"] {
		if in.State != "starting" {
			t.Errorf("instance %d is %s before READY=1; want starting", in.Index, in.State)
		}
	}
	// A request sent now waits in the queue until an instance is ready.
	start := time.Now()
	code, body := get(t, "http://"+h.public+"/")
	if code != http.StatusOK {
		t.Fatalf("GET / during start-up = %d %s; want 200 after waiting", code, body)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("answered after %s; want it to have waited for readiness", waited)
	}
	h.waitHealthy(5 * time.Second)
}

func TestMetricsStatusAndLogs(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
    instances: 2
    ready: {http: /health}
routes:
  - path: /
    to: web
`)
	for range 10 {
		if code, _ := get(t, "http://"+h.public+"/"); code != 200 {
			t.Fatalf("GET / = %d", code)
		}
	}
	// A client that gives up is a 499, not a 502.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+h.public+"/slow?ms=3000", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("slow request succeeded; want a client timeout")
	}
	cancel()

	// The abandoned request ends on herd's side a moment after the client
	// left (the instance's answer, or its cancellation): await every line.
	wants := []string{
		`herd_requests_total{app="web",code="499",route="/"} 1`,
		`herd_requests_total{app="web",code="200",route="/"} 10`,
		`herd_request_duration_seconds_count{app="web",route="/"} 11`,
		`herd_instance_state{app="web",instance="0",state="ready"} 1`,
		`herd_instance_restarts_total{app="web",instance="1"} 0`,
		`herd_instance_cpu_ratio{app="web",instance="0"}`,
		`herd_instance_inflight_requests{app="web",instance="0"} 0`,
		`herd_instance_inflight_requests{app="web",instance="1"} 0`,
	}
	var metrics string
	missing := func() []string {
		var out []string
		for _, w := range wants {
			if !strings.Contains(metrics, w) {
				out = append(out, w)
			}
		}
		return out
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := get(t, "http://"+h.admin+"/metrics")
		metrics = string(body)
		if len(missing()) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range missing() {
		t.Errorf("/metrics lacks %s after 5s", w)
	}
	rss := regexp.MustCompile(`herd_instance_resident_memory_bytes\{app="web",instance="0"\} (\S+)`).FindStringSubmatch(metrics)
	if rss == nil {
		t.Fatal("/metrics lacks the RSS of instance 0")
	}
	if v, _ := strconv.ParseFloat(rss[1], 64); v < 1e6 {
		t.Errorf("RSS of instance 0 = %s bytes; want a real figure", rss[1])
	}
	// Per instance: the proxy's own count of each slot's responses (the 10
	// answered GETs between them; the abandoned one is not the instance's),
	// and what /proc says of each process.
	var answered float64
	for _, m := range regexp.MustCompile(`herd_instance_responses_total\{app="web",class="2xx",instance="[01]"\} (\S+)`).FindAllStringSubmatch(metrics, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		answered += v
	}
	if answered != 10 {
		t.Errorf("instances' 2xx responses add up to %g; want 10", answered)
	}
	for _, name := range []string{"herd_instance_open_files", "herd_instance_threads", "herd_instance_start_time_seconds", "herd_instance_ready_seconds"} {
		m := regexp.MustCompile(name + `\{app="web",instance="1"\} (\S+)`).FindStringSubmatch(metrics)
		if m == nil {
			t.Errorf("/metrics lacks %s of instance 1", name)
		} else if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 {
			t.Errorf("%s of instance 1 = %s; want a real figure", name, m[1])
		}
	}

	var st struct {
		Pid  int `json:"pid"`
		Apps []struct {
			Name      string `json:"name"`
			Instances []struct {
				State    string `json:"state"`
				Pid      int    `json:"pid"`
				Port     int    `json:"port"`
				RSSBytes int64  `json:"rss_bytes"`
			} `json:"instances"`
		} `json:"apps"`
	}
	h.getJSON("http://"+h.admin+"/status", &st)
	if st.Pid != h.cmd.Process.Pid || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 2 {
		t.Fatalf("/status = %+v", st)
	}
	for _, in := range st.Apps[0].Instances {
		if in.State != "ready" || in.Pid == 0 || in.Port == 0 || in.RSSBytes == 0 {
			t.Errorf("instance status %+v; want ready with pid, port and RSS", in)
		}
	}
	// Each instance's output is also in its own file under .herd/logs.
	for _, name := range []string{"web-0.log", "web-1.log"} {
		data, err := os.ReadFile(filepath.Join(h.dir, ".herd", "logs", name))
		if err != nil || !strings.Contains(string(data), "testapp ") {
			t.Errorf("log file %s: %v %q; want the instance's lines", name, err, data)
		}
	}
	// Each request is in the access log (flushed every second), NGINX-style.
	waitFor(t, 5*time.Second, "the access log", func() bool {
		data, _ := os.ReadFile(filepath.Join(h.dir, ".herd", "logs", "access.log"))
		return strings.Contains(string(data), `"GET / HTTP/1.1" 200 `) && strings.Contains(string(data), " 499 ")
	})
	// Instance output reaches herd's log with its app[index] prefix.
	for _, want := range []string{"web[0] testapp ", "web[1] testapp "} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("herd's output lacks %q", want)
		}
	}
}

func TestProxyHeadersAndUpgrade(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP --greeting "port ${PORT}"
routes:
  - path: /
    to: web
`)
	// $PORT in the command is the instance's own port.
	var who whoAmI
	var st struct {
		Apps []struct {
			Instances []struct{ Port int } `json:"instances"`
		} `json:"apps"`
	}
	h.getJSON("http://"+h.public+"/", &who)
	h.getJSON("http://"+h.admin+"/status", &st)
	if want := fmt.Sprintf("port %d", st.Apps[0].Instances[0].Port); who.Greeting != want {
		t.Errorf("greeting %q; want %q ($PORT expanded)", who.Greeting, want)
	}
	req, _ := http.NewRequest("GET", "http://"+h.public+"/headers", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // from an untrusted peer: replaced
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if got["X-Forwarded-For"] != "127.0.0.1" || got["X-Real-Ip"] != "127.0.0.1" || got["X-Forwarded-Proto"] != "http" {
		t.Errorf("forwarded headers %v; want the real peer only", got)
	}
	if id := got["X-Request-Id"]; len(id) != 32 || res.Header.Get("X-Request-Id") != id {
		t.Errorf("X-Request-Id %q, echoed %q; want a generated id echoed back", id, res.Header.Get("X-Request-Id"))
	}

	// An Upgrade passes through, and the connection then carries raw bytes.
	conn, err := net.Dial("tcp", h.public)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	up, err := http.ReadResponse(br, nil)
	if err != nil || up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v; want 101", up, err)
	}
	io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Errorf("echo over the upgraded connection = %q, %v; want ping", line, err)
	}
}
