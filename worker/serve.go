package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
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
func Serve(ctx context.Context, srv *http.Server) error {
	ln, err := Listen()
	if err != nil {
		return err
	}
	return ServeListener(ctx, srv, ln)
}

// ServeListener is Serve on a listener of the caller's (a TLS one, or one
// made by Listen and wrapped). It closes ln.
func ServeListener(ctx context.Context, srv *http.Server, ln net.Listener) error {
	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
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

	bound, _ := DrainTimeout() // a bad HERD_KILL_TIMEOUT falls back to the default
	srv.SetKeepAlivesEnabled(false)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound)
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
