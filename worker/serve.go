package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// Serve serves srv on Listen's socket, tells herd it is ready, and on
// SIGTERM or SIGINT (or when ctx is done) drains gracefully: keep-alive is
// turned off so answers in flight carry Connection: close, the listener
// and idle connections are closed, and the requests in flight get until
// DrainTimeout to finish. It returns nil after a complete drain, or an
// error wrapping context.DeadlineExceeded when the bound cut requests off
// (their connections are closed then). Connections that never go idle
// (WebSocket, hijacked) are not waited for by net/http: close them from a
// function given to srv.RegisterOnShutdown. After the first signal Serve
// stops catching signals, so a second Ctrl-C ends the process at once.
// It is Options{}.Serve.
func Serve(ctx context.Context, srv *http.Server) error { return Options{}.Serve(ctx, srv) }

// idleGrace is how long a draining server keeps idle keep-alive
// connections open, answering Connection: close on them, before closing
// them.
const idleGrace = 300 * time.Millisecond

// Options change what Serve does; the zero value is Serve's behaviour.
type Options struct {
	// Listener is the socket to serve on; Serve closes it. Default: Listen().
	Listener net.Listener
	// DrainTimeout bounds the drain after the stop signal, e.g. the
	// server's WriteTimeout when cutting a request midway would do harm
	// (then herd's kill_timeout must be longer). Default: DrainTimeout(),
	// from HERD_KILL_TIMEOUT.
	DrainTimeout time.Duration
}

// Serve is the package's Serve with o's listener and drain bound.
func (o Options) Serve(ctx context.Context, srv *http.Server) error {
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = Listen(); err != nil {
			return err
		}
	}
	bound := o.DrainTimeout
	if bound <= 0 {
		bound, _ = DrainTimeout() // a bad HERD_KILL_TIMEOUT falls back to the default
	}
	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// While draining, every answer says Connection: close, so a client on
	// a keep-alive connection sends its next request elsewhere.
	var draining atomic.Bool
	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	if err := Ready(); err != nil {
		srv.Close()
		<-served
		return err
	}
	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil // someone else shut srv down
		}
		return fmt.Errorf("worker: serving: %w", err)
	case <-sigCtx.Done():
	}
	stop()

	// Stop accepting (in shared_socket mode the other instances take the
	// socket's queue), and close connections still idle only after a grace
	// period: SetKeepAlivesEnabled(false) or Shutdown would close them at
	// once, racing a client that is sending on one (it sees a reset, and
	// may not resend a POST).
	draining.Store(true)
	ln.Close()
	grace := min(idleGrace, bound/4)
	t := time.NewTimer(grace)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound-grace)
	defer cancel()
	err := srv.Shutdown(dctx)
	if err != nil {
		srv.Close() // cut what is left: the process is about to exit
	}
	<-served
	if err != nil {
		return fmt.Errorf("worker: draining within %s: %w", bound, err)
	}
	return nil
}
