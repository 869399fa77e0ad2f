package app

import (
	"fmt"
	"net"
	"os"

	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/control"
)

// bound is every socket herd serves on, bound before anything starts so
// that a port in use fails `herd up` with the line of its key and nothing
// running.
type bound struct {
	public, admin net.Listener
	// internal is a loopback listener only herd's instances are told of
	// (HERD_URL, HERD_GATEWAY_URL): it serves the same routes as public
	// but stays open until the instances have stopped, so that a request
	// in flight during herd's stop can still call other services.
	internal net.Listener
	tls      net.Listener        // nil without tls:
	shared   map[string]*os.File // shared_socket apps' sockets, by app, for their instances to inherit
	control  net.Listener
	socket   string // the control socket's path, removed on close
}

// bind binds every address of cfg.Listeners() through config.Bind (as
// `herd check` does, so both word a port in use alike), then the control
// socket.
func bind(cfg *config.Config, socket string) (*bound, error) {
	lns, problems := config.Bind(cfg, cfg.Listeners())
	if problems != nil {
		return nil, problems
	}
	b := &bound{public: lns["listen"], admin: lns["admin"], tls: lns["tls.listen"], shared: map[string]*os.File{}}
	internal, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		for _, l := range lns {
			l.Close()
		}
		return nil, fmt.Errorf("binding the instances' loopback listener: %w", err)
	}
	b.internal = internal
	for _, a := range cfg.Apps {
		key := "apps." + a.Name + ".listen"
		l := lns[key]
		if l == nil {
			continue
		}
		delete(lns, key)
		f, err := l.(*net.TCPListener).File()
		l.Close() // f holds its own descriptor of the socket
		if err != nil {
			problems = append(problems, cfg.Problem(key, fmt.Sprintf("cannot share %s: %v", a.Listen, err)))
			continue
		}
		b.shared[a.Name] = f
	}
	if problems != nil {
		b.close()
		for _, l := range lns {
			l.Close()
		}
		return nil, problems
	}
	if socket == "" {
		socket = SocketPath(cfg.File)
	}
	ctl, err := control.Listen(socket)
	if err != nil {
		b.close()
		return nil, err
	}
	b.control, b.socket = ctl, socket
	return b, nil
}

// close closes every socket still open (the servers close theirs too; a
// second Close does nothing) and removes the control socket.
func (b *bound) close() {
	for _, l := range []net.Listener{b.public, b.admin, b.internal, b.tls, b.control} {
		if l != nil {
			l.Close()
		}
	}
	for _, f := range b.shared {
		f.Close()
	}
	if b.socket != "" {
		os.Remove(b.socket)
	}
}
