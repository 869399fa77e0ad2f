package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/herdhq/herd/worker"
)

// A Go app's main under herd: the same code serves in shared_socket mode
// (herd's socket on fd 3) and in proxy mode ($PORT), says READY=1, and
// drains on SIGTERM.
func ExampleServe() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux}
	if err := worker.Serve(context.Background(), srv); err != nil {
		log.Fatal(err) // e.g. worker: no socket to serve on: ... set PORT=8080 to run it alone
	}
	// Close pools, flush queues: herd is waiting for the exit.
}

// An app whose requests must not be cut midway drains for as long as its
// WriteTimeout (and sets a longer kill_timeout in herd.yaml).
func ExampleOptions() {
	srv := &http.Server{Handler: http.NotFoundHandler(), WriteTimeout: 30 * time.Second}
	if err := (worker.Options{DrainTimeout: srv.WriteTimeout}).Serve(context.Background(), srv); err != nil {
		log.Fatal(err)
	}
}

// Without herd and without PORT, Listen says what is missing.
func ExampleListen() {
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("PORT")
	_, err := worker.Listen()
	fmt.Println(errors.Is(err, worker.ErrNoListener))
	// Output: true
}

// A queue worker that serves no HTTP still tells herd when it is ready
// (ready: notify); not under herd, Ready does nothing.
func ExampleReady() {
	os.Unsetenv("NOTIFY_SOCKET")
	os.Unsetenv("HERD_READY_FD")
	fmt.Println(worker.Ready())
	// Output: <nil>
}
