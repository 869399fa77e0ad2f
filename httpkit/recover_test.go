package httpkit

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestRecover(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		want500   bool // a JSON 500 reaches the client
		wantAbort bool // the client's read fails instead
		wantLog   bool
	}{
		{name: "panic before answering: JSON 500", want500: true, wantLog: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				panic("nil map")
			}},
		{name: "panic with an error value", want500: true, wantLog: true,
			handler: func(w http.ResponseWriter, r *http.Request) { panic(io.ErrUnexpectedEOF) }},
		{name: "panic mid-answer: connection cut", wantAbort: true, wantLog: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				// Chunked: only a missing last chunk tells the client.
				io.WriteString(w, strings.Repeat("x", 5000))
				w.(http.Flusher).Flush()
				panic("halfway")
			}},
		{name: "http.ErrAbortHandler goes on unlogged", wantAbort: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "100000")
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}},
		{name: "no panic", handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			h := RequestID(RequestIDOptions{})(Recover(RecoverOptions{Logger: logger})(tt.handler))
			srv := serve(t, h)
			srv.Config.ErrorLog = nil
			res, err := noRetryClient().Get(srv.URL)
			if err != nil {
				if !tt.wantAbort {
					t.Fatal(err)
				}
			} else {
				body, rerr := io.ReadAll(res.Body)
				res.Body.Close()
				if tt.wantAbort && rerr == nil {
					t.Errorf("read %d bytes without error; want the connection cut", len(body))
				}
				if tt.want500 {
					r := result{status: res.StatusCode, header: res.Header, body: body}
					if res.StatusCode != 500 {
						t.Fatalf("status %d; want 500", res.StatusCode)
					}
					m := jsonBody(t, r)
					if m["error"] != "internal server error" || m["request_id"] != res.Header.Get("X-Request-Id") || m["request_id"] == "" {
						t.Errorf("500 body %s; want error and the request id %s", body, res.Header.Get("X-Request-Id"))
					}
				}
			}
			logged := strings.Contains(logs.String(), `"msg":"handler panicked"`)
			if logged != tt.wantLog {
				t.Errorf("panic logged %v; want %v:\n%s", logged, tt.wantLog, logs.String())
			}
			if tt.wantLog && (!strings.Contains(logs.String(), `"stack":"goroutine`) || !strings.Contains(logs.String(), `"request_id":"`)) {
				t.Errorf("panic log lacks stack or request_id:\n%s", logs.String())
			}
		})
	}
}
