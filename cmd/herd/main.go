// Command herd runs web apps in cluster mode behind its own load balancer.
//
//	herd up -f herd.yaml     run the apps in the foreground; Ctrl-C stops them
//	herd check -f herd.yaml  report every problem in the config without starting
package main

import (
	"os"

	"github.com/herdhq/herd/internal/cli"
	"github.com/herdhq/herd/internal/proc"
)

func main() {
	proc.RunShim() // proc's init already ran any shim (supervisor or LISTEN_PID); harmless, and says where
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
