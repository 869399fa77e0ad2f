package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdhq/herd/internal/app"
	"github.com/herdhq/herd/internal/control"
	"github.com/herdhq/herd/internal/logbuf"
	"github.com/herdhq/herd/internal/monit"
	"github.com/herdhq/herd/internal/supervisor"
)

// controlCommands are the commands that drive a running `herd up` through
// its control socket.
func controlCommands(file, socket *string, stdout io.Writer) []*cobra.Command {
	client := func() *control.Client {
		path := *socket
		if path == "" {
			path = app.SocketPath(*file)
		}
		return control.NewClient(path)
	}
	// interruptible: Ctrl-C abandons the wait; herd finishes or rolls back on its side.
	interruptible := func() (context.Context, context.CancelFunc) {
		return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	}

	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show every instance: state, pid, uptime, restarts, CPU, memory, requests in flight",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			apps, err := client().Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(apps)
			}
			printStatus(stdout, apps, time.Now())
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")

	describe := &cobra.Command{
		Use:   "describe APP",
		Short: "Show one app's effective config and its instances, as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			raw, err := client().Describe(ctx, args[0])
			if err != nil {
				return err
			}
			var v any
			_ = json.Unmarshal(raw, &v)
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		},
	}

	action := func(name, short string) *cobra.Command {
		return &cobra.Command{
			Use:   name + " APP|all",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx, cancel := interruptible()
				defer cancel()
				start := time.Now()
				if err := client().Action(ctx, name, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s %s: done in %s\n", name, args[0], time.Since(start).Round(time.Millisecond))
				return nil
			},
		}
	}

	scale := &cobra.Command{
		Use:   "scale APP N|+N|-N",
		Short: "Set how many instances an app runs; new ones join when ready, surplus ones drain first",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := interruptible()
			defer cancel()
			n, err := client().Scale(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %d instances\n", args[0], n)
			return nil
		},
	}

	sig := &cobra.Command{
		Use:   "signal SIGNAL APP",
		Short: "Send a signal (e.g. SIGUSR2) to every instance's process group",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return client().Signal(ctx, args[1], args[0])
		},
	}

	var follow bool
	var lines int
	logs := &cobra.Command{
		Use:   "logs [APP]",
		Short: "Print the last lines of an app's output (all apps without APP); -f follows",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := interruptible()
			defer cancel()
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return client().Logs(ctx, name, lines, follow, func(l logbuf.Line) {
				fmt.Fprintln(stdout, l.Text)
			})
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	logs.Flags().IntVarP(&lines, "lines", "n", 50, "how many past lines to print")

	monitor := &cobra.Command{
		Use:   "monit",
		Short: "A live terminal view of every instance (CPU, memory, state, logs) with keys to reload, restart and scale, like pm2 monit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := interruptible()
			defer cancel()
			c := client()
			// Fail here, in plain text, when no herd runs.
			if _, err := c.Status(ctx); err != nil {
				return err
			}
			return monit.Run(ctx, c, monit.Options{})
		},
	}

	return []*cobra.Command{
		status, describe, monitor,
		action("reload", "Replace an app's instances one by one with zero downtime, re-reading herd.yaml"),
		action("restart", "Stop an app's instances, then start them again, re-reading herd.yaml"),
		action("stop", "Stop an app's instances gracefully (drain, signal, kill after kill_timeout)"),
		action("start", "Start an app's stopped or errored instances"),
		scale, sig, logs,
	}
}

// printStatus prints the status table, as `herd status` shows it.
func printStatus(w io.Writer, apps []supervisor.AppStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tINDEX\tPID\tSTATE\tUPTIME\tRESTARTS\tCPU\tMEMORY\tIN FLIGHT")
	for _, a := range apps {
		for _, in := range a.Instances {
			pid, uptime := "-", "-"
			if in.Pid != 0 {
				pid = strconv.Itoa(in.Pid)
				uptime = monit.FormatUptime(now.Sub(in.StartedAt))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%.1f%%\t%.1f MB\t%d\n",
				a.Name, in.Index, pid, in.State, uptime, in.Restarts, in.CPUPercent, float64(in.RSSBytes)/(1<<20), in.Inflight)
		}
	}
	tw.Flush()
}
