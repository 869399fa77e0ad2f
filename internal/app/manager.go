package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/control"
	"github.com/herdhq/herd/internal/supervisor"
)

// manager carries out control API calls on the supervisor. Reload and
// restart re-read herd.yaml, so a new command or env rolls out; a file with
// problems changes nothing.
type manager struct {
	cfgPath string
	env     string // --env, applied to every re-read config
	sup     *supervisor.Supervisor
	status  func() []supervisor.AppStatus
	log     *slog.Logger
	// onReloadAll swaps in the routes and upstreams of a re-read config;
	// `reload all` and SIGHUP call it before rolling the apps.
	onReloadAll func(*config.Config) error
}

func (m *manager) Status() []supervisor.AppStatus { return m.status() }

type description struct {
	Name      string                      `json:"name"`
	Config    *config.App                 `json:"config"`
	Instances []supervisor.InstanceStatus `json:"instances"`
}

func (m *manager) Describe(app string) (any, error) {
	cfg, err := m.sup.Config(app)
	if err == nil {
		for _, a := range m.status() {
			if a.Name == app {
				return description{Name: app, Config: cfg, Instances: a.Instances}, nil
			}
		}
	}
	return nil, control.Errorf(http.StatusNotFound, "no app named %q; apps: %s", app, strings.Join(m.sup.Apps(), ", "))
}

func (m *manager) Action(ctx context.Context, action, app string) error {
	apps := []string{app}
	if app == "all" {
		apps = m.sup.Apps()
	} else if _, err := m.sup.Config(app); err != nil {
		return control.Errorf(http.StatusNotFound, "no app named %q; apps: %s (or all)", app, strings.Join(m.sup.Apps(), ", "))
	}
	var fresh *config.Config
	if action == "reload" || action == "restart" {
		c, err := config.Load(m.cfgPath)
		if err == nil && m.env != "" {
			err = c.SelectEnv(m.env)
		}
		if err != nil {
			return control.Errorf(http.StatusBadRequest, "%s has problems, so nothing was changed:\n%v", m.cfgPath, err)
		}
		fresh = c
		var building []*config.App
		for _, name := range apps {
			if a := fresh.App(name); a != nil {
				building = append(building, a)
			}
		}
		if err := buildApps(ctx, building, m.log); err != nil {
			return control.Errorf(http.StatusBadRequest, "%v\nnothing was changed; the running instances keep serving", err)
		}
		if app == "all" && action == "reload" && m.onReloadAll != nil {
			if err := m.onReloadAll(fresh); err != nil {
				return control.Errorf(http.StatusBadRequest, "%s: %v; nothing was changed", m.cfgPath, err)
			}
		}
	}
	for _, name := range apps {
		var err error
		switch action {
		case "reload", "restart":
			a := fresh.App(name)
			if a == nil {
				return control.Errorf(http.StatusBadRequest, "app %q is no longer in %s; nothing was changed", name, m.cfgPath)
			}
			if action == "reload" {
				err = m.sup.Reload(ctx, name, a, a.Reload.Parallel)
			} else {
				err = m.sup.Restart(ctx, name, a)
			}
		case "stop":
			err = m.sup.Stop(ctx, name)
		case "start":
			err = m.sup.Start(ctx, name)
		default:
			return control.Errorf(http.StatusBadRequest, "unknown action %q", action)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) Scale(ctx context.Context, app, spec string) (int, error) {
	cur, err := m.sup.Instances(app)
	if err != nil {
		return 0, err
	}
	n, err := scaleTarget(cur, spec)
	if err != nil {
		return cur, control.Errorf(http.StatusBadRequest, "%v", err)
	}
	return n, m.sup.Scale(ctx, app, n)
}

// scaleTarget reads "N", "+N" or "-N" against the current count.
func scaleTarget(cur int, spec string) (int, error) {
	num, err := strconv.Atoi(strings.TrimPrefix(spec, "+"))
	if err != nil {
		return 0, fmt.Errorf("scale %q: write a count (3), an increase (+2) or a decrease (-1)", spec)
	}
	n := num
	if strings.HasPrefix(spec, "+") || strings.HasPrefix(spec, "-") {
		n = cur + num
	}
	if n < 0 {
		return 0, fmt.Errorf("scale %s from %d instances would leave %d; the least is 0", spec, cur, n)
	}
	return n, nil
}

func (m *manager) Signal(app, sig string) error {
	s, err := config.ParseSignal(sig)
	if err != nil {
		return control.Errorf(http.StatusBadRequest, "%v", err)
	}
	if err := m.sup.Signal(app, syscall.Signal(s)); err != nil {
		if errors.Is(err, supervisor.ErrUnknownApp) {
			return err
		}
		return fmt.Errorf("sending %s to %s: %w", s, app, err)
	}
	return nil
}
