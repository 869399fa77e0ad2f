package consistency

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestLSN(t *testing.T) {
	for _, tc := range []struct {
		s    string
		lsn  LSN
		fail bool
	}{
		{"0/0", 0, false},
		{"16/B374D848", 0x16_B374D848, false},
		{"ffffffff/ffffffff", 0xffffffff_ffffffff, false},
		{"0/1", 1, false},
		{"", 0, true},
		{"1", 0, true},
		{"/1", 0, true},
		{"1/", 0, true},
		{"100000000/0", 0, true},
		{"x/1", 0, true},
		{"-1/1", 0, true},
	} {
		t.Run(tc.s, func(t *testing.T) {
			got, err := ParseLSN(tc.s)
			if tc.fail {
				if err == nil {
					t.Fatalf("ParseLSN(%q) = %v; want an error", tc.s, got)
				}
				return
			}
			if err != nil || got != tc.lsn {
				t.Fatalf("ParseLSN(%q) = %v, %v; want %v", tc.s, got, err, tc.lsn)
			}
			if back := got.String(); !strings.EqualFold(back, tc.s) {
				t.Fatalf("String() = %q; want %q", back, tc.s)
			}
		})
	}
}

func TestTokenParse(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		fail           bool
	}{
		{"empty", "", "", false},
		{"one", "7:0/10", "7:0/10", false},
		{"sorted and merged", "9:0/5, 7:0/10,9:1/0", "7:0/10,9:1/0", false},
		{"zero LSN dropped", "7:0/0", "", false},
		{"no cluster", "0/10", "", true},
		{"bad cluster", "x:0/10", "", true},
		{"bad lsn", "7:zz", "", true},
		{"too many", strings.Repeat("1:0/1,", 16) + "1:0/1", "", true},
		{"too long", "1:0/" + strings.Repeat("1", 2000), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.fail {
				if !errors.Is(err, ErrBadToken) {
					t.Fatalf("Parse(%q) = %q, %v; want ErrBadToken", tc.in, got, err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestMergeCovers(t *testing.T) {
	a, _ := Parse("1:0/10,3:0/30")
	b, _ := Parse("1:0/20,2:0/5")
	m := a.Merge(b)
	if got := m.String(); got != "1:0/20,2:0/5,3:0/30" {
		t.Fatalf("Merge = %q; want 1:0/20,2:0/5,3:0/30", got)
	}
	if !m.Covers(a) || !m.Covers(b) || a.Covers(b) || b.Covers(a) {
		t.Fatalf("Covers wrong: m⊇a %v m⊇b %v a⊇b %v b⊇a %v", m.Covers(a), m.Covers(b), a.Covers(b), b.Covers(a))
	}
	if got := a.Merge(Token{}).String(); got != a.String() {
		t.Fatalf("Merge with zero = %q; want %q", got, a)
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if Tracking(ctx) || Observe(ctx, NewToken(1, 1)) || !TokenFrom(ctx).IsZero() {
		t.Fatal("a plain context tracks nothing")
	}
	parent := WithToken(ctx, NewToken(1, 10))
	child, cancel := context.WithCancel(parent)
	defer cancel()
	Observe(child, NewToken(1, 20))
	Observe(child, NewToken(1, 15)) // older: ignored
	if got := TokenFrom(parent).LSN(1); got != 20 {
		t.Fatalf("parent after the child observed = %v; want 0/14", got)
	}
	own := WithToken(parent, NewToken(2, 1))
	Observe(own, NewToken(1, 99))
	if got := TokenFrom(parent).LSN(1); got != 20 {
		t.Fatalf("parent after a WithToken child observed = %v; want 0/14 (its own holder)", got)
	}
	if got := TokenFrom(own).String(); got != "1:0/63,2:0/1" {
		t.Fatalf("own = %q; want 1:0/63,2:0/1", got)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { Observe(parent, NewToken(uint64(i%3), LSN(i+1))) })
	}
	wg.Wait()
	if got := TokenFrom(parent).LSN(2); got != 48 {
		t.Fatalf("after concurrent Observe: cluster 2 = %v; want 0/30", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("7:0/10,9:1/0")
	f.Add("1:ffffffff/ffffffff")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(tok.String())
		if err != nil || again.String() != tok.String() {
			t.Fatalf("Parse(String()) of %q = %q, %v; want %q", s, again, err, tok)
		}
	})
}
