package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocketAndSSEThroughHerd(t *testing.T) {
	h := startHerd(t, `
apps:
  web:
    command: TESTAPP
    instances: 2
routes:
  - path: /
    to: web
    compress: true
`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+h.public+"/ws", nil)
	if err != nil {
		t.Fatalf("WebSocket through herd: %v", err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"hello", "herd"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("echo of %q = %q, %v", msg, got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")

	// Server-sent events arrive one by one, not when the stream ends.
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+h.public+"/sse", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	start := time.Now()
	var arrivals []time.Duration
	for len(arrivals) < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", len(arrivals), err)
		}
		if strings.HasPrefix(line, "data: event") {
			arrivals = append(arrivals, time.Since(start))
		}
	}
	if arrivals[0] > 250*time.Millisecond || arrivals[2]-arrivals[0] < 450*time.Millisecond {
		t.Errorf("events arrived at %v; want the first at once and the rest 300 ms apart", arrivals)
	}
}
