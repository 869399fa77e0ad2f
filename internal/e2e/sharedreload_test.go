package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
)

// A rolling reload of a Node app in shared_socket mode drops nothing, even
// for POSTs over keep-alive connections, which no client may resend: the
// preload stops accepting, answers what arrives on open connections with
// Connection: close, and closes idle ones only after a grace period.
func TestSharedSocketNodeReloadKeepsKeepAlivePOSTs(t *testing.T) {
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

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		// One keep-alive connection per client, as wrk -c4 holds them.
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A POST with a body is not replayable: Go's Transport never resends it.
				res, err := client.Post("http://"+shared+"/", "text/plain", strings.NewReader("order"))
				if err == nil {
					body, rerr := io.ReadAll(res.Body)
					res.Body.Close()
					if rerr == nil && res.StatusCode == 200 && strings.Contains(string(body), `"pid"`) {
						ok.Add(1)
						continue
					}
					err = fmt.Errorf("%d %q %v", res.StatusCode, body, rerr)
				}
				failed.Add(1)
				mu.Lock()
				failures = append(failures, err.Error())
				mu.Unlock()
			}
		})
	}
	for i := range 3 {
		before := ok.Load()
		waitFor(t, 10*time.Second, "requests to flow", func() bool { return ok.Load() > before+50 })
		if out, err := h.cli("reload", "api"); err != nil {
			t.Fatalf("reload %d: %v\n%s", i, err, out)
		}
	}
	before := ok.Load()
	waitFor(t, 10*time.Second, "requests to flow after the reloads", func() bool { return ok.Load() > before+50 })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d POSTs failed across 3 reloads; want none. First: %v", n, n+ok.Load(), failures[:min(len(failures), 5)])
	}
	t.Logf("%d POSTs answered", ok.Load())
}
