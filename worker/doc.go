// Package worker runs a Go web app the way herd expects, in both of herd's
// modes, and the same way outside herd:
//
//	srv := &http.Server{Handler: mux}
//	if err := worker.Serve(context.Background(), srv); err != nil {
//		log.Fatal(err)
//	}
//
// Serve listens (Listen), tells herd the instance is ready (Ready), serves,
// and on SIGTERM or SIGINT drains: it stops accepting, lets the requests in
// flight finish within the drain bound (DrainTimeout), and returns, so main
// can close its pools and exit 0 before herd's kill_timeout runs out.
//
// # herd's protocol, as herd speaks it
//
// In mode: shared_socket herd binds the app's listen: address once and
// passes that socket to every instance as fd 3, with LISTEN_FDS=1,
// LISTEN_FDNAMES=<app> and LISTEN_PID=<the instance's pid> (systemd's
// socket-activation protocol; herd sets LISTEN_PID through an exec shim,
// so it is the instance's own). All instances accept on that one socket,
// like PM2's cluster mode. The instance says it is ready by writing
// "READY=1\n" on the pipe whose fd is in HERD_READY_FD (4), and, with
// ready: notify, also as a datagram on the unix socket in NOTIFY_SOCKET
// (systemd's sd_notify); herd takes whichever comes first.
//
// In mode: proxy (the default) herd gives each instance its own loopback
// port in PORT and balances to it; with ready: notify the instance says
// READY=1 on NOTIFY_SOCKET, otherwise herd probes the port.
//
// herd stops an instance by taking it out of the balancer, waiting for the
// requests herd itself has in flight to it (drain_timeout), then sending
// stop_signal (SIGTERM by default) to its process group and SIGKILL after
// kill_timeout (default 5s). In shared_socket mode clients reach the
// instance directly, so its own drain is all there is.
//
// Outside herd, Listen uses PORT alone (and fails, saying so, without it),
// and Ready does nothing. Under systemd with Type=notify and socket
// activation the same code works, since herd speaks systemd's protocol.
package worker
