// Package consistency carries read-your-writes tokens: what a reader must
// have seen of each PostgreSQL cluster's write-ahead log before it may
// answer. It depends on the standard library only, so that an HTTP client
// (svcclient) can pass tokens on without importing a database driver;
// package dbrouter makes and honours them.
//
// A Token maps a cluster, named by its system identifier (the same on a
// primary and its streaming replicas: pg_control_system()), to an LSN. A
// context carries one in a mutable holder, so that a write made anywhere
// under that context (dbrouter records it with Observe) is seen by every
// later read and outgoing call under it:
//
//	ctx = consistency.WithToken(ctx, tok) // or dbrouter.Middleware, per request
//	...                                    // writes Observe their LSN into ctx
//	req.Header.Set(consistency.Header, consistency.TokenFrom(ctx).String())
//
// The header's value is a comma-separated list of CLUSTER:HI/LO, the
// cluster's system identifier in decimal and the LSN as PostgreSQL prints
// it (16/B374D848), e.g. "7312345678901234567:0/1A2B3C4D".
package consistency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Header is the HTTP header a Token travels in, on requests between
// services and on the answers of services that wrote.
const Header = "Herd-Consistency-Token"

// maxParts and maxLen bound what Parse accepts from the network.
const (
	maxParts = 16
	maxLen   = 1024
)

// LSN is a position in a PostgreSQL write-ahead log.
type LSN uint64

// String formats l as PostgreSQL does: the high and low 32 bits in
// upper-case hex.
func (l LSN) String() string {
	return strings.ToUpper(strconv.FormatUint(uint64(l)>>32, 16) + "/" + strconv.FormatUint(uint64(l)&0xffffffff, 16))
}

// ParseLSN parses PostgreSQL's HI/LO form of an LSN.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("consistency: bad LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("consistency: bad LSN %q", s)
	}
	return LSN(h<<32 | l), nil
}

// part is one cluster's position.
type part struct {
	cluster uint64
	lsn     LSN
}

// Token is what a read must have seen: an LSN per cluster. The zero Token
// asks for nothing. A Token is immutable and safe to share.
type Token struct {
	parts []part // sorted by cluster, one per cluster, lsn > 0
}

// NewToken returns the Token asking for lsn on cluster.
func NewToken(cluster uint64, lsn LSN) Token {
	if lsn == 0 {
		return Token{}
	}
	return Token{parts: []part{{cluster, lsn}}}
}

// IsZero reports whether t asks for nothing.
func (t Token) IsZero() bool { return len(t.parts) == 0 }

// LSN returns the position t asks of cluster, 0 for none.
func (t Token) LSN(cluster uint64) LSN {
	for _, p := range t.parts {
		if p.cluster == cluster {
			return p.lsn
		}
	}
	return 0
}

// Clusters returns the clusters t names, in increasing order.
func (t Token) Clusters() []uint64 {
	out := make([]uint64, len(t.parts))
	for i, p := range t.parts {
		out[i] = p.cluster
	}
	return out
}

// Merge returns the Token asking for the later of t's and o's position on
// every cluster either names.
func (t Token) Merge(o Token) Token {
	switch {
	case len(o.parts) == 0:
		return t
	case len(t.parts) == 0:
		return o
	}
	out := make([]part, 0, len(t.parts)+len(o.parts))
	i, j := 0, 0
	for i < len(t.parts) || j < len(o.parts) {
		switch {
		case j == len(o.parts) || (i < len(t.parts) && t.parts[i].cluster < o.parts[j].cluster):
			out = append(out, t.parts[i])
			i++
		case i == len(t.parts) || o.parts[j].cluster < t.parts[i].cluster:
			out = append(out, o.parts[j])
			j++
		default:
			out = append(out, part{t.parts[i].cluster, max(t.parts[i].lsn, o.parts[j].lsn)})
			i++
			j++
		}
	}
	return Token{parts: out}
}

// Covers reports whether t asks for nothing that o does not already.
func (t Token) Covers(o Token) bool {
	for _, p := range o.parts {
		if t.LSN(p.cluster) < p.lsn {
			return false
		}
	}
	return true
}

// String is t in Header's form; "" for the zero Token.
func (t Token) String() string {
	var b strings.Builder
	for i, p := range t.parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(p.cluster, 10))
		b.WriteByte(':')
		b.WriteString(p.lsn.String())
	}
	return b.String()
}

// ErrBadToken is wrapped by Parse's errors.
var ErrBadToken = errors.New("consistency: bad token")

// Parse reads a Token in Header's form. "" is the zero Token. At most 16
// clusters and 1024 bytes are accepted.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, nil
	}
	if len(s) > maxLen {
		return Token{}, fmt.Errorf("%w: %d bytes", ErrBadToken, len(s))
	}
	var t Token
	n := 0
	for item := range strings.SplitSeq(s, ",") {
		if n++; n > maxParts {
			return Token{}, fmt.Errorf("%w: more than %d clusters", ErrBadToken, maxParts)
		}
		c, l, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			return Token{}, fmt.Errorf("%w: %q has no cluster", ErrBadToken, item)
		}
		cluster, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			return Token{}, fmt.Errorf("%w: cluster %q", ErrBadToken, c)
		}
		lsn, err := ParseLSN(l)
		if err != nil {
			return Token{}, fmt.Errorf("%w: %w", ErrBadToken, err)
		}
		t = t.Merge(NewToken(cluster, lsn))
	}
	return t, nil
}

// holder is the mutable cell a context carries.
type holder struct {
	mu sync.Mutex
	t  Token
}

type ctxKey struct{}

// WithToken returns a context carrying t merged with the token ctx already
// carries, in a holder of its own: Observe on the returned context (or on
// one derived from it) adds to that holder and is seen by TokenFrom on all
// of them, but not by ctx.
func WithToken(ctx context.Context, t Token) context.Context {
	return context.WithValue(ctx, ctxKey{}, &holder{t: TokenFrom(ctx).Merge(t)})
}

// TokenFrom returns the token ctx carries now; the zero Token if none.
func TokenFrom(ctx context.Context) Token {
	h, _ := ctx.Value(ctxKey{}).(*holder)
	if h == nil {
		return Token{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.t
}

// Tracking reports whether ctx has a holder, that is whether Observe on it
// is kept. dbrouter takes a write's LSN only when someone will keep it.
func Tracking(ctx context.Context) bool {
	_, ok := ctx.Value(ctxKey{}).(*holder)
	return ok
}

// Observe merges t into the holder of ctx (see WithToken) and reports
// whether ctx has one; without one, t is dropped.
func Observe(ctx context.Context, t Token) bool {
	h, _ := ctx.Value(ctxKey{}).(*holder)
	if h == nil {
		return false
	}
	if t.IsZero() {
		return true
	}
	h.mu.Lock()
	if !h.t.Covers(t) {
		h.t = h.t.Merge(t)
	}
	h.mu.Unlock()
	return true
}
