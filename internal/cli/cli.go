// Package cli is herd's command line: it parses flags, loads the config and
// hands over to internal/app. It holds no machinery of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/herdhq/herd/internal/app"
	"github.com/herdhq/herd/internal/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitBadConf = 2
)

// Main runs herd with args and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	code := exitOK
	root := &cobra.Command{
		Use:           "herd",
		Short:         "Run web apps in cluster mode behind a built-in load balancer",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(negativeCounts(args))
	root.SetOut(stdout)
	root.SetErr(stderr)

	var file, logLevel, socket, env, listenFlag, adminFlag string
	// override applies --listen and --admin over the file's listen: and admin:.
	override := func(cfg *config.Config) {
		if listenFlag != "" {
			cfg.Listen = listenFlag
		}
		if adminFlag != "" {
			cfg.Admin = adminFlag
		}
	}
	root.PersistentFlags().StringVar(&socket, "socket", "", "control socket (default: .herd/herd.sock beside the config file)")
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "herd's log level: debug, info, warn, error")

	root.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Start every app and the load balancer; stop cleanly on Ctrl-C or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(file)
			if err == nil && env != "" {
				err = cfg.SelectEnv(env)
			}
			if err == nil {
				override(cfg)
				err = config.CheckAdminAuth(cfg)
			}
			if err != nil {
				code = exitBadConf
				return err
			}
			log, err := newLogger(stderr, logLevel)
			if err != nil {
				code = exitBadConf
				return err
			}
			for _, w := range cfg.Warnings {
				log.Warn("config: " + w.Error())
			}
			ctx, stop := signalContext(log)
			defer stop()
			err = app.Run(ctx, cfg, app.Options{Log: log, Output: stdout, Socket: socket, Env: env, Reload: reloads(ctx)})
			var problems config.Errors
			if errors.As(err, &problems) {
				code = exitBadConf
			}
			return err
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Report every problem in the config, ports included, without starting anything",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(file)
			if err == nil {
				override(cfg)
				for _, w := range cfg.Warnings {
					fmt.Fprintln(stderr, "warning:", w.Error())
				}
				// Every address herd up binds (listen, admin, tls.listen,
				// shared_socket apps' listen:), through the same config.Bind.
				if problems := config.CheckListeners(cfg); len(problems) > 0 {
					err = problems
				} else if err = config.CheckAdminAuth(cfg); err == nil {
					err = app.CheckServices(cmd.Context(), cfg)
				}
			}
			if err != nil {
				code = exitBadConf
				return err
			}
			fmt.Fprintf(stdout, "%s: ok (%d apps, %d routes)\n", file, len(cfg.Apps), len(cfg.Routes))
			return nil
		},
	})

	root.AddCommand(controlCommands(&file, &socket, stdout)...)
	root.AddCommand(setupCommands(&file, &env, stdout, stderr)...)
	root.AddCommand(healthCommand(&file, stdout))
	for _, c := range root.Commands() {
		if c.Name() == "up" || c.Name() == "startup" {
			c.Flags().StringVar(&env, "env", "", "merge each app's env_NAME block over its env (PM2's --env)")
		}
		if c.Name() == "up" || c.Name() == "check" {
			c.Flags().StringVar(&listenFlag, "listen", "", "public listener address, over the config's listen:")
			c.Flags().StringVar(&adminFlag, "admin", "", "admin listener address, over the config's admin:")
		}
	}
	// -f names the config everywhere but in `logs`, where it means follow, as in tail -f.
	for _, c := range root.Commands() {
		if c.Name() == "logs" {
			c.Flags().StringVar(&file, "config", "herd.yaml", "config file")
		} else {
			c.Flags().StringVarP(&file, "config", "f", "herd.yaml", "config file")
		}
	}

	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, err)
		if code == exitOK {
			code = exitFailed
		}
	}
	return code
}

// negativeCounts lets `herd scale web -2` mean a decrease, not a flag named 2,
// by putting "--" before a lone negative number.
func negativeCounts(args []string) []string {
	if len(args) == 0 || args[0] != "scale" || slices.Contains(args, "--") {
		return args
	}
	for i, a := range args {
		if len(a) > 1 && a[0] == '-' && strings.Trim(a[1:], "0123456789") == "" {
			return slices.Concat(args[:i:i], []string{"--"}, args[i:])
		}
	}
	return args
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: write debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// reloads delivers a SIGHUP as a request to reload every app, until ctx ends.
func reloads(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case ch <- struct{}{}:
				default: // one pending reload covers several signals
				}
			}
		}
	}()
	return ch
}

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts a
// graceful stop. A second one exits at once; Pdeathsig then takes the
// instances down with herd.
func signalContext(log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			log.Info("signal received; stopping gracefully (send it again to stop at once)", "signal", s.String())
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			log.Warn("second signal; exiting now", "signal", s.String())
			os.Exit(exitFailed)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(done); cancel() }
}
