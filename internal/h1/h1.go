// Package h1 parses HTTP/1.1 message heads in place, for herd's proxy fast
// path. It is deliberately narrow: it takes plain, unambiguous heads and
// answers ErrUnsupported for anything else (HTTP/1.0, absolute targets,
// percent-escaped paths, odd Host values, Upgrade...), which the caller
// hands to net/http, whose checks are thorough. What two readers could
// read apart (request smuggling) it refuses itself with a 400 *Error, where
// net/http would accept some of it: a request framed both by
// Content-Length and Transfer-Encoding (as NGINX refuses it), differing
// Content-Lengths, bare LF line ends, obsolete line folding, field names
// that are not tokens (a space before the colon), control bytes in values,
// no or several Hosts, and an absolute-form target naming another host.
//
// Parsed values are slices of the caller's buffer: valid until it changes.
package h1

import (
	"bytes"
	"errors"
	"strings"
	"unsafe"
)

// Field is one header field as sent, its value trimmed of spaces.
type Field struct{ Name, Value []byte }

// Request is a parsed request head.
type Request struct {
	Method, Target, Host []byte
	// Fields holds every header field in order, Host and hop-by-hop
	// fields included.
	Fields []Field
	// ContentLength is the body's length; 0 when there is none.
	ContentLength int64
	// Close is set by Connection: close.
	Close bool
	// HeadLen is the length of the head, the blank line included.
	HeadLen int
}

// Response is a parsed response head.
type Response struct {
	Status int
	Reason []byte
	Fields []Field
	// ContentLength is the body's length, -1 when the head does not say
	// (chunked, or delimited by the connection's close).
	ContentLength int64
	Chunked       bool
	// Close: the server closes the connection after this response
	// (Connection: close, or an HTTP/1.0 response without keep-alive).
	Close   bool
	HeadLen int
}

// ErrIncomplete: the buffer does not hold a whole head yet.
var ErrIncomplete = errors.New("h1: incomplete head")

// ErrUnsupported: the head is valid or invalid, but not for this package
// to judge; net/http should.
var ErrUnsupported = errors.New("h1: not a plain HTTP/1.1 head")

// Error is a head this package refuses, with the status to answer.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "h1: " + e.Reason }

// ErrAmbiguousLength is a request with both Content-Length and
// Transfer-Encoding, refused as NGINX does (RFC 9112 §6.1 allows it).
var ErrAmbiguousLength = &Error{Status: 400, Reason: "the request has both Content-Length and Transfer-Encoding; send one"}

// Heads refused as a request-smuggling risk: two readers could read them
// apart (RFC 9112 §2.2, §5.1, §5.2, §3.2.2), so herd answers 400 rather
// than hand them to net/http, which would accept some of them.
var (
	ErrBareLF     = &Error{Status: 400, Reason: "a line of the head ends in a bare LF; end every line with CRLF"}
	ErrObsFold    = &Error{Status: 400, Reason: "a header field is continued on the next line (obsolete line folding); send it on one line"}
	ErrFieldName  = &Error{Status: 400, Reason: "a header field name is not a token (no spaces, not even before the colon)"}
	ErrFieldValue = &Error{Status: 400, Reason: "a header field value holds a control character"}
	ErrHosts      = &Error{Status: 400, Reason: "the request needs exactly one Host"}
	ErrLength     = &Error{Status: 400, Reason: "Content-Length is not one decimal number"}
	ErrAuthority  = &Error{Status: 400, Reason: "the absolute-form target names another host than Host"}
)

// headEnd returns the length of the head at the start of b, or -1.
func headEnd(b []byte) int {
	i := bytes.Index(b, crlfcrlf)
	if i < 0 {
		return -1
	}
	return i + 4
}

var crlfcrlf = []byte("\r\n\r\n")

// ParseRequest parses the request head at the start of b into r, reusing
// r.Fields' storage.
func ParseRequest(b []byte, r *Request) error {
	n := headEnd(b)
	if n < 0 {
		if bytes.Contains(b, []byte("\n\n")) {
			return ErrBareLF
		}
		return ErrIncomplete
	}
	for i, c := range b[:n] {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return ErrBareLF
		}
	}
	*r = Request{Fields: r.Fields[:0], HeadLen: n}
	line, rest := cutLine(b[:n-2])
	// request-line = method SP request-target SP HTTP-version
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return ErrUnsupported
	}
	r.Method = line[:sp]
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 || string(line[sp+1:]) != "HTTP/1.1" {
		return ErrUnsupported
	}
	r.Target = line[:sp]
	authority, absolute := absoluteAuthority(r.Target)
	if !isToken(r.Method) || (!absolute && (r.Target[0] != '/' || !validTarget(r.Target))) {
		return ErrUnsupported
	}
	var hosts, lengths int
	var te bool
	for len(rest) > 0 {
		line, rest = cutLine(rest)
		if line[0] == ' ' || line[0] == '\t' {
			return ErrObsFold
		}
		f, err := parseField(line)
		if err != nil {
			return err
		}
		switch {
		case equalFold(f.Name, "host"):
			hosts++
			r.Host = f.Value
		case equalFold(f.Name, "content-length"):
			lengths++
			n, ok := parseLength(f.Value)
			if !ok || (lengths > 1 && n != r.ContentLength) {
				return ErrLength
			}
			r.ContentLength = n
		case equalFold(f.Name, "transfer-encoding"):
			te = true
		case equalFold(f.Name, "connection"):
			switch {
			case equalFold(f.Value, "close"):
				r.Close = true
			case equalFold(f.Value, "keep-alive"):
			default:
				// It names other hop-by-hop fields (Upgrade...).
				return ErrUnsupported
			}
		case equalFold(f.Name, "upgrade"), equalFold(f.Name, "expect"), equalFold(f.Name, "te"),
			equalFold(f.Name, "trailer"), equalFold(f.Name, "proxy-connection"):
			return ErrUnsupported
		}
		r.Fields = append(r.Fields, f)
	}
	if te && lengths > 0 {
		return ErrAmbiguousLength
	}
	if hosts != 1 {
		return ErrHosts
	}
	if absolute {
		if !bytes.EqualFold(authority, r.Host) {
			return ErrAuthority
		}
		return ErrUnsupported // the same host: net/http's to read
	}
	if te || lengths > 1 || !validHost(r.Host) {
		return ErrUnsupported
	}
	return nil
}

