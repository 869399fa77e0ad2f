package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdhq/herd/internal/config"
	"github.com/herdhq/herd/internal/pm2import"
	"github.com/herdhq/herd/internal/systemd"
)

// setupCommands are `herd startup` and `herd import`: they write files for
// a user and start nothing.
func setupCommands(file, env *string, stdout, stderr io.Writer) []*cobra.Command {
	var runAs string
	startup := &cobra.Command{
		Use:   "startup systemd",
		Short: "Print a systemd unit that runs this herd.yaml at boot (Type=notify, reload on SIGHUP)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "systemd" {
				return fmt.Errorf("herd startup %s: only systemd is supported", args[0])
			}
			cfg, err := config.Load(*file)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding herd's own path: %w", err)
			}
			exe, _ = filepath.EvalSymlinks(exe)
			abs, _ := filepath.Abs(*file)
			if runAs == "" {
				if u, err := user.Current(); err == nil {
					runAs = u.Username
				}
			}
			var stop time.Duration
			for _, a := range cfg.Apps {
				stop = max(stop, time.Duration(a.DrainTimeout+a.KillTimeout))
			}
			fmt.Fprint(stdout, systemd.Unit(systemd.UnitOptions{Herd: exe, Config: abs, User: runAs, Env: *env, StopTimeout: stop + 5*time.Second}))
			fmt.Fprintf(stderr, "# save as /etc/systemd/system/herd.service, then: systemctl daemon-reload && systemctl enable --now herd\n")
			return nil
		},
	}
	startup.Flags().StringVar(&runAs, "user", "", "user the service runs as (default: you)")

	var output string
	var force bool
	imp := &cobra.Command{
		Use:   "import pm2 ECOSYSTEM_FILE",
		Short: "Write a herd.yaml equivalent to a PM2 ecosystem file (.json, or .config.js with node)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "pm2" {
				return fmt.Errorf("herd import %s: only pm2 is supported", args[0])
			}
			data, err := pm2import.Load(context.Background(), args[1])
			if err != nil {
				return err
			}
			res, err := pm2import.Convert(data)
			if err != nil {
				return err
			}
			if output == "-" {
				_, err = stdout.Write(res.YAML)
			} else {
				err = writeNew(output, res.YAML, force)
			}
			if err != nil {
				return err
			}
			for _, n := range res.Unmapped {
				fmt.Fprintln(stderr, "note:", n)
			}
			if output != "-" {
				fmt.Fprintf(stdout, "wrote %s; check it with: herd check -f %s\n", output, output)
			}
			return nil
		},
	}
	imp.Flags().StringVarP(&output, "output", "o", "herd.yaml", "file to write (- for stdout)")
	imp.Flags().BoolVar(&force, "force", false, "overwrite the output file if it exists")
	return []*cobra.Command{startup, imp}
}

// writeNew writes data to path through a temporary file and a rename, so a
// reader never sees half a file; an existing file is kept unless force.
func writeNew(path string, data []byte, force bool) error {
	if _, err := os.Stat(path); err == nil && !force {
		return fmt.Errorf("%s exists; pass --force to overwrite it, or -o another file", path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".herd-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
