package proc

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Every process starts below a shim of the running binary: the test binary
// is the shim here. With PROC_TEST_PARENT set, it is instead a stand-in for
// herd: it starts PROC_TEST_CMD with sh, writes the app's pid to
// PROC_TEST_PARENT and waits to be killed.
func TestMain(m *testing.M) {
	RunShim()
	if out := os.Getenv("PROC_TEST_PARENT"); out != "" {
		spec := Spec{Path: "sh", Args: []string{"-c", os.Getenv("PROC_TEST_CMD")}}
		if os.Getenv("PROC_TEST_CGROUP") == "1" {
			cg, err := NewCgroup(fmt.Sprintf("herd-proc-test-%d", os.Getpid()))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			spec.Cgroup = cg
		}
		p, err := Start(spec)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.WriteFile(out, []byte(fmt.Sprintln(p.Pid(), p.ShimPid(), strings.TrimSpace(p.Record().Cgroup))), 0o644)
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}
