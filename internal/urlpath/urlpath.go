// Package urlpath normalizes a request path before herd routes it, so that
// `/public/../admin/x` or `/public/%2e%2e/admin/x` is matched (and
// forwarded) as the `/admin/x` an instance would read it as, never as a
// path under `/public`. It does what NGINX does before matching a location,
// with one difference that keeps paths' meaning: only unreserved
// characters are decoded (RFC 3986 §6.2.2.2), so an encoded slash stays
// part of its segment, and a path whose encoded slashes or backslashes
// would hide a dot segment ("..%2f") is refused rather than guessed at.
package urlpath

import (
	"errors"
	"strings"
)

// Errors Normalize returns; each is a 400.
var (
	ErrEscape    = errors.New("the path has a malformed percent-escape")
	ErrAboveRoot = errors.New("the path climbs above /")
	ErrHidden    = errors.New("the path hides a dot segment behind an encoded slash or backslash")
	ErrNotPath   = errors.New("the path does not start with /")
	ErrControl   = errors.New("the path holds a control character")
)

// Normalize returns the normalized form of p, a request path in its
// escaped form (no query): unreserved percent-escapes decoded, the others'
// hex upper-cased, runs of slashes merged into one unless keepSlashes, and
// "." and ".." segments removed (RFC 3986 §5.2.4). A ".." that would climb
// above / is an error, as NGINX answers 400 to it.
func Normalize(p string, keepSlashes bool) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", ErrNotPath
	}
	if clean(p, keepSlashes) {
		return p, nil // the common case, without allocating
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "", ErrControl
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", ErrEscape
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if d < 0x20 || d == 0x7f {
				return "", ErrControl // %00 and friends: never a path
			}
			if isUnreserved(d) {
				b.WriteByte(d)
			} else {
				b.WriteByte('%')
				b.WriteByte(upper(p[i+1]))
				b.WriteByte(upper(p[i+2]))
			}
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	out, err := removeDots(b.String(), keepSlashes)
	if err != nil {
		return "", err
	}
	// An encoded slash or backslash next to dots: decoding it would make a
	// dot segment an instance might act on. Refuse what cannot be routed
	// the way the instance reads it.
	if hides(out) {
		return "", ErrHidden
	}
	return out, nil
}

// clean reports whether p is already normal: no escapes or backslashes,
// no dot segments, no doubled slashes (unless kept), no control bytes.
func clean(p string, keepSlashes bool) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%' || c == '\\' || c < 0x20 || c == 0x7f:
			return false
		case c == '/' && i+1 < len(p):
			n := p[i+1]
			if n == '/' && !keepSlashes {
				return false
			}
			if n == '.' && (i+2 == len(p) || p[i+2] == '/' || (p[i+2] == '.' && (i+3 == len(p) || p[i+3] == '/'))) {
				return false
			}
		}
	}
	return true
}

// removeDots applies RFC 3986 §5.2.4 to an absolute path, after merging
// runs of slashes unless keepSlashes (NGINX merges first, too); it fails
// where ".." would climb above /.
func removeDots(p string, keepSlashes bool) (string, error) {
	if !keepSlashes {
		for strings.Contains(p, "//") {
			p = strings.ReplaceAll(p, "//", "/")
		}
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "") // "/a/." is "/a/"
			}
		case "..":
			if len(out) == 0 {
				return "", ErrAboveRoot
			}
			out = out[:len(out)-1]
			if last {
				out = append(out, "") // "/a/b/.." is "/a/"
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/"), nil
}

// hides reports whether a segment, once %2F, %5C and \ were read as
// slashes, would hold a "." or ".." segment.
func hides(p string) bool {
	up := strings.ToUpper(p)
	if !strings.Contains(up, "%2F") && !strings.Contains(up, "%5C") && !strings.Contains(p, `\`) {
		return false
	}
	r := strings.NewReplacer("%2F", "/", "%2f", "/", "%5C", "/", "%5c", "/", `\`, "/").Replace(p)
	for _, s := range strings.Split(r, "/") {
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

// isUnreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3).
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}
