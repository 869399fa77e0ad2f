// Command testapp is the small web app herd's end-to-end tests run as
// instances. It serves on $PORT and answers:
//
//	GET  /          {"pid":…, "instance":"…", "greeting":"…"}
//	GET  /health    200 ok
//	GET  /slow?ms=N the same JSON as / after N milliseconds
//	GET  /crash     exits at once with status 3
//	GET  /headers   the request headers as JSON
//	POST /echo      the request body
//	GET  /upgrade   with "Upgrade: echo": 101, then echoes bytes back
//	GET  /ws        a WebSocket that echoes each message prefixed "echo: "
//	GET  /sse       three server-sent events, 300 ms apart
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	greeting := flag.String("greeting", "hello", "greeting to answer with")
	notify := flag.Bool("notify", false, "send READY=1 to $NOTIFY_SOCKET once listening")
	crash := flag.Bool("crash", false, "exit with status 1 right after start")
	readyDelay := flag.Duration("ready-delay", 0, "wait this long before listening")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM (to test kill_timeout)")
	exitAfter := flag.Duration("exit-after", 0, "exit with status 1 this long after start (0: never)")
	flag.Parse()
	if *exitAfter > 0 {
		time.AfterFunc(*exitAfter, func() { os.Exit(1) })
	}

	if *crash {
		fmt.Fprintln(os.Stderr, "testapp: crashing on purpose")
		os.Exit(1)
	}
	time.Sleep(*readyDelay)
	ln, shared, err := listen()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(2)
	}
	fmt.Printf("testapp %d listening on %s (shared %v)\n", os.Getpid(), ln.Addr(), shared)
	if fd, _ := strconv.Atoi(os.Getenv("HERD_READY_FD")); fd > 0 {
		f := os.NewFile(uintptr(fd), "ready")
		f.WriteString("READY=1\n")
		f.Close()
	} else if *notify {
		if err := sdNotify("READY=1"); err != nil {
			fmt.Fprintln(os.Stderr, "testapp: notify:", err)
		}
	}

	who := func() map[string]any {
		return map[string]any{"pid": os.Getpid(), "instance": os.Getenv("HERD_INSTANCE"), "greeting": *greeting}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, who()) })
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		writeJSON(w, who())
	})
	// /work holds one lock for ms: requests run one at a time, as on a
	// single-threaded server (Node's event loop), so latency grows with
	// the requests in flight and more instances bring it down.
	var work sync.Mutex
	mux.HandleFunc("GET /work", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		work.Lock()
		time.Sleep(time.Duration(ms) * time.Millisecond)
		work.Unlock()
		writeJSON(w, who())
	})
	// /nested waits ms, then calls herd back at $HERD_URL (as a service
	// calls another through herd's gateway) and answers that call's status.
	mux.HandleFunc("GET /nested", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		res, err := http.Get(os.Getenv("HERD_URL") + "/health")
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "nested call: %v\n", err)
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		fmt.Fprintf(w, "nested %d\n", res.StatusCode)
	})
	mux.HandleFunc("GET /crash", func(w http.ResponseWriter, r *http.Request) { os.Exit(3) })
	mux.HandleFunc("GET /headers", func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{"Host": r.Host}
		for k := range r.Header {
			h[k] = r.Header.Get(k)
		}
		writeJSON(w, h)
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	mux.HandleFunc("GET /upgrade", upgradeEcho)
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			http.NewResponseController(w).Flush()
			time.Sleep(300 * time.Millisecond)
		}
	})

	// While draining, every answer says Connection: close, so a client on a
	// keep-alive connection opens its next request elsewhere.
	var draining atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		mux.ServeHTTP(w, r)
	})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	// Serve returns as soon as Shutdown starts; exiting then would cut the
	// requests Shutdown is waiting for, so main waits for it to finish.
	shutdown := make(chan struct{})
	go func() {
		defer close(shutdown)
		for s := range sigs {
			if *ignoreTerm && s == syscall.SIGTERM {
				fmt.Println("testapp: ignoring SIGTERM")
				continue
			}
			// Stop accepting (in shared_socket mode the other instances
			// take the socket's queue), answer "Connection: close" to what
			// arrives on open connections, and close the ones still idle
			// only after a grace period, so no client is caught sending on
			// a connection as it closes. SetKeepAlivesEnabled(false) would
			// close idle connections at once: that race.
			draining.Store(true)
			ln.Close()
			time.Sleep(300 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			srv.Shutdown(ctx)
			cancel()
			return
		}
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed && !draining.Load() {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(2)
	}
	<-shutdown
	fmt.Println("testapp: stopped gracefully")
}

// listen uses the socket herd shares (fd 3, LISTEN_FDS=1 and LISTEN_PID of
// this process, systemd's protocol) or listens on $PORT.
func listen() (net.Listener, bool, error) {
	if os.Getenv("LISTEN_FDS") == "1" {
		if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
			return nil, false, fmt.Errorf("LISTEN_PID=%s is not this process (%d)", os.Getenv("LISTEN_PID"), os.Getpid())
		}
		l, err := net.FileListener(os.NewFile(3, "shared"))
		return l, true, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	return l, false, err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// upgradeEcho switches to a raw byte echo, like a minimal WebSocket.
func upgradeEcho(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "echo" {
		http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	rw.Flush()
	br := rw.Reader // may already hold bytes the client sent after the headers
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := conn.Write([]byte(line)); err != nil {
			return
		}
	}
}

func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return fmt.Errorf("NOTIFY_SOCKET is not set")
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
