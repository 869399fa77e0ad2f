package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"time"

	"github.com/herdhq/herd/internal/config"
)

// buildApps runs the build: commands of apps in order, each distinct
// command and folder once. The first failure stops it, with the command's
// output in the error, so that nothing starts from a stale or missing
// program.
func buildApps(ctx context.Context, apps []*config.App, log *slog.Logger) error {
	done := map[[2]string]bool{}
	for _, a := range apps {
		key := [2]string{a.Build, a.Cwd}
		if a.Build == "" || done[key] {
			continue
		}
		done[key] = true
		start := time.Now()
		log.Info("building", "app", a.Name, "build", a.Build, "cwd", a.Cwd)
		cmd := exec.CommandContext(ctx, "sh", "-c", a.Build)
		cmd.Dir = a.Cwd
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			tail := out.Bytes()
			if len(tail) > 4<<10 {
				tail = tail[len(tail)-4<<10:]
			}
			return fmt.Errorf("apps.%s.build: `%s` in %s failed (%v):\n%s", a.Name, a.Build, a.Cwd, err, bytes.TrimSpace(tail))
		}
		log.Info("built", "app", a.Name, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
