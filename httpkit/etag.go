package httpkit

import (
	"bytes"
	"hash/crc64"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// ETagOptions configure ETag.
type ETagOptions struct {
	// Disabled leaves ETag out of New's stack.
	Disabled bool
	// MaxBuffer is the largest body given a tag, in bytes. A larger one is
	// sent as it comes, without an ETag, so a big download is neither held
	// in memory nor delayed. Default 1 MiB.
	MaxBuffer int
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// buffers hold bodies being tagged; a buffer that grew past keepBuffer is
// left to the garbage collector rather than kept for the next request.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const keepBuffer = 64 << 10

// WeakETag returns the weak entity tag ETag gives body: W/"<length in
// hex>-<CRC-64 in hex>". It depends on the bytes only, so every instance of
// an app gives the same body the same tag (a per-process seeded hash would
// not, and a client moved to another instance would miss every time).
func WeakETag(body []byte) string {
	b := make([]byte, 0, 40)
	b = append(b, `W/"`...)
	b = strconv.AppendUint(b, uint64(len(body)), 16)
	b = append(b, '-')
	b = strconv.AppendUint(b, crc64.Checksum(body, crcTable), 16)
	b = append(b, '"')
	return string(b)
}

// ETag returns middleware that gives a 200 answer to GET or HEAD a weak
// ETag (WeakETag) of its body, as Express's app.set("etag", "weak") does,
// and answers 304 Not Modified when the request's If-None-Match names it.
// To know the tag before the headers go, the body is held until the
// handler returns; a body over MaxBuffer, a Flush (streaming), a handler's
// own ETag, or another status send the answer on as it is, untagged. A
// request with Cache-Control: no-cache always gets the full answer.
func ETag(opts ETagOptions) Middleware {
	maxBuf := opts.MaxBuffer
	if maxBuf <= 0 {
		maxBuf = 1 << 20
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				next.ServeHTTP(w, r)
				return
			}
			ew := &etagWriter{passthrough: passthrough{w}, max: maxBuf}
			defer ew.release()
			next.ServeHTTP(ew, r)
			ew.finish(r)
		})
	}
}

// etagWriter holds a 200 body until finish, or passes everything on once
// it knows the answer will not be tagged.
type etagWriter struct {
	passthrough
	max    int
	status int           // what the handler said; 0 until it says something
	pass   bool          // headers went on; everything else follows them
	buf    *bytes.Buffer // the held body, nil until the first Write
}

func (w *etagWriter) WriteHeader(code int) {
	switch {
	case w.pass:
		w.ResponseWriter.WriteHeader(code) // net/http reports a superfluous call
	case code < 200:
		w.ResponseWriter.WriteHeader(code) // 1xx: informational, more follow
	case w.status != 0:
		// A second WriteHeader while holding: net/http would ignore it too.
	default:
		w.status = code
		if code != http.StatusOK || w.Header().Get("ETag") != "" {
			w.startPass()
		}
	}
}

func (w *etagWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.pass {
		return w.ResponseWriter.Write(b)
	}
	if w.buf == nil {
		w.buf = buffers.Get().(*bytes.Buffer)
	}
	if w.buf.Len()+len(b) > w.max {
		if err := w.startPass(); err != nil {
			return 0, err
		}
		return w.ResponseWriter.Write(b)
	}
	return w.buf.Write(b)
}

// Flush means the handler streams: the answer goes on untagged from here.
func (w *etagWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.pass {
		w.startPass()
	}
	flush(w.ResponseWriter)
}

// startPass sends the status and whatever is held, and passes the rest on.
func (w *etagWriter) startPass() error {
	w.pass = true
	w.ResponseWriter.WriteHeader(w.status)
	if w.buf != nil && w.buf.Len() > 0 {
		_, err := w.ResponseWriter.Write(w.buf.Bytes())
		w.buf.Reset()
		return err
	}
	return nil
}

// finish tags and sends a held answer, or a 304 in its place.
func (w *etagWriter) finish(r *http.Request) {
	if w.pass || w.status == 0 {
		return // sent already, or nothing to send: net/http answers 200 empty
	}
	var body []byte
	if w.buf != nil {
		body = w.buf.Bytes()
	}
	if r.Method == http.MethodHead && len(body) == 0 {
		// A HEAD handler that writes no body: its tag would not be GET's.
		w.startPass()
		return
	}
	h := w.Header()
	tag := WeakETag(body)
	h.Set("ETag", tag)
	if fresh(r, tag) {
		// What RFC 9110 §15.4.5 lets a 304 carry; as net/http's ServeContent.
		for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding"} {
			delete(h, k)
		}
		w.ResponseWriter.WriteHeader(http.StatusNotModified)
		return
	}
	if h.Get("Content-Length") == "" {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.ResponseWriter.WriteHeader(http.StatusOK)
	if len(body) > 0 {
		w.ResponseWriter.Write(body)
	}
}

func (w *etagWriter) release() {
	if w.buf != nil && w.buf.Cap() <= keepBuffer {
		w.buf.Reset()
		buffers.Put(w.buf)
	}
	w.buf = nil
}

// fresh reports whether the client's copy, named by If-None-Match, is tag
// (weak comparison, RFC 9110 §13.1.2), unless the client asked for a full
// answer with Cache-Control: no-cache.
func fresh(r *http.Request, tag string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	if cc := r.Header.Get("Cache-Control"); cc != "" && strings.Contains(strings.ToLower(cc), "no-cache") {
		return false
	}
	opaque := strings.TrimPrefix(tag, "W/")
	for _, v := range r.Header.Values("If-None-Match") {
		for c := range strings.SplitSeq(v, ",") {
			c = strings.TrimSpace(c)
			if c == "*" || strings.TrimPrefix(c, "W/") == opaque {
				return true
			}
		}
	}
	return false
}
