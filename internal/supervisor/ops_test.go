package supervisor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/config"
)

// idLog records hooks by instance id, to check that a new instance is ready
// before the old one of its slot drains.
type idLog struct {
	mu     sync.Mutex
	events []string
}

func (l *idLog) hooks() Hooks {
	add := func(kind string, in Instance) {
		l.mu.Lock()
		l.events = append(l.events, fmt.Sprintf("%s %d/%d", kind, in.Index, in.ID))
		l.mu.Unlock()
	}
	return Hooks{
		Ready: func(in Instance) { add("ready", in) },
		Drain: func(_ context.Context, in Instance) { add("drain", in) },
		Gone:  func(in Instance) { add("gone", in) },
	}
}

func (l *idLog) indexOf(event string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.events {
		if e == event {
			return i
		}
	}
	return -1
}

func readyIDs(t *testing.T, s *Supervisor, n int) map[int]uint64 {
	t.Helper()
	for i := range n {
		waitState(t, s, i, Ready, 5*time.Second)
	}
	ids := map[int]uint64{}
	for _, in := range s.Status()[0].Instances {
		ids[in.Index] = in.ID
	}
	return ids
}

func TestReloadStartsNewBeforeDrainingOld(t *testing.T) {
	var l idLog
	s, _, _ := run(t, testApp(t, "listen", 2), l.hooks())
	before := readyIDs(t, s, 2)
	if err := s.Reload(context.Background(), "web", nil, 1); err != nil {
		t.Fatal(err)
	}
	after := s.Status()[0].Instances
	if len(after) != 2 {
		t.Fatalf("after reload: %d instances listed; want 2 (old ones gone)", len(after))
	}
	for _, in := range after {
		if in.State != Ready || in.ID == before[in.Index] || in.Restarts != 1 {
			t.Errorf("instance %d after reload: %+v; want a new ready instance with 1 restart", in.Index, in)
		}
		newReady := l.indexOf(fmt.Sprintf("ready %d/%d", in.Index, in.ID))
		oldDrain := l.indexOf(fmt.Sprintf("drain %d/%d", in.Index, before[in.Index]))
		oldGone := l.indexOf(fmt.Sprintf("gone %d/%d", in.Index, before[in.Index]))
		if newReady < 0 || oldDrain < 0 || oldGone < 0 || newReady > oldDrain || oldDrain > oldGone {
			t.Errorf("slot %d: new ready at %d, old drained at %d, gone at %d; want ready < drain < gone\n%s",
				in.Index, newReady, oldDrain, oldGone, strings.Join(l.events, "\n"))
		}
	}
}

func TestReloadToBrokenVersionKeepsOld(t *testing.T) {
	var l idLog
	s, _, _ := run(t, testApp(t, "listen", 2), l.hooks())
	before := readyIDs(t, s, 2)
	broken := testApp(t, "idle", 2) // never ready
	broken.ListenTimeout = config.Duration(300 * time.Millisecond)
	err := s.Reload(context.Background(), "web", broken, 1)
	if err == nil || !strings.Contains(err.Error(), "old instances kept serving") || !strings.Contains(err.Error(), "listen_timeout") {
		t.Fatalf("Reload to a broken version: err = %v; want it to say the old instances kept serving", err)
	}
	for _, in := range s.Status()[0].Instances {
		if in.State != Ready || in.ID != before[in.Index] {
			t.Errorf("after failed reload: %+v; want the old instance %d still ready", in, before[in.Index])
		}
	}
	if n := len(s.Status()[0].Instances); n != 2 {
		t.Errorf("%d instances listed; want the 2 old ones only", n)
	}
	if got, _ := s.Config("web"); got.Env["HERD_TEST_CHILD"] != "listen" {
		t.Error("a failed reload changed the app's config")
	}
}

func TestScaleStopStart(t *testing.T) {
	s, _, _ := run(t, testApp(t, "listen", 1), Hooks{})
	readyIDs(t, s, 1)
	ctx := context.Background()
	if err := s.Scale(ctx, "web", 3); err != nil {
		t.Fatal(err)
	}
	if st := s.Status()[0].Instances; len(st) != 3 || st[2].State != Ready {
		t.Fatalf("after scale to 3: %+v", st)
	}
	pid2 := s.Status()[0].Instances[2].Pid
	if err := s.Scale(ctx, "web", 1); err != nil {
		t.Fatal(err)
	}
	if st := s.Status()[0].Instances; len(st) != 1 {
		t.Fatalf("after scale to 1: %d instances; want 1", len(st))
	}
	if syscall.Kill(pid2, 0) == nil {
		t.Errorf("scaled-away instance %d still runs", pid2)
	}
	if err := s.Stop(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if st := s.Status()[0].Instances[0]; st.State != Stopped || st.Pid != 0 {
		t.Fatalf("after stop: %+v; want stopped", st)
	}
	if err := s.Start(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if st := s.Status()[0].Instances[0]; st.State != Ready {
		t.Fatalf("after start: %+v; want ready", st)
	}
	if err := s.Scale(ctx, "nope", 1); err == nil {
		t.Error("scaling an unknown app succeeded")
	}
}

func TestSignalReachesInstances(t *testing.T) {
	s, _, _ := run(t, testApp(t, "listen", 2), Hooks{})
	readyIDs(t, s, 2)
	// The child exits on SIGTERM; herd sees a crash and restarts it.
	if err := s.Signal("web", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Status()[0].Instances
		if st[0].Restarts == 1 && st[1].Restarts == 1 && st[0].State == Ready && st[1].State == Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGTERM to every instance: %+v; want both restarted", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
