// Package systemd is what herd needs of systemd: a unit file for
// `herd startup systemd`, and sd_notify messages (READY=1, STOPPING=1,
// RELOADING=1) for a herd that runs as a Type=notify service.
package systemd

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// UnitOptions describe the service to write.
type UnitOptions struct {
	Herd        string        // absolute path of the herd binary
	Config      string        // absolute path of herd.yaml
	User        string        // the user to run as; empty: root
	Env         string        // herd up --env, if any
	StopTimeout time.Duration // longest drain + kill timeout, plus a margin
}

// Unit returns a systemd service unit that runs `herd up` for opts.Config.
// herd tells systemd it is ready (Type=notify) once its apps serve, reloads
// on SIGHUP (ExecReload), and stops gracefully on SIGTERM; KillMode=mixed
// lets systemd SIGKILL what is left only after TimeoutStopSec.
func Unit(o UnitOptions) string {
	exec := quote(o.Herd) + " up -f " + quote(o.Config)
	if o.Env != "" {
		exec += " --env " + quote(o.Env)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[Unit]
Description=herd: %s
Documentation=https://github.com/herdhq/herd
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart=%s
ExecReload=/bin/kill -HUP $MAINPID
WorkingDirectory=%s
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=%d
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
`, o.Config, exec, quote(dirOf(o.Config)), int(o.StopTimeout.Seconds()+0.999))
	if o.User != "" && o.User != "root" {
		fmt.Fprintf(&b, "User=%s\n", o.User)
	}
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		return path[:i]
	}
	return "/"
}

// quote quotes a path for systemd's command-line syntax when it needs it.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\%$") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	s = strings.ReplaceAll(s, `%`, `%%`)
	s = strings.ReplaceAll(s, `$`, `$$`)
	return `"` + s + `"`
}

// Notify sends state (e.g. "READY=1") to systemd when herd runs under it
// ($NOTIFY_SOCKET set); otherwise it does nothing and returns nil.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("systemd: notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("systemd: notify %s: %w", state, err)
	}
	return nil
}
