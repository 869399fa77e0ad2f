package session

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"
	"time"
)

// TestSQLCleanup: Cleanup deletes expired sessions and their values (and
// orphaned values), keeps live ones; the janitor runs it until Close.
func TestSQLCleanup(t *testing.T) {
	for _, b := range backends {
		if b.name != "sqlite" && b.name != "postgres" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)().(*SQLStore)
			ctx := ctxT(t)
			t0 := time.UnixMilli(time.Now().UnixMilli())
			mk := func(deadline time.Time) string {
				id := randHex(32)
				if err := st.Save(ctx, id, Change{New: true, Now: t0, Created: t0, Deadline: deadline, Set: map[string][]byte{"a": []byte("1")}}); err != nil {
					t.Fatal(err)
				}
				return id
			}
			dead1, dead2 := mk(t0.Add(time.Minute)), mk(t0.Add(2*time.Minute))
			live := mk(t0.Add(time.Hour))
			if _, err := st.db.ExecContext(ctx, `INSERT INTO `+st.t+`_values (id, name, value) VALUES ($1, 'x', $2)`, randHex(32), []byte("orphan")); err != nil {
				t.Fatal(err)
			}
			n, err := st.Cleanup(ctx, t0.Add(2*time.Minute))
			if err != nil || n != 2 {
				t.Fatalf("Cleanup: got %d, %v; want 2, nil", n, err)
			}
			if got := count(t, st.db, `SELECT count(*) FROM `+st.t); got != 1 {
				t.Errorf("sessions left: got %d; want 1", got)
			}
			if got := count(t, st.db, `SELECT count(*) FROM `+st.t+`_values`); got != 1 {
				t.Errorf("values left: got %d; want 1 (the live session's)", got)
			}
			if _, err := st.Load(ctx, live, t0); err != nil {
				t.Errorf("live session after Cleanup: %v", err)
			}
			_, _ = dead1, dead2
		})
	}
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSQLJanitor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clk := newClock()
	st, err := NewSQLStore(t.Context(), db, SQLOptions{CleanupInterval: 5 * time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{Store: st, Now: clk.Now}
	login(t, m, "", "a", "1")
	clk.Advance(DefaultIdleTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for count(t, db, `SELECT count(*) FROM sessions`) != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the janitor did not delete the expired session within 10 s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	st.Close()
	st.Close() // twice is fine
	select {
	case <-st.done:
	default:
		t.Fatal("Close returned with the janitor running")
	}
}

func TestSQLOptions(t *testing.T) {
	db, _ := sql.Open("sqlite", filepath.Join(t.TempDir(), "o.db"))
	defer db.Close()
	for _, o := range []SQLOptions{{Table: "x; DROP TABLE y"}, {Dialect: "mysql"}} {
		if _, err := NewSQLStore(t.Context(), db, o); err == nil {
			t.Errorf("NewSQLStore(%+v): got nil; want an error", o)
		}
	}
	st, err := NewSQLStore(t.Context(), db, SQLOptions{CleanupInterval: -1})
	if err != nil || st.postgres {
		t.Fatalf("a sqlite database: got postgres=%v, %v; want sqlite", st != nil && st.postgres, err)
	}
	st.Close()
}
