package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/supervisor"
	"github.com/herdhq/herd/internal/systemd"
)

// announce prints, once every app has a ready instance, where herd serves
// and the config's banner: text, so that whoever ran `herd up` knows what
// to try. Addresses in the banner are the ones herd listens on; a
// shared_socket app is named at its own address, which herd's listener
// does not serve.
func announce(ctx context.Context, cfg *config.Config, status func() []supervisor.AppStatus, out io.Writer, public, admin net.Addr) {
	if !waitAllReady(ctx, status, 0) {
		return
	}
	pub, adm := loopbackAddr(public), loopbackAddr(admin)
	instances := 0
	for _, a := range status() {
		instances += len(a.Instances)
	}
	var text string
	if len(cfg.Routes) > 0 {
		text = fmt.Sprintf("\nherd is serving %d apps (%d instances) on http://%s; admin API on http://%s\n", len(cfg.Apps), instances, pub, adm)
	} else {
		text = fmt.Sprintf("\nherd is running %d apps (%d instances); admin API on http://%s\n", len(cfg.Apps), instances, adm)
	}
	// Apps herd's listener does not serve: say where they are.
	for _, a := range cfg.Apps {
		switch {
		case a.Mode == config.SharedMode:
			host, port, _ := net.SplitHostPort(a.Listen)
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = "127.0.0.1"
			}
			text += fmt.Sprintf("  %s: on http://%s (shared socket; its instances accept there)\n", a.Name, net.JoinHostPort(host, port))
		case a.Ready.Process:
			text += fmt.Sprintf("  %s: worker (serves no port)\n", a.Name)
		}
	}
	if cfg.Banner != "" {
		banner := strings.NewReplacer("{listen}", pub, "{admin}", adm).Replace(cfg.Banner)
		text += "\n" + strings.TrimRight(banner, "\n") + "\n"
	}
	_, _ = io.WriteString(out, text+"\n")
}

// notifyReady tells systemd herd is ready once every app has a ready
// instance, or after 30 s, whichever comes first; it
// polls only until then.
func notifyReady(ctx context.Context, status func() []supervisor.AppStatus, log *slog.Logger) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	waitAllReady(ctx, status, 30*time.Second)
	if ctx.Err() != nil {
		return
	}
	if err := systemd.Notify("READY=1"); err != nil {
		log.Warn("telling systemd herd is ready", "err", err)
	}
}

// waitAllReady polls until every app has a ready instance (true), ctx
// ends, or limit (if not zero) passes.
func waitAllReady(ctx context.Context, status func() []supervisor.AppStatus, limit time.Duration) bool {
	var deadline <-chan time.Time
	if limit > 0 {
		deadline = time.After(limit)
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !allReady(status()) {
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			return false
		case <-t.C:
		}
	}
	return true
}

func allReady(apps []supervisor.AppStatus) bool {
	for _, a := range apps {
		ready := false
		for _, in := range a.Instances {
			ready = ready || in.State == supervisor.Ready
		}
		if !ready {
			return false
		}
	}
	return true
}

// herdEnv tells instances where herd's gateway and admin API are, so that
// services find each other without configuration.
func herdEnv(cfg *config.Config, public, admin net.Addr) []string {
	env := []string{"HERD_URL=http://" + loopbackAddr(public), "HERD_ADMIN_URL=http://" + loopbackAddr(admin)}
	for _, r := range cfg.Routes {
		if r.Gateway {
			env = append(env, "HERD_GATEWAY_URL=http://"+loopbackAddr(public)+strings.TrimSuffix(r.Path, "/"))
			break
		}
	}
	return env
}

// loopbackAddr is addr with an unspecified host (listen: :8080) made
// 127.0.0.1, an address an instance on this machine can dial.
func loopbackAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
