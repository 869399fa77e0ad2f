package session

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func newManager(st Store, clk *clock) *Manager {
	return &Manager{Store: st, IdleTimeout: 30 * time.Minute, Lifetime: 2 * time.Hour, Now: clk.Now}
}

// login makes a stored session with values and returns its token.
func login(t *testing.T, m *Manager, user string, kv ...string) string {
	t.Helper()
	ctx := ctxT(t)
	s, err := m.Load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		if err := s.SetUser(ctx, user); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		s.SetBytes(kv[i], []byte(kv[i+1]))
	}
	tok, err := m.Commit(ctx, s)
	if err != nil || tok == "" {
		t.Fatalf("Commit: got %q, %v; want a token", tok, err)
	}
	return tok
}

// use loads token, commits, and reports whether the session was alive.
func use(t *testing.T, m *Manager, token string) bool {
	t.Helper()
	ctx := ctxT(t)
	s, err := m.Load(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if s.IsNew() {
		return false
	}
	if _, err := m.Commit(ctx, s); err != nil {
		t.Fatal(err)
	}
	return true
}

func TestExpiry(t *testing.T) {
	// Idle 30 min, lifetime 2 h, touch interval 3 min. Each row advances
	// the clock, then uses the session.
	tests := []struct {
		name  string
		steps []time.Duration
		alive []bool
	}{
		{"idle: alive just before 30 min", []time.Duration{30*time.Minute - time.Millisecond}, []bool{true}},
		{"idle: dead at 30 min", []time.Duration{30 * time.Minute}, []bool{false}},
		{"idle: each use slides the deadline", []time.Duration{25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 31 * time.Minute}, []bool{true, true, true, false}},
		{"idle: a use within the touch interval does not slide", []time.Duration{2 * time.Minute, 28 * time.Minute}, []bool{true, false}},
		{"absolute: dead at 2 h however much used", []time.Duration{20 * time.Minute, 20 * time.Minute, 20 * time.Minute, 20 * time.Minute, 20 * time.Minute, 20*time.Minute - time.Millisecond, time.Millisecond}, []bool{true, true, true, true, true, true, false}},
	}
	eachBackend(t, func(t *testing.T, open func() Store) {
		st := open()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				clk := newClock()
				m := newManager(st, clk)
				tok := login(t, m, "", "a", "1")
				for i, d := range tt.steps {
					clk.Advance(d)
					if got := use(t, m, tok); got != tt.alive[i] {
						t.Fatalf("step %d (+%v): got alive %v; want %v", i, d, got, tt.alive[i])
					}
				}
			})
		}
	})
}

func TestLifetimeShortenedAppliesAtOnce(t *testing.T) {
	clk := newClock()
	m := newManager(NewMemoryStore(), clk)
	tok := login(t, m, "", "a", "1")
	clk.Advance(20 * time.Minute)
	m.Lifetime = 10 * time.Minute
	if use(t, m, tok) {
		t.Fatal("a session older than a shortened Lifetime: got alive; want dead")
	}
}

func TestTouchSkipsRecentlyTouched(t *testing.T) {
	clk := newClock()
	st := &countingStore{Store: NewMemoryStore()}
	m := newManager(st, clk)
	tok := login(t, m, "", "a", "1")
	_, saves0 := st.counts()
	for range 5 {
		clk.Advance(30 * time.Second) // 2.5 min in all: under the 3 min interval
		use(t, m, tok)
	}
	if _, saves := st.counts(); saves != saves0 {
		t.Fatalf("uses within the touch interval: got %d saves; want 0", saves-saves0)
	}
	clk.Advance(31 * time.Second)
	use(t, m, tok)
	if _, saves := st.counts(); saves != saves0+1 {
		t.Fatalf("a use past the touch interval: got %d saves; want 1", saves-saves0)
	}
}

func TestTokens(t *testing.T) {
	st := &countingStore{Store: NewMemoryStore()}
	m := newManager(st, newClock())
	seen := map[string]bool{}
	for range 100 {
		tok := login(t, m, "", "a", "1")
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) != 32 {
			t.Fatalf("token %q: got %d bytes, %v; want 32 bytes of base64url", tok, len(b), err)
		}
		if seen[tok] {
			t.Fatalf("token %q made twice", tok)
		}
		seen[tok] = true
		use(t, m, tok)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, id := range st.ids {
		if !hex64.MatchString(id) || seen[id] {
			t.Fatalf("store id %q: want the hex SHA-256 of a token, never a token", id)
		}
	}
	for tok := range seen {
		if !slicesContains(st.ids, idOf(tok)) {
			t.Fatalf("token %q: its SHA-256 is not a store id", tok)
		}
	}
	// Malformed tokens never reach the store.
	loads0, _ := st.counts()
	for _, bad := range []string{"x", strings.Repeat("a", 42), strings.Repeat("a", 43) + "=", strings.Repeat("*", 43), "../../etc/passwd"} {
		s, err := m.Load(ctxT(t), bad)
		if err != nil || !s.IsNew() {
			t.Fatalf("Load(%q): got new=%v, %v; want a new session", bad, s.IsNew(), err)
		}
	}
	if loads, _ := st.counts(); loads != loads0 {
		t.Fatalf("malformed tokens: got %d store loads; want 0", loads-loads0)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestRenewKillsOldToken(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() Store) {
		m := newManager(open(), newClock())
		ctx := ctxT(t)
		old := login(t, m, "", "cart", "3 socks")
		s, _ := m.Load(ctx, old)
		if err := s.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		// Dead as Renew returns, before the commit.
		if s2, _ := m.Load(ctx, old); !s2.IsNew() {
			t.Fatal("the old token after Renew: got a live session; want none")
		}
		tok, err := m.Commit(ctx, s)
		if err != nil || tok == old || tok == "" {
			t.Fatalf("Commit after Renew: got %q, %v; want a new token", tok, err)
		}
		s3, _ := m.Load(ctx, tok)
		if v, _ := s3.Bytes("cart"); string(v) != "3 socks" {
			t.Fatalf("renewed session: got cart=%q; want 3 socks", v)
		}
		// A fixation attempt: the attacker's planted token, then the
		// victim logs in (SetUser renews).
		planted := login(t, m, "", "x", "1")
		victim, _ := m.Load(ctx, planted)
		if err := victim.SetUser(ctx, "victim"); err != nil {
			t.Fatal(err)
		}
		vt, err := m.Commit(ctx, victim)
		if err != nil || vt == planted {
			t.Fatalf("login on a planted token: got %q, %v; want a fresh token", vt, err)
		}
		if s, _ := m.Load(ctx, planted); !s.IsNew() || s.UserID() != "" {
			t.Fatalf("the planted token after login: got user %q; want a dead token", s.UserID())
		}
		if s, _ := m.Load(ctx, vt); s.UserID() != "victim" {
			t.Fatalf("the victim's token: got user %q; want victim", s.UserID())
		}
	})
}

func TestDestroyUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() Store) {
		m := newManager(open(), newClock())
		ctx := ctxT(t)
		var alice []string
		for range 3 {
			alice = append(alice, login(t, m, "alice", "a", "1"))
		}
		bob := login(t, m, "bob", "a", "1")
		n, err := m.DestroyUser(ctx, "alice")
		if err != nil || n != 3 {
			t.Fatalf("DestroyUser(alice): got %d, %v; want 3, nil", n, err)
		}
		for _, tok := range alice {
			if use(t, m, tok) {
				t.Fatal("alice's session after DestroyUser: got alive; want dead")
			}
		}
		if !use(t, m, bob) {
			t.Fatal("bob's session after DestroyUser(alice): got dead; want alive")
		}
		if _, err := m.DestroyUser(ctx, ""); err == nil {
			t.Fatal("DestroyUser(\"\"): got nil; want an error")
		}
		// A session that ended elsewhere drops the changes of a request
		// still holding it, and says so.
		s, _ := m.Load(ctx, bob)
		if _, err := m.DestroyUser(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		s.SetBytes("b", []byte("2"))
		if _, err := m.Commit(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Commit of a session destroyed meanwhile: got %v; want ErrNotFound", err)
		}
		if s, _ := m.Load(ctx, bob); !s.IsNew() {
			t.Fatal("a commit resurrected a destroyed session")
		}
		// Later changes start a new session, not a retry of the dead one.
		s.SetBytes("c", []byte("3"))
		if tok, err := m.Commit(ctx, s); err != nil || tok == "" || tok == bob || s.UserID() != "" {
			t.Fatalf("Commit after the session ended: got %q, %v, user %q; want a new anonymous session", tok, err, s.UserID())
		}
	})
}

func TestEmptySessionNotStored(t *testing.T) {
	st := NewMemoryStore()
	m := newManager(st, newClock())
	ctx := ctxT(t)
	s, _ := m.Load(ctx, "")
	if tok, err := m.Commit(ctx, s); tok != "" || err != nil || st.Len() != 0 {
		t.Fatalf("commit of an empty new session: got %q, %v, %d records; want none", tok, err, st.Len())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		m    Manager
		want string
	}{
		{"ok", Manager{Store: NewMemoryStore()}, ""},
		{"no store", Manager{}, "Store is nil"},
		{"touch above idle", Manager{Store: NewMemoryStore(), IdleTimeout: time.Minute, TouchInterval: time.Minute}, "TouchInterval"},
		{"bad cookie name", Manager{Store: NewMemoryStore(), Cookie: Cookie{Name: "a b"}}, "Cookie.Name"},
		{"negative lifetime", Manager{Store: NewMemoryStore(), Lifetime: -time.Second}, "Lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("got %v; want %q", err, tt.want)
			}
		})
	}
}

// TestConcurrentMerge: two Managers on two clients (two instances) set
// different keys of one session at once, many times; neither loses the
// other's key.
func TestConcurrentMerge(t *testing.T) {
	const n = 60
	eachBackend(t, func(t *testing.T, open func() Store) {
		clk := newClock()
		m1, m2 := newManager(open(), clk), newManager(open(), clk)
		tok := login(t, m1, "", "start", "1")
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for _, w := range []struct {
			m   *Manager
			key string
		}{{m1, "a"}, {m2, "b"}} {
			wg.Go(func() {
				ctx := ctxT(t)
				for i := range n {
					s, err := w.m.Load(ctx, tok)
					if err != nil || s.IsNew() {
						errs <- errors.Join(err, errors.New("session lost"))
						return
					}
					if err := Put(NewContext(ctx, s), w.key, i); err != nil {
						errs <- err
						return
					}
					s.Remove("start")
					if _, err := w.m.Commit(ctx, s); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		s, _ := m1.Load(ctxT(t), tok)
		ctx := NewContext(ctxT(t), s)
		for _, k := range []string{"a", "b"} {
			if v, ok, err := Get[int](ctx, k); !ok || err != nil || v != n-1 {
				t.Errorf("key %s: got %d (present %v, %v); want %d", k, v, ok, err, n-1)
			}
		}
		if got := s.Keys(); len(got) != 2 {
			t.Errorf("keys: got %q; want [a b]", got)
		}
	})
}
