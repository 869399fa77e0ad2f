// Command orphan leaves an orphan behind for the image test: run with no
// argument it starts itself as "middle", which starts "leaf" (a process
// that sleeps, then exits), prints the leaf's pid and exits at once without
// waiting for it. The leaf is then reparented to the nearest subreaper or
// to PID 1, whose job it is to reap it when it exits.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

func main() {
	role := ""
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	switch role {
	case "leaf":
		time.Sleep(2 * time.Second)
	case "middle":
		leaf := exec.Command(os.Args[0], "leaf")
		if err := leaf.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "orphan:", err)
			os.Exit(1)
		}
		fmt.Println(leaf.Process.Pid)
		os.Exit(0) // without a Wait: the leaf is orphaned
	default:
		middle := exec.Command(os.Args[0], "middle")
		middle.Stdout, middle.Stderr = os.Stdout, os.Stderr
		if err := middle.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "orphan:", err)
			os.Exit(1)
		}
	}
}
