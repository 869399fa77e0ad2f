package config

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// CheckListeners tries to bind the listen and admin addresses and reports
// those already in use, for `herd check`. `herd up` binds them for real.
func CheckListeners(c *Config) Errors {
	var ps Errors
	for _, key := range []string{"listen", "admin"} {
		addr := c.Listen
		if key == "admin" {
			addr = c.Admin
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			ps = append(ps, ListenProblem(c, key, addr, err))
			continue
		}
		l.Close()
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
