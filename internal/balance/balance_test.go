package balance

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func backends(weights ...int) []*Backend {
	bs := make([]*Backend, len(weights))
	for i, w := range weights {
		bs[i] = &Backend{Addr: string(rune('a' + i)), Weight: w}
	}
	return bs
}

func sequence(p Policy, bs []*Backend, n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteString(p.Pick(bs).Addr)
	}
	return sb.String()
}

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		n       int
		want    string
	}{
		{"equal weights rotate", []int{1, 1, 1}, 6, "abcabc"},
		{"zero weight counts as one", []int{0, 0}, 4, "abab"},
		// NGINX's smooth weighted round robin example.
		{"smooth 5 1 1", []int{5, 1, 1}, 7, "aabacaa"},
		{"smooth 2 1", []int{2, 1}, 6, "abaaba"},
		{"single", []int{3}, 3, "aaa"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sequence(&RoundRobin{}, backends(tc.weights...), tc.n); got != tc.want {
				t.Errorf("got %s; want %s", got, tc.want)
			}
		})
	}
}

func TestLeastConn(t *testing.T) {
	bs := backends(1, 1, 1)
	bs[0].inflight.Store(5)
	bs[1].inflight.Store(2)
	bs[2].inflight.Store(7)
	p := &LeastConn{}
	for range 5 {
		if got := p.Pick(bs).Addr; got != "b" {
			t.Fatalf("got %s; want b (fewest in flight)", got)
		}
	}
	// Ties rotate, so an idle pool still spreads requests.
	for _, b := range bs {
		b.inflight.Store(0)
	}
	seen := map[string]bool{}
	for range 3 {
		seen[p.Pick(bs).Addr] = true
	}
	if len(seen) != 3 {
		t.Errorf("idle ties reached %v; want all three", seen)
	}
	// Weight divides the load: 4 in flight at weight 4 beats 2 at weight 1.
	w := backends(4, 1)
	w[0].inflight.Store(4)
	w[1].inflight.Store(2)
	if got := p.Pick(w).Addr; got != "a" {
		t.Errorf("weighted: got %s; want a", got)
	}
}

func TestRandomTwoNeverPicksTheMoreLoaded(t *testing.T) {
	bs := backends(1, 1)
	bs[0].inflight.Store(10)
	for range 100 {
		if got := (RandomTwo{}).Pick(bs).Addr; got != "b" {
			t.Fatalf("got %s; want b: of two, the less loaded wins", got)
		}
	}
	bs = backends(1, 1, 1, 1)
	counts := map[string]int{}
	for range 4000 {
		counts[(RandomTwo{}).Pick(bs).Addr]++
	}
	for addr, c := range counts {
		if c < 700 {
			t.Errorf("backend %s picked %d of 4000; want about 1000", addr, c)
		}
	}
}

func TestPoolPickWaitsForReadyBackend(t *testing.T) {
	p := NewPool("web", 1, time.Second)
	b := &Backend{Addr: "x"}
	go func() {
		time.Sleep(50 * time.Millisecond)
		p.Add(b)
	}()
	got, err := p.Pick(context.Background(), &RoundRobin{}, nil, "", 5*time.Second)
	if err != nil || got != b {
		t.Fatalf("Pick = %v, %v; want the backend added while waiting", got, err)
	}
}

