package config

import (
	"net"
	"os"
	"strings"
)

// minTokenLen keeps tokens out of guessing range: 16 characters, as from
// `openssl rand -hex 16`.
const minTokenLen = 16

// CheckAdminAuth runs the admin_auth checks again, for an admin address
// given on the command line (--admin) after the file was loaded.
func CheckAdminAuth(c *Config) error {
	v := &validator{c: c, skip: func(string) bool { return false }}
	v.validateAdminAuth()
	if len(v.ps) == 0 {
		return nil
	}
	return v.ps
}

// validateAdminAuth reads the admin token and refuses an admin listener
// that the network reaches with no token for its writes.
func (v *validator) validateAdminAuth() {
	a := &v.c.AdminAuth
	const fix = "write a token of 16 or more characters, like the output of `openssl rand -hex 32`"
	switch {
	case a.TokenFile != "" && a.TokenEnv != "":
		v.add("admin_auth", "token_file and token_env both give the token; keep one")
		return
	case a.TokenFile != "":
		data, err := os.ReadFile(a.TokenFile)
		if err != nil {
			v.add("admin_auth.token_file", "cannot read the token: %v; %s to that file", err, fix)
			return
		}
		a.Token = strings.TrimSpace(string(data))
		if len(a.Token) < minTokenLen {
			v.add("admin_auth.token_file", "%s holds %d characters; %s", a.TokenFile, len(a.Token), fix)
		}
	case a.TokenEnv != "":
		a.Token = strings.TrimSpace(os.Getenv(a.TokenEnv))
		if len(a.Token) < minTokenLen {
			v.add("admin_auth.token_env", "$%s holds %d characters; %s, and export it", a.TokenEnv, len(a.Token), fix)
		}
	}
	if a.Insecure && a.Token != "" {
		v.add("admin_auth.insecure", "insecure: true with a token: writes take the token anyway; drop one of them")
	}
	if a.Token == "" && !a.Insecure && a.TokenFile == "" && a.TokenEnv == "" && !IsLoopback(v.c.Admin) {
		v.add("admin", "%s is reachable from the network, and its writes (POST and DELETE /services) would take no token: anyone who reaches it could take over a gateway route; "+
			"set admin_auth.token_file or admin_auth.token_env, bind it to 127.0.0.1, or write admin_auth: {insecure: true} to allow it", v.c.Admin)
	}
}

// IsLoopback reports whether a listener address accepts only local
// connections: a loopback IP or localhost. An empty host (every
// interface) is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
