package httpkit

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name     string
		opts     RequestIDOptions
		incoming string
		keep     bool
	}{
		{name: "none: made", incoming: ""},
		{name: "uuid kept", incoming: "0b6c3d1e-8f7a-4c2b-9d3e-1f2a3b4c5d6e", keep: true},
		{name: "herd's kept", incoming: "a1b2c3d4e5f60718", keep: true},
		{name: "base64 kept", incoming: "aGVyZA+/=", keep: true},
		{name: "128 bytes kept", incoming: strings.Repeat("a", 128), keep: true},
		{name: "129 bytes replaced", incoming: strings.Repeat("a", 129)},
		{name: "space replaced", incoming: "a b"},
		{name: "quote replaced", incoming: `a"b`},
		{name: "newline-ish replaced", incoming: "a\tb"},
		{name: "non-ASCII replaced", incoming: "é"},
		{name: "IgnoreIncoming", opts: RequestIDOptions{IgnoreIncoming: true}, incoming: "a1b2c3"},
		{name: "own header", opts: RequestIDOptions{Header: "x-correlation-id"}, incoming: "c-1", keep: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := tt.opts.Header
			if header == "" {
				header = "X-Request-Id"
			}
			var inCtx, inReq string
			h := RequestID(tt.opts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx, inReq = RequestIDFrom(r.Context()), r.Header.Get(header)
			}))
			srv := serve(t, h)
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if tt.incoming != "" {
				req.Header[http.CanonicalHeaderKey(header)] = []string{tt.incoming}
			}
			res := do(t, req)
			got := res.header.Get(header)
			if tt.keep && got != tt.incoming {
				t.Errorf("id %q; want the incoming %q kept", got, tt.incoming)
			}
			if !tt.keep && !generated.MatchString(got) {
				t.Errorf("id %q; want 32 new hex digits", got)
			}
			if inCtx != got || inReq != got {
				t.Errorf("context has %q, request header %q, response %q; want one id", inCtx, inReq, got)
			}
		})
	}
	if a, b := newRequestID(), newRequestID(); a == b {
		t.Errorf("two ids alike: %s", a)
	}
}