func TestPoolPickTimesOut(t *testing.T) {
	p := NewPool("web", 1, time.Second)
	start := time.Now()
	_, err := p.Pick(context.Background(), &RoundRobin{}, nil, "", 50*time.Millisecond)
	if !errors.Is(err, ErrNoBackend) {
		t.Fatalf("err = %v; want ErrNoBackend", err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Errorf("returned after %s; want it to wait the queue timeout", time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Pick(ctx, &RoundRobin{}, nil, "", time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v; want context.Canceled", err)
	}
}

func TestPoolPickExcludesTriedAndDownBackends(t *testing.T) {
	p := NewPool("web", 1, time.Minute)
	bs := backends(1, 1, 1)
	for _, b := range bs {
		p.Add(b)
	}
	for range 10 {
		got, _ := p.Pick(context.Background(), &RoundRobin{}, []*Backend{bs[0]}, "", time.Second)
		if got == bs[0] {
			t.Fatal("picked the excluded backend")
		}
	}
	now := time.Now()
	if !bs[1].Fail(now, 1, time.Minute) {
		t.Fatal("Fail with max_fails 1 did not mark the backend down")
	}
	for range 10 {
		got, _ := p.Pick(context.Background(), &RoundRobin{}, []*Backend{bs[0]}, "", time.Second)
		if got != bs[2] {
			t.Fatalf("got %s; want c, the only one neither excluded nor down", got.Addr)
		}
	}
	// When every candidate is down, they are used anyway rather than failing.
	bs[2].Fail(now, 1, time.Minute)
	if got, err := p.Pick(context.Background(), &RoundRobin{}, []*Backend{bs[0]}, "", 10*time.Millisecond); err != nil || got == bs[0] {
		t.Errorf("all down: got %v, %v; want a down backend other than the excluded one", got, err)
	}
	// Excluding the only backend means waiting, then ErrNoBackend.
	single := NewPool("one", 1, time.Minute)
	single.Add(bs[0])
	if _, err := single.Pick(context.Background(), &RoundRobin{}, []*Backend{bs[0]}, "", 10*time.Millisecond); !errors.Is(err, ErrNoBackend) {
		t.Errorf("only backend excluded: err = %v; want ErrNoBackend", err)
	}
}

func TestBackendFailWindow(t *testing.T) {
	b := &Backend{}
	t0 := time.Unix(1000, 0)
	if b.Fail(t0, 3, 10*time.Second) || b.Fail(t0.Add(time.Second), 3, 10*time.Second) {
		t.Fatal("down before max_fails")
	}
	// The window expired: counting starts over.
	if b.Fail(t0.Add(20*time.Second), 3, 10*time.Second) {
		t.Fatal("down although the earlier fails fell out of fail_timeout")
	}
	b.Fail(t0.Add(21*time.Second), 3, 10*time.Second)
	if !b.Fail(t0.Add(22*time.Second), 3, 10*time.Second) {
		t.Fatal("not down after 3 fails within fail_timeout")
	}
	if b.Available(t0.Add(25*time.Second)) || !b.Available(t0.Add(33*time.Second)) {
		t.Error("want down for fail_timeout after the last fail, then available")
	}
}

func TestPoolDrainWaitsForInflight(t *testing.T) {
	p := NewPool("web", 1, time.Second)
	b := &Backend{Addr: "x"}
	p.Add(b)
	b.Acquire()
	go func() {
		time.Sleep(50 * time.Millisecond)
		b.Release()
	}()
	start := time.Now()
	if !p.Drain(context.Background(), b) {
		t.Fatal("Drain reported not drained")
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Error("Drain returned before the request finished")
	}
	if len(p.Backends()) != 0 {
		t.Error("drained backend still in the pool")
	}
	b.Acquire()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if p.Drain(ctx, b) {
		t.Error("Drain reported drained with a request still in flight")
	}
}

func TestBackupsOnlyWhenNoOtherIsAvailable(t *testing.T) {
	p := NewPool("up", 1, time.Minute)
	primary, backup := &Backend{Addr: "a"}, &Backend{Addr: "b", Backup: true}
	p.Add(primary)
	p.Add(backup)
	for range 10 {
		b, _ := p.Pick(context.Background(), &RoundRobin{}, nil, "", time.Second)
		b.Release()
		if b != primary {
			t.Fatal("a backup got a request while the primary was available")
		}
	}
	primary.Fail(time.Now(), 1, time.Minute)
	if b, _ := p.Pick(context.Background(), &RoundRobin{}, nil, "", time.Second); b != backup {
		t.Errorf("primary down: got %v; want the backup", b)
	}
}

func TestMaxConnsWaitsForAFreeSlot(t *testing.T) {
	p := NewPool("up", 1, time.Minute)
	b := &Backend{Addr: "a", MaxConns: 1}
	p.Add(b)
	first, _ := p.Pick(context.Background(), &RoundRobin{}, nil, "", time.Second)
	go func() {
		time.Sleep(50 * time.Millisecond)
		first.Release()
	}()
	start := time.Now()
	second, err := p.Pick(context.Background(), &RoundRobin{}, nil, "", time.Second)
	if err != nil || second != b || time.Since(start) < 40*time.Millisecond {
		t.Errorf("second pick: %v, %v after %s; want the backend once the first request ended", second, err, time.Since(start))
	}
	if _, err := p.Pick(context.Background(), &RoundRobin{}, nil, "", 30*time.Millisecond); !errors.Is(err, ErrNoBackend) {
		t.Errorf("at max_conns past the queue timeout: %v; want ErrNoBackend", err)
	}
}

func TestRendezvousMovesFewKeys(t *testing.T) {
	mk := func(n int) []*Backend {
		bs := make([]*Backend, n)
		for i := range bs {
			bs[i] = &Backend{ID: string(rune('a' + i))}
		}
		return bs
	}
	four, five := mk(4), mk(5)
	const keys = 10000
	moved := 0
	counts := map[string]int{}
	for i := range keys {
		k := "user-" + strconv.Itoa(i)
		a, b := (Rendezvous{}).PickKey(four, k), (Rendezvous{}).PickKey(five, k)
		if a.ID != b.ID {
			moved++
		}
		counts[b.ID]++
		if again := (Rendezvous{}).PickKey(four, k); again != a {
			t.Fatal("the same key picked two backends")
		}
	}
	// About 1/5 of the keys should move to the new backend; hash % N would move 80 %.
	if moved < keys/5-500 || moved > keys/5+500 {
		t.Errorf("adding a 5th backend moved %d of %d keys; want about %d", moved, keys, keys/5)
	}
	for id, c := range counts {
		if c < keys/5-500 || c > keys/5+500 {
			t.Errorf("backend %s got %d keys; want about %d", id, c, keys/5)
		}
	}
	// Weight 3 against 1: about three quarters of the keys.
	w := []*Backend{{ID: "x", Weight: 3}, {ID: "y", Weight: 1}}
	heavy := 0
	for i := range keys {
		if (Rendezvous{}).PickKey(w, strconv.Itoa(i)).ID == "x" {
			heavy++
		}
	}
	if heavy < keys*3/4-400 || heavy > keys*3/4+400 {
		t.Errorf("weight 3 of 4 got %d of %d keys; want about %d", heavy, keys, keys*3/4)
	}
}

// A backend that replaces another for the same server keeps its health.
func TestInheritHealth(t *testing.T) {
	now := time.Now()
	old := &Backend{ID: "u/a", Addr: "a"}
	old.Fail(now, 1, time.Minute)
	nb := &Backend{ID: "u/a", Addr: "a", Weight: 3}
	nb.InheritHealth(old)
	if nb.Available(now) {
		t.Error("the new backend is available; want it down like the old one")
	}
	if fresh := (&Backend{ID: "u/b"}); !fresh.Available(now) {
		t.Error("a new backend without InheritHealth is down")
	}
}
