// Package accesslog writes one line per proxied request, in NGINX's
// combined format (plus request time, upstream address and time, and the
// request id) or as JSON. Lines are gathered in 64 KiB buffers that a
// goroutine of the logger writes out when full, every second and on Close,
// so a request pays neither a system call nor a wait for the file.
package accesslog

import (
	"io"
	"strconv"
	"sync"
	"time"
)

// Entry is one request.
type Entry struct {
	Time         time.Time // when the request arrived
	RemoteAddr   string    // client IP
	Method       string
	URI          string
	Proto        string
	Status       int
	BytesSent    int64
	Referer      string
	UserAgent    string
	Duration     time.Duration
	Route        string
	App          string
	Upstream     string        // host:port of the instance, "" if none was reached
	UpstreamTime time.Duration // until the instance's response headers
	RequestID    string
	CacheStatus  string // HIT, MISS, EXPIRED, STALE, BYPASS; "" without a cache
}

// Logger is safe for concurrent use.
type Logger struct {
	json bool
	out  io.Writer

	mu     sync.Mutex
	cur    []byte // lines not yet handed to the writer
	closed bool
	// The combined format's time stamp, made once a second as NGINX does.
	stamp    []byte
	stampSec int64
	stampLoc *time.Location

	// Buffers go to the writer goroutine when full and every second, so a
	// request never waits for the file unless the writer is a whole buffer
	// behind.
	full    chan []byte
	free    chan []byte
	err     error // the writer's first, for Close
	stop    chan struct{}
	stopped chan struct{}
	written chan struct{}
}

// bufferSize is what the logger gathers before handing lines to the writer.
const bufferSize = 64 << 10

// New returns a logger writing format ("combined" or "json") to out.
func New(out io.Writer, format string) *Logger {
	l := &Logger{
		json: format == "json", out: out, cur: make([]byte, 0, bufferSize),
		full: make(chan []byte, 1), free: make(chan []byte, 1),
		stop: make(chan struct{}), stopped: make(chan struct{}), written: make(chan struct{}),
	}
	l.free <- make([]byte, 0, bufferSize)
	go l.write()
	go l.handOverEverySecond()
	return l
}

// write writes the buffers it is handed, in order, and hands them back.
func (l *Logger) write() {
	defer close(l.written)
	for b := range l.full {
		if _, err := l.out.Write(b); err != nil && l.err == nil {
			l.err = err
		}
		l.free <- b[:0]
	}
}

func (l *Logger) handOverEverySecond() {
	defer close(l.stopped)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.handOver()
			l.mu.Unlock()
		}
	}
}

// handOver gives the lines gathered to the writer; l.mu is held.
func (l *Logger) handOver() {
	if len(l.cur) == 0 || l.closed {
		return
	}
	l.full <- l.cur
	l.cur = <-l.free
}

// Close writes what is buffered, stops the writer and returns the first
// error it met. Lines logged after Close are dropped.
func (l *Logger) Close() error {
	close(l.stop)
	<-l.stopped
	l.mu.Lock()
	l.handOver()
	l.closed = true
	close(l.full)
	l.mu.Unlock()
	<-l.written
	return l.err
}

// Log writes e.
func (l *Logger) Log(e *Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if cap(l.cur)-len(l.cur) < 4<<10 {
		l.handOver()
	}
	if l.json {
		l.cur = appendJSON(l.cur, e)
		return
	}
	if sec, loc := e.Time.Unix(), e.Time.Location(); sec != l.stampSec || loc != l.stampLoc || l.stamp == nil {
		l.stamp = e.Time.AppendFormat(l.stamp[:0], combinedTime)
		l.stampSec, l.stampLoc = sec, loc
	}
	l.cur = appendCombined(l.cur, l.stamp, e)
}

// combinedTime is the layout of $time_local.
const combinedTime = "02/Jan/2006:15:04:05 -0700"

// appendCombined writes NGINX's combined format (stamp is e.Time in
// combinedTime), then request time,
// upstream address and time, and the request id:
//
//	127.0.0.1 - - [28/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/8" rt=0.001 uaddr=127.0.0.1:41000 ut=0.001 rid=ab12… cache=-
func appendCombined(b, stamp []byte, e *Entry) []byte {
	b = append(b, dash(e.RemoteAddr)...)
	b = append(b, " - - ["...)
	b = append(b, stamp...)
	b = append(b, "] \""...)
	b = appendEscaped(b, e.Method)
	b = append(b, ' ')
	b = appendEscaped(b, e.URI)
	b = append(b, ' ')
	b = append(b, e.Proto...)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.BytesSent, 10)
	b = append(b, " \""...)
	b = appendEscaped(b, dash(e.Referer))
	b = append(b, "\" \""...)
	b = appendEscaped(b, dash(e.UserAgent))
	b = append(b, "\" rt="...)
	b = appendSeconds(b, e.Duration, 3)
	b = append(b, " uaddr="...)
	b = append(b, dash(e.Upstream)...)
	b = append(b, " ut="...)
	if e.Upstream == "" {
		b = append(b, '-')
	} else {
		b = appendSeconds(b, e.UpstreamTime, 3)
	}
	b = append(b, " rid="...)
	b = append(b, dash(e.RequestID)...)
	b = append(b, " cache="...)
	b = append(b, dash(e.CacheStatus)...)
	return append(b, '\n')
}

func appendJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"time":`...)
	b = append(b, '"') // nothing in the stamp needs quoting
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	str := func(key, v string) {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = strconv.AppendQuote(b, v)
	}
	num := func(key string, v int64) {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, v, 10)
	}
	secs := func(key string, d time.Duration) {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = appendSeconds(b, d, 6)
	}
	str("remote_addr", e.RemoteAddr)
	str("method", e.Method)
	str("uri", e.URI)
	str("proto", e.Proto)
	num("status", int64(e.Status))
	num("bytes_sent", e.BytesSent)
	str("referer", e.Referer)
	str("user_agent", e.UserAgent)
	secs("request_time", e.Duration)
	str("route", e.Route)
	str("app", e.App)
	str("upstream_addr", e.Upstream)
	secs("upstream_time", e.UpstreamTime)
	str("request_id", e.RequestID)
	str("cache_status", e.CacheStatus)
	return append(b, '}', '\n')
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendEscaped writes s with quotes, backslashes and control bytes escaped
// as \xHH, as NGINX does, so a line stays one parseable line.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

var pow10 = [10]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendSeconds appends d in seconds with digits (1 to 9) decimals, rounded
// half up, without the float formatting of strconv.AppendFloat (a line per
// request). It writes what AppendFloat(d.Seconds(), 'f', digits) writes,
// but at exact halves, which AppendFloat rounds as their nearest float.
func appendSeconds(b []byte, d time.Duration, digits int) []byte {
	if d < 0 || digits < 1 || digits > 9 {
		return strconv.AppendFloat(b, d.Seconds(), 'f', digits, 64)
	}
	unit, scale := time.Duration(pow10[9-digits]), pow10[digits]
	n := int64(d / unit) // in units of 10^-digits s
	if 2*(d%unit) >= unit {
		n++
	}
	b = strconv.AppendInt(b, n/scale, 10)
	b = append(b, '.')
	frac := n % scale
	for p := scale / 10; p > 1 && frac < p; p /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, frac, 10)
}
