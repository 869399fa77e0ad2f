package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdhq/herd/internal/config"
)

// healthCommand is `herd health`: a container's HEALTHCHECK (and anything
// else without a shell or curl) asks a running herd whether it serves. It
// GETs the admin listener's /health and exits 0 on 200, 1 on anything else
// (Docker's and Podman's meaning of healthy and unhealthy).
func healthCommand(file *string, stdout io.Writer) *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 when a running herd's admin /health answers 200, else 1 (for HEALTHCHECK and probes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			target := url
			if target == "" {
				cfg, err := config.Load(*file)
				if err != nil {
					return fmt.Errorf("health: reading the admin address: %w", err)
				}
				target = adminHealthURL(cfg.Admin)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return checkHealth(ctx, target, stdout)
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the URL to GET instead of the config's admin /health")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}

// adminHealthURL is the /health URL of the admin listener at addr. An
// address that listens on every interface (":9090", "0.0.0.0:9090") is
// reached on loopback, where a health check runs.
func adminHealthURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/health"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/health"
}

// checkHealth GETs url once, with no retries and no kept connection, and
// prints the answer's status and, when failing, the services that fail.
func checkHealth(ctx context.Context, url string, stdout io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("health: GET %s: reading the answer: %w", url, err)
	}
	var answer struct {
		Status  string   `json:"status"`
		Failing []string `json:"failing"`
	}
	_ = json.Unmarshal(body, &answer) // a non-JSON answer is reported by its status alone
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("health: GET %s: %s", url, resp.Status)
		if len(answer.Failing) > 0 {
			msg += "; failing: " + strings.Join(answer.Failing, ", ")
		}
		return fmt.Errorf("%s", msg)
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, answer.Status)
	return nil
}
