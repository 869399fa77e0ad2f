package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// ipcChannel is the parent's end of a Node.js IPC channel, the one
// child_process.fork() creates: a Unix stream socket whose child end Node
// finds through NODE_CHANNEL_FD, carrying one JSON value per line
// (NODE_CHANNEL_SERIALIZATION_MODE=json). An app that calls
// process.send('ready') writes the line "ready" (JSON-quoted), which is what
// PM2's wait_ready waits for.
//
// The channel stays open for the life of the process, not only until it is
// ready: Node emits 'disconnect' when the parent closes its end, and a later
// process.send() without a callback then throws in the app. Everything the
// app sends after "ready" is read and discarded, so its writes never back up,
// except the preload's lag reports (see lagMessage).
//
// herd opens the channel for every Node app it starts directly, as PM2 does
// (its fork and cluster modes both give each app an IPC channel, which its
// own metrics ride on): process.send exists there, an app's own
// process.send() messages are read and dropped, and herd never writes, so
// an app's process.on('message') sees nothing of herd's.
type ipcChannel struct {
	parent *os.File
	child  *os.File // the child's copy, closed once the child has started

	ready   chan struct{} // closed when "ready" arrived
	done    chan struct{} // closed when the reader has returned
	reading bool          // started has run
	once    sync.Once
	onLag   func(Lag) // set before started; called from the reader
}

// Lag is a Node instance's event-loop delay over the last report's
// interval (about a second), from perf_hooks.monitorEventLoopDelay in
// herd's preload.
type Lag struct {
	P50Ms float64   `json:"p50_ms"`
	P99Ms float64   `json:"p99_ms"`
	MaxMs float64   `json:"max_ms"`
	At    time.Time `json:"at"` // when herd received it
}

// lagEvery is how often the preload reports; a report this much overdue
// means the loop is blocked now.
const lagEvery = time.Second

// aged returns l as of now: a loop that has not reported for longer than
// lagEvery is blocked at least that long, which a stale report would hide.
func (l *Lag) aged(now time.Time) *Lag {
	out := *l
	if late := float64(now.Sub(l.At)-lagEvery) / float64(time.Millisecond); late > 2*float64(lagEvery/time.Millisecond) {
		out.P99Ms, out.MaxMs = max(out.P99Ms, late), max(out.MaxMs, late)
	}
	return &out
}

// lagMessage is the preload's report, sent as
// {"herd":"lag","p50":1.2,"p99":3.4,"max":5.6} (milliseconds).
type lagMessage struct {
	Herd string  `json:"herd"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

var lagPrefix = []byte(`{"herd":"lag"`)

// parseLag returns the lag a line reports, if it is the preload's report.
func parseLag(line []byte, now time.Time) (Lag, bool) {
	if !bytes.HasPrefix(line, lagPrefix) {
		return Lag{}, false
	}
	var m lagMessage
	if json.Unmarshal(line, &m) != nil || m.Herd != "lag" {
		return Lag{}, false
	}
	return Lag{P50Ms: m.P50, P99Ms: m.P99, MaxMs: m.Max, At: now}, true
}

// newIPCChannel makes the socket pair. The child end is to be passed to the
// child as an extra file; call started once the child has its copy.
func newIPCChannel() (*ipcChannel, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("supervisor: creating the Node IPC channel: %w", err)
	}
	return &ipcChannel{
		parent: os.NewFile(uintptr(fds[0]), "herd-ipc"),
		child:  os.NewFile(uintptr(fds[1]), "herd-ipc-child"),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
	}, nil
}

// started closes herd's copy of the child end and starts reading; EOF then
// means the child (and every process that inherited the channel) is gone.
func (c *ipcChannel) started() {
	c.child.Close()
	c.reading = true
	go c.read()
}

// read reads messages until the channel ends, closing c.ready at the first
// "ready". A line longer than the reader's buffer is skipped, not parsed.
func (c *ipcChannel) read() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.parent, 4096)
	signalled := false
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if err = skipLine(r); err != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if !signalled && isReadyMessage(line) {
			signalled = true
			close(c.ready)
		} else if c.onLag != nil {
			if l, ok := parseLag(line, time.Now()); ok {
				c.onLag(l)
			}
		}
	}
}

// skipLine discards the rest of an over-long line.
func skipLine(r *bufio.Reader) error {
	for {
		_, err := r.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// isReadyMessage reports whether a line is process.send('ready') in Node's
// JSON serialization.
func isReadyMessage(line []byte) bool {
	return string(bytes.TrimSpace(line)) == `"ready"`
}

// Close closes herd's end and waits for the reader. Safe on nil and more
// than once; called from the goroutine that called started.
func (c *ipcChannel) Close() {
	if c == nil {
		return
	}
	c.once.Do(func() {
		c.parent.Close()
		if c.reading {
			<-c.done
		} else {
			c.child.Close()
		}
	})
}