// absoluteAuthority returns the authority of an absolute-form target
// (http://host:port/path), and whether t is one.
func absoluteAuthority(t []byte) ([]byte, bool) {
	var rest []byte
	switch {
	case len(t) > 7 && equalFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && equalFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return nil, false
	}
	if i := bytes.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := bytes.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:] // userinfo is not part of the host
	}
	return rest, true
}

// ParseResponse parses the response head at the start of b into r. A head
// it cannot take is an *Error: the instance answered badly (502).
func ParseResponse(b []byte, r *Response) error {
	n := headEnd(b)
	if n < 0 {
		return ErrIncomplete
	}
	*r = Response{Fields: r.Fields[:0], HeadLen: n, ContentLength: -1}
	line, rest := cutLine(b[:n-2])
	// status-line = HTTP-version SP status-code SP [ reason-phrase ]
	var http10 bool
	switch {
	case len(line) >= 12 && string(line[:9]) == "HTTP/1.1 ":
	case len(line) >= 12 && string(line[:9]) == "HTTP/1.0 ":
		http10 = true
	default:
		return badResponse("the status line is not HTTP/1.x")
	}
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || !isDigit(code[1]) || !isDigit(code[2]) || (len(line) > 12 && line[12] != ' ') {
		return badResponse("the status code is not three digits")
	}
	r.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if len(line) > 13 {
		r.Reason = line[13:]
		// reason-phrase = *( HTAB / SP / VCHAR / obs-text ): a bare LF or
		// another control byte there would split the head differently
		// for the next reader.
		for _, c := range r.Reason {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return badResponse("the reason phrase holds a control byte")
			}
		}
	}
	keepAlive := !http10
	var lengths int
	for len(rest) > 0 {
		line, rest = cutLine(rest)
		f, err := parseField(line)
		if err != nil {
			return badResponse("a header field is malformed")
		}
		switch {
		case equalFold(f.Name, "content-length"):
			n, ok := parseLength(f.Value)
			if !ok || (lengths > 0 && n != r.ContentLength) {
				return badResponse("Content-Length is invalid")
			}
			lengths++
			r.ContentLength = n
		case equalFold(f.Name, "transfer-encoding"):
			if !equalFold(f.Value, "chunked") || r.Chunked {
				return badResponse("only Transfer-Encoding: chunked is supported")
			}
			r.Chunked = true
		case equalFold(f.Name, "connection"):
			if containsToken(f.Value, "close") {
				keepAlive = false
			} else if http10 && containsToken(f.Value, "keep-alive") {
				keepAlive = true
			}
		}
		r.Fields = append(r.Fields, f)
	}
	if r.Chunked {
		if http10 {
			return badResponse("HTTP/1.0 with Transfer-Encoding")
		}
		r.ContentLength = -1 // chunked wins (RFC 9112 §6.3)
		keepAlive = keepAlive && lengths == 0
	}
	r.Close = !keepAlive
	return nil
}

func badResponse(reason string) error { return &Error{Status: 502, Reason: reason} }

// cutLine splits b at its first CRLF.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+2:]
}

// parseField splits "Name: value": a token name right before the colon,
// and a value without control characters, trimmed of spaces and tabs.
func parseField(line []byte) (Field, error) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return Field{}, ErrFieldName
	}
	v := line[colon+1:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return Field{}, ErrFieldValue
		}
	}
	return Field{Name: line[:colon], Value: v}, nil
}

// parseLength accepts 1 to 15 decimal digits.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validTarget: an origin-form target of visible ASCII, without percent
// escapes (so the path needs no decoding) or a fragment.
func validTarget(t []byte) bool {
	for _, c := range t {
		if c <= ' ' || c >= 0x7f || c == '%' || c == '#' {
			return false
		}
	}
	return true
}

// validHost: a host name or IPv4 address with an optional port, or an IPv6
// literal in brackets; anything stranger goes to net/http.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// EqualFold reports whether b equals the lower-case ASCII s, ignoring case.
func EqualFold(b []byte, s string) bool { return equalFold(b, s) }

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// containsToken reports whether the comma-separated list v holds tok.
func containsToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if equalFold(bytes.TrimSpace(item), tok) {
			return true
		}
	}
	return false
}

// Get returns the value of the first field named name (in any case), or
// nil.
func Get(fields []Field, name string) []byte {
	for _, f := range fields {
		if len(f.Name) == len(name) && strings.EqualFold(unsafe.String(&f.Name[0], len(f.Name)), name) {
			return f.Value
		}
	}
	return nil
}

// Values returns the values of the fields named name joined by ", ", as
// one field (RFC 9110 §5.3).
func Values(fields []Field, name string) string {
	var joined []byte
	var n int
	for _, f := range fields {
		if len(f.Name) == len(name) && strings.EqualFold(unsafe.String(&f.Name[0], len(f.Name)), name) {
			if n > 0 {
				joined = append(joined, ", "...)
			}
			joined = append(joined, f.Value...)
			n++
		}
	}
	return string(joined)
}
