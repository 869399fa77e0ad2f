package e2e

import (
	"encoding/json"
	"fmt"
	"github.com/herdhq/herd/internal/testenv"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pidsSeen sends n requests on fresh connections to addr and counts the pids answering.
func pidsSeen(t *testing.T, url string, n int) map[int]int {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	seen := map[int]int{}
	for range n {
		res, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		var who whoAmI
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if err := json.Unmarshal(body, &who); err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", url, res.StatusCode, body)
		}
		seen[who.Pid]++
	}
	return seen
}

func TestSharedSocketGo(t *testing.T) {
	shared := freeAddr(t)
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP --greeting v1
    mode: shared_socket
    listen: %s
    instances: 2
`, shared))
	seen := pidsSeen(t, "http://"+shared+"/", 100)
	if len(seen) != 2 {
		t.Fatalf("connections reached %v; want both instances, accepting on one socket", seen)
	}
	for _, p := range h.pids() {
		if seen[p] == 0 {
			t.Errorf("instance %d never answered", p)
		}
	}

	// A reload swaps the instances behind the socket without a failed request.
	l := startLoadGET("http://" + shared)
	time.Sleep(300 * time.Millisecond)
	h.rewriteConfig(t, "--greeting v1", "--greeting v2")
	if out, err := h.cli("reload", "web"); err != nil {
		t.Fatalf("herd reload: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	l.finish(t)
	if l.greetings["v2"] == 0 {
		t.Errorf("greetings during reload %v; want v2 after it", l.greetings)
	}
}

// startLoadGET is startLoad with GETs only: in shared_socket mode a client's
// keep-alive connection goes straight to an instance, and only idempotent
// requests may be resent when that instance closes it.
func startLoadGET(url string) *load { return startGETs(url + "/slow?ms=10") }

// startGETs is a load of GETs of url (http://host:port/path) from 8
// keep-alive clients that never resend a request (rawClient); an answer
// other than 200 is a failure, and a JSON one with a greeting is counted
// by it.
func startGETs(url string) *load {
	l := &load{greetings: map[string]int{}, stop: make(chan struct{})}
	addr, path, _ := strings.Cut(strings.TrimPrefix(url, "http://"), "/")
	path = "/" + path
	for range 8 {
		l.wg.Go(func() {
			c := newRawClient(addr)
			defer c.close()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, body, err := c.do("GET", path, "")
				if err != nil {
					l.fail(err.Error())
					continue
				}
				if code != 200 {
					l.fail(fmt.Sprintf("%d %s", code, body))
					continue
				}
				var who whoAmI
				if json.Unmarshal(body, &who) != nil {
					l.fail("GET answered " + string(body))
					continue
				}
				l.mu.Lock()
				l.greetings[who.Greeting]++
				l.mu.Unlock()
				l.ok.Add(1)
			}
		})
	}
	return l
}

func TestSharedSocketNodeUnmodified(t *testing.T) {
	node := testenv.Tool(t, "node")
	shared := freeAddr(t)
	script, _ := filepath.Abs("testdata/node/server.js")
	h := startHerd(t, fmt.Sprintf(`
apps:
  api:
    command: %s %s
    mode: shared_socket
    listen: %s
    instances: 2
`, node, script, shared))
	seen := pidsSeen(t, "http://"+shared+"/", 100)
	if len(seen) != 2 {
		t.Fatalf("connections reached %v; want both Node instances", seen)
	}
	// The preload's SIGTERM handler lets a slow request finish during a stop.
	done := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + shared + "/?ms=800")
		if err != nil {
			done <- err.Error()
			return
		}
		res.Body.Close()
		done <- res.Status
	}()
	time.Sleep(200 * time.Millisecond)
	if out, err := h.cli("stop", "api"); err != nil {
		t.Fatalf("herd stop: %v\n%s", err, out)
	}
	if got := <-done; got != "200 OK" {
		t.Errorf("request in flight during stop: %s; want 200 OK", got)
	}
	if !strings.Contains(h.out.String(), "exit=\"exit status 0\"") {
		t.Errorf("Node instances did not exit cleanly on SIGTERM:\n%s", h.out.String())
	}
}

// With no ready instance, the shared socket does not leave clients queued
// in the kernel: after the app's queue_timeout herd answers 503 JSON itself,
// and stops as soon as an instance is ready again.
func TestSharedSocketWithNoInstanceAnswers503(t *testing.T) {
	shared := freeAddr(t)
	h := startHerd(t, fmt.Sprintf(`
apps:
  web:
    command: TESTAPP --greeting up
    mode: shared_socket
    listen: %s
    queue_timeout: 300ms
`, shared))
	if out, err := h.cli("stop", "web"); err != nil {
		t.Fatalf("herd stop: %v\n%s", err, out)
	}
	// A client that never retries, reading the whole answer.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	res, err := client.Get("http://" + shared + "/")
	if err != nil {
		t.Fatalf("GET with no instance: %v (after %s); want a 503", err, time.Since(start))
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var answer struct{ Error, App, Reason string }
	if res.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &answer) != nil || answer.App != "web" ||
		!strings.Contains(answer.Reason, "no instance of app \"web\" was ready within 300ms") {
		t.Fatalf("GET with no instance: %d %s; want 503 JSON naming the app and the wait", res.StatusCode, body)
	}
	if out, err := h.cli("start", "web"); err != nil {
		t.Fatalf("herd start: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the app to answer on the shared socket again", func() bool {
		res, err := client.Get("http://" + shared + "/")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode == http.StatusOK && strings.Contains(string(body), "up")
	})
	// Once an instance is ready, herd takes nothing off the socket: every
	// connection reaches the app.
	for i := range 50 {
		res, err := client.Get("http://" + shared + "/")
		if err != nil {
			t.Fatalf("GET %d after start: %v", i, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %d after start: %d %s; want the app's 200", i, res.StatusCode, body)
		}
	}
}
