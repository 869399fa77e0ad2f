package accesslog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
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

// Lines from many goroutines, several buffers' worth, all reach the file
// whole, each goroutine's in order, and nothing after Close.
func TestConcurrentLinesAllWritten(t *testing.T) {
	const writers, each = 8, 2000 // about 4 MB: many buffers
	var out bytes.Buffer
	l := New(&out, "combined")
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := entry()
				e.RequestID = fmt.Sprintf("w%d-%d", w, i)
				e.UserAgent = strings.Repeat("x", 200)
				l.Log(e)
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Log(entry()) // after Close: dropped, no panic
	next := make([]int, writers)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for _, line := range lines {
		var w, i int
		rid := line[strings.Index(line, " rid=")+5:]
		if _, err := fmt.Sscanf(rid, "w%d-%d cache=-", &w, &i); err != nil || !strings.HasPrefix(line, "127.0.0.1 - - [") {
			t.Fatalf("mangled line %q", line)
		}
		if i != next[w] {
			t.Fatalf("writer %d: line %d after %d", w, i, next[w]-1)
		}
		next[w]++
	}
	if len(lines) != writers*each {
		t.Errorf("%d lines; want %d", len(lines), writers*each)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// Close reports what went wrong writing.
func TestCloseReportsWriteError(t *testing.T) {
	l := New(failingWriter{}, "combined")
	l.Log(entry())
	if err := l.Close(); err == nil || err.Error() != "disk full" {
		t.Errorf("Close = %v; want disk full", err)
	}
}

func TestAppendSeconds(t *testing.T) {
	tests := []struct {
		d      time.Duration
		digits int
		want   string
	}{
		{0, 3, "0.000"},
		{time.Millisecond, 3, "0.001"},
		{1500 * time.Microsecond, 3, "0.002"}, // halves round up
		{1499 * time.Microsecond, 3, "0.001"},
		{999_600 * time.Microsecond, 3, "1.000"},
		{61*time.Second + 20*time.Millisecond, 3, "61.020"},
		{1234567 * time.Nanosecond, 6, "0.001235"},
		{-time.Millisecond, 3, "-0.001"},
		{time.Nanosecond, 9, "0.000000001"},
	}
	for _, tt := range tests {
		if got := string(appendSeconds(nil, tt.d, tt.digits)); got != tt.want {
			t.Errorf("appendSeconds(%v, %d) = %q; want %q", tt.d, tt.digits, got, tt.want)
		}
	}
	// Against integer arithmetic done another way, for every digit count,
	// up to the largest duration.
	for d := time.Duration(0); d >= 0; d = d*3 + 7919 {
		for digits := 1; digits <= 9; digits++ {
			unit := int64(math.Pow10(9 - digits))
			rounded := new(big.Int).Add(big.NewInt(int64(d)), big.NewInt(unit/2))
			rounded.Quo(rounded, big.NewInt(unit))
			whole, frac := new(big.Int).QuoRem(rounded, big.NewInt(int64(math.Pow10(digits))), new(big.Int))
			want := fmt.Sprintf("%s.%0*d", whole, digits, frac.Int64())
			if got := string(appendSeconds(nil, d, digits)); got != want {
				t.Errorf("appendSeconds(%d, %d) = %q; want %q", d, digits, got, want)
			}
		}
	}
	if got := string(appendSeconds(nil, math.MaxInt64, 3)); got != "9223372036.855" {
		t.Errorf("appendSeconds(MaxInt64, 3) = %q; want 9223372036.855", got)
	}
}
