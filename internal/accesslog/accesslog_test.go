package accesslog

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

func entry() *Entry {
	return &Entry{
		Time: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), RemoteAddr: "127.0.0.1", Method: "GET",
		URI: `/a?q="x"`, Proto: "HTTP/1.1", Status: 200, BytesSent: 13, UserAgent: "curl/8",
		Duration: 1500 * time.Microsecond, Route: "/", App: "web", Upstream: "127.0.0.1:41000",
		UpstreamTime: time.Millisecond, RequestID: "abc",
	}
}

func TestCombined(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, "combined")
	l.Log(entry())
	l.Close()
	want := `127.0.0.1 - - [28/Nov/2026:10:00:00 +0000] "GET /a?q=\x22x\x22 HTTP/1.1" 200 13 "-" "curl/8" rt=0.002 uaddr=127.0.0.1:41000 ut=0.001 rid=abc cache=-` + "\n"
	if out.String() != want {
		t.Errorf("got  %s\nwant %s", out.String(), want)
	}
}

// The time stamp is made once a second: lines in the same second share
// it, a new second or another zone makes a new one.
func TestCombinedTimeStamps(t *testing.T) {
	base := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	paris := time.FixedZone("CET", 3600)
	var out bytes.Buffer
	l := New(&out, "combined")
	for _, at := range []time.Time{base, base.Add(300 * time.Millisecond), base.Add(time.Second), base.Add(time.Second).In(paris), base} {
		e := entry()
		e.Time = at
		l.Log(e)
	}
	l.Close()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		got = append(got, line[strings.Index(line, "[")+1:strings.Index(line, "]")])
	}
	want := []string{"28/Nov/2026:10:00:00 +0000", "28/Nov/2026:10:00:00 +0000", "28/Nov/2026:10:00:01 +0000", "28/Nov/2026:11:00:01 +0100", "28/Nov/2026:10:00:00 +0000"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stamps %q; want %q", got, want)
	}
}

func TestJSON(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, "json")
	l.Log(entry())
	l.Close()
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if m["uri"] != `/a?q="x"` || m["status"] != 200.0 || m["upstream_addr"] != "127.0.0.1:41000" || m["request_id"] != "abc" {
		t.Errorf("got %v", m)
	}
}

func TestFlushesWithoutClose(t *testing.T) {
	var out syncBuf
	l := New(&out, "combined")
	defer l.Close()
	l.Log(entry())
	time.Sleep(1500 * time.Millisecond)
	if out.len() == 0 {
		t.Error("nothing written after a second")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
