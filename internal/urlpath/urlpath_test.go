package urlpath

import (
	"errors"
	"testing"
)

// The cases follow what NGINX matches a location against (its
// ngx_http_parse_complex_uri), but for the escapes only unreserved
// characters are decoded.
func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		keep     bool // merge_slashes: false
		err      error
	}{
		{in: "/", want: "/"},
		{in: "/a/b", want: "/a/b"},
		{in: "/a/b/", want: "/a/b/"},
		{in: "/public/../admin/x", want: "/admin/x"},
		{in: "/public/%2e%2e/admin/x", want: "/admin/x"},
		{in: "/public/%2E%2E/admin/x", want: "/admin/x"},
		{in: "/public/.%2e/admin/x", want: "/admin/x"},
		{in: "/a/./b", want: "/a/b"},
		{in: "/a/.", want: "/a/"},
		{in: "/a/b/..", want: "/a/"},
		{in: "/a/b/../../c", want: "/c"},
		{in: "//a///b", want: "/a/b"},
		{in: "//a///b", want: "//a///b", keep: true},
		{in: "/a//../b", want: "/b"},
		{in: "/a//../b", want: "/a/b", keep: true},
		{in: "/%7Euser/%41%42c", want: "/~user/ABc"},
		{in: "/a%20b/%e2%82%ac", want: "/a%20b/%E2%82%AC"},
		{in: "/files/a%2Fb", want: "/files/a%2Fb"}, // an encoded slash is part of its segment
		{in: "/..", err: ErrAboveRoot},
		{in: "/a/../..", err: ErrAboveRoot},
		{in: "/%2e%2e/etc/passwd", err: ErrAboveRoot},
		{in: "/public/..%2fadmin", err: ErrHidden},
		{in: "/public/..%5Cadmin", err: ErrHidden},
		{in: `/public/..\admin`, err: ErrHidden},
		{in: "/a%zz", err: ErrEscape},
		{in: "/a%2", err: ErrEscape},
		{in: "/a%00b", err: ErrControl},
		{in: "/a\x01b", err: ErrControl},
		{in: "a/b", err: ErrNotPath},
		{in: "*", err: ErrNotPath},
	}
	for _, tc := range tests {
		got, err := Normalize(tc.in, tc.keep)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Normalize(%q, keep %v) = %q, %v; want %q, %v", tc.in, tc.keep, got, err, tc.want, tc.err)
		}
	}
}

// A normal path costs no allocation.
func TestNormalizeCleanPathAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { _, _ = Normalize("/api/users/42/orders", false) })
	if allocs != 0 {
		t.Errorf("%v allocations for a normal path; want 0", allocs)
	}
}

// Normalizing twice changes nothing more.
func FuzzNormalizeIdempotent(f *testing.F) {
	for _, s := range []string{"/a/../b", "/%2e/x", "//a//b/", "/a%2Fb", "/~%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		once, err := Normalize(p, false)
		if err != nil {
			return
		}
		twice, err := Normalize(once, false)
		if err != nil || twice != once {
			t.Fatalf("Normalize(%q) = %q, again %q, %v", p, once, twice, err)
		}
	})
}
