package session

import (
	"bytes"
	"errors"
	"maps"
	"testing"
	"time"
)

func strp(s string) *string { return &s }

// TestStoreConformance runs the Store contract against every store.
func TestStoreConformance(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() Store) {
		st := open()
		ctx := ctxT(t)
		t0 := time.UnixMilli(time.Now().UnixMilli())
		d0 := t0.Add(time.Hour)
		create := func(t *testing.T, user string, vals map[string][]byte) string {
			t.Helper()
			id := randHex(32)
			if err := st.Save(ctx, id, Change{New: true, Now: t0, Created: t0, Deadline: d0, User: strp(user), Set: vals}); err != nil {
				t.Fatalf("Save(New): %v", err)
			}
			return id
		}
		load := func(t *testing.T, id string, now time.Time) Record {
			t.Helper()
			rec, err := st.Load(ctx, id, now)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			return rec
		}
		gone := func(t *testing.T, id string, now time.Time) {
			t.Helper()
			if _, err := st.Load(ctx, id, now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load of a dead session: got %v; want ErrNotFound", err)
			}
		}

		t.Run("round trip", func(t *testing.T) {
			vals := map[string][]byte{"a": []byte(`"x"`), "bin": {0, 0xff, '\n', 0}, "empty": {}}
			id := create(t, "u-rt", vals)
			rec := load(t, id, t0)
			if rec.UserID != "u-rt" || !rec.Created.Equal(t0) || !rec.Deadline.Equal(d0) {
				t.Errorf("got user %q created %v deadline %v; want u-rt %v %v", rec.UserID, rec.Created, rec.Deadline, t0, d0)
			}
			if !maps.EqualFunc(rec.Values, vals, bytes.Equal) {
				t.Errorf("got values %q; want %q", rec.Values, vals)
			}
		})
		t.Run("unknown id", func(t *testing.T) { gone(t, randHex(32), t0) })
		t.Run("new over an existing id fails", func(t *testing.T) {
			id := create(t, "", nil)
			if err := st.Save(ctx, id, Change{New: true, Now: t0, Created: t0, Deadline: d0}); err == nil {
				t.Fatal("Save(New) of an existing id: got nil; want an error")
			}
		})
		t.Run("dead at its deadline", func(t *testing.T) {
			id := create(t, "", map[string][]byte{"a": []byte("1")})
			load(t, id, d0.Add(-time.Millisecond))
			gone(t, id, d0)
			err := st.Save(ctx, id, Change{Now: d0, Set: map[string][]byte{"a": []byte("2")}})
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Save at the deadline: got %v; want ErrNotFound", err)
			}
			if got := load(t, id, t0).Values["a"]; string(got) != "1" {
				t.Errorf("after a refused Save: got a=%q; want 1", got)
			}
			if err := st.Renew(ctx, id, randHex(32), d0); !errors.Is(err, ErrNotFound) {
				t.Errorf("Renew at the deadline: got %v; want ErrNotFound", err)
			}
		})
		t.Run("save changes only the keys it names", func(t *testing.T) {
			id := create(t, "", map[string][]byte{"keep": []byte("k"), "a": []byte("0")})
			steps := []Change{
				{Now: t0, Set: map[string][]byte{"a": []byte("1")}},
				{Now: t0, Set: map[string][]byte{"b": []byte("2")}},
				{Now: t0, Delete: []string{"a", "never-set"}},
			}
			for _, c := range steps {
				if err := st.Save(ctx, id, c); err != nil {
					t.Fatal(err)
				}
			}
			rec := load(t, id, t0)
			want := map[string][]byte{"keep": []byte("k"), "b": []byte("2")}
			if !maps.EqualFunc(rec.Values, want, bytes.Equal) {
				t.Errorf("got %q; want %q", rec.Values, want)
			}
			if !rec.Deadline.Equal(d0) {
				t.Errorf("a Save without Deadline moved it: got %v; want %v", rec.Deadline, d0)
			}
		})
		t.Run("deadline moves", func(t *testing.T) {
			id := create(t, "", map[string][]byte{"a": []byte("1")})
			d1 := d0.Add(time.Hour)
			if err := st.Save(ctx, id, Change{Now: t0, Deadline: d1}); err != nil {
				t.Fatal(err)
			}
			rec := load(t, id, d0.Add(time.Minute))
			if !rec.Deadline.Equal(d1) || string(rec.Values["a"]) != "1" {
				t.Errorf("got deadline %v a=%q; want %v 1", rec.Deadline, rec.Values["a"], d1)
			}
		})
		t.Run("renew", func(t *testing.T) {
			old := create(t, "u-renew", map[string][]byte{"a": []byte("1")})
			id := randHex(32)
			if err := st.Renew(ctx, old, id, t0); err != nil {
				t.Fatal(err)
			}
			gone(t, old, t0)
			rec := load(t, id, t0)
			if rec.UserID != "u-renew" || string(rec.Values["a"]) != "1" || !rec.Deadline.Equal(d0) {
				t.Errorf("renewed: got %+v; want user u-renew, a=1, deadline %v", rec, d0)
			}
			if err := st.Save(ctx, old, Change{Now: t0, Set: map[string][]byte{"b": []byte("x")}}); !errors.Is(err, ErrNotFound) {
				t.Errorf("Save to the old id: got %v; want ErrNotFound", err)
			}
			if err := st.Renew(ctx, old, randHex(32), t0); !errors.Is(err, ErrNotFound) {
				t.Errorf("Renew of the old id: got %v; want ErrNotFound", err)
			}
			other := create(t, "", nil)
			if err := st.Renew(ctx, id, other, t0); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Renew onto an existing id: got %v; want an id-exists error", err)
			}
			if n, err := st.DestroyUser(ctx, "u-renew"); err != nil || n != 1 {
				t.Errorf("DestroyUser after Renew: got %d, %v; want 1, nil", n, err)
			}
			gone(t, id, t0)
		})
		t.Run("destroy", func(t *testing.T) {
			id := create(t, "u-destroy", map[string][]byte{"a": []byte("1")})
			for range 2 {
				if err := st.Destroy(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			gone(t, id, t0)
			if n, _ := st.DestroyUser(ctx, "u-destroy"); n != 0 {
				t.Errorf("DestroyUser after Destroy: got %d; want 0", n)
			}
		})
		t.Run("destroy user", func(t *testing.T) {
			var mine []string
			for range 3 {
				mine = append(mine, create(t, "u-all", map[string][]byte{"a": []byte("1")}))
			}
			theirs := create(t, "u-other", nil)
			anon := create(t, "", nil)
			moved := create(t, "u-all", nil)
			if err := st.Save(ctx, moved, Change{Now: t0, User: strp("u-moved")}); err != nil {
				t.Fatal(err)
			}
			n, err := st.DestroyUser(ctx, "u-all")
			if err != nil || n != 3 {
				t.Fatalf("DestroyUser: got %d, %v; want 3, nil", n, err)
			}
			for _, id := range mine {
				gone(t, id, t0)
			}
			for _, id := range []string{theirs, anon, moved} {
				load(t, id, t0)
			}
			if got := load(t, moved, t0).UserID; got != "u-moved" {
				t.Errorf("moved session's user: got %q; want u-moved", got)
			}
			if n, err := st.DestroyUser(ctx, "u-moved"); err != nil || n != 1 {
				t.Errorf("DestroyUser(u-moved): got %d, %v; want 1, nil", n, err)
			}
		})
	})
}
