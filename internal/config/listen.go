package config

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Listener is one address herd binds, and the key of the config that
// names it ("listen", "admin", "tls.listen", "apps.NAME.listen").
type Listener struct {
	Key, Addr string
}

// Listeners returns every address `herd up` binds, in this order: listen,
// admin, tls.listen (when TLS is configured), and the listen: of each
// shared_socket app.
func (c *Config) Listeners() []Listener {
	ls := []Listener{{"listen", c.Listen}, {"admin", c.Admin}}
	if c.TLS.Listen != "" && c.TLS.Cert != "" && c.TLS.Key != "" {
		ls = append(ls, Listener{"tls.listen", c.TLS.Listen})
	}
	for _, a := range c.Apps {
		if a.Mode == SharedMode && a.Listen != "" {
			ls = append(ls, Listener{"apps." + a.Name + ".listen", a.Listen})
		}
	}
	return ls
}

// Bind listens on each of ls (TCP), returning the listeners by key. If any
// fails it closes the others and returns a problem for each failure, at
// the line of its key, and no listeners. `herd up` binds through it and
// `herd check` (CheckListeners), so both word a port in use alike.
func Bind(c *Config, ls []Listener) (map[string]net.Listener, Errors) {
	bound := make(map[string]net.Listener, len(ls))
	var ps Errors
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			ps = append(ps, ListenProblem(c, l.Key, l.Addr, err))
			continue
		}
		bound[l.Key] = ln
	}
	if len(ps) > 0 {
		for _, ln := range bound {
			ln.Close()
		}
		return nil, ps
	}
	return bound, nil
}

// CheckListeners tries to bind every address of c.Listeners and reports
// those already in use, for `herd check`; it leaves none bound.
func CheckListeners(c *Config) Errors {
	bound, ps := Bind(c, c.Listeners())
	for _, ln := range bound {
		ln.Close()
	}
	return ps
}

// ListenProblem words a failure to listen on addr, the value of key.
func ListenProblem(c *Config, key, addr string, err error) Problem {
	if errors.Is(err, syscall.EADDRINUSE) {
		return c.Problem(key, fmt.Sprintf("%s is already in use; pick a free port or stop whatever holds it", addr))
	}
	return c.Problem(key, fmt.Sprintf("cannot listen on %s: %v", addr, err))
}
