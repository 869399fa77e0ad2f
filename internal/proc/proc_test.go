package proc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    Usage
		wantErr bool
	}{
		{
			name: "name with spaces and parens",
			line: "42 (my (odd) app) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1000 123456789 300 18446744073709551615",
			want: Usage{CPU: 2 * time.Second, RSS: 300 * pageSize, Threads: 3},
		},
		{name: "truncated", line: "42 (x) S 1 2 3", wantErr: true},
		{name: "no parens", line: "garbage", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v; want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestReadUsageOfSelfChild(t *testing.T) {
	p, err := Start(Spec{Path: "sleep", Args: []string{"5"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(syscall.SIGTERM, time.Second)
	// Right after the fork the child may not have exec'd yet: RSS 0.
	deadline := time.Now().Add(2 * time.Second)
	for {
		u, err := ReadUsage(p.Pid())
		if err != nil {
			t.Fatal(err)
		}
		if u.RSS > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReadUsage = %+v; want a non-zero RSS", u)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestOutputIsPrefixedByLine(t *testing.T) {
	var out lockedBuffer
	p, err := Start(Spec{Path: "sh", Args: []string{"-c", "echo one; echo two >&2; printf three"}, Output: &out, Prefix: "web[1] "})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	p.WaitOutput()
	got := strings.Split(strings.TrimSpace(out.b.String()), "\n")
	want := map[string]bool{"web[1] one": true, "web[1] two": true, "web[1] three": true}
	if len(got) != 3 {
		t.Fatalf("got %q; want 3 prefixed lines", got)
	}
	for _, l := range got {
		if !want[l] {
			t.Errorf("unexpected line %q", l)
		}
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	// The shell ignores TERM; so does its child, which must die with the group.
	p, err := Start(Spec{Path: "sh", Args: []string{"-c", "trap '' TERM; sleep 30 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := p.Stop(syscall.SIGTERM, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 3*time.Second {
		t.Errorf("Stop took %s; want about the 200ms kill timeout", took)
	}
	if p.ExitCode() != -1 || !strings.Contains(p.Describe(), "killed") {
		t.Errorf("ended with %q; want killed by a signal", p.Describe())
	}
	// Safe to call again.
	if err := p.Stop(syscall.SIGTERM, time.Millisecond); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	// Nothing of the group is left running (a zombie waiting for its new
	// parent to reap it is dead).
	deadline := time.Now().Add(2 * time.Second)
	for liveMembers(t, p.Pid()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("process group still has running members")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveMembers counts the non-zombie processes in process group pgid.
func liveMembers(t *testing.T, pgid int) int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		fields := strings.Fields(string(data[i+1:]))
		// fields[0] is the state, fields[2] the process group.
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			n++
		}
	}
	return n
}

func TestCountFDsSeesANewFile(t *testing.T) {
	before, err := CountFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	after, err := CountFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Errorf("CountFDs = %d after opening a file; want %d", after, before+1)
	}
}
