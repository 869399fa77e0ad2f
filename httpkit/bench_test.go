package httpkit

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkStack measures what New's stack costs a handler, against the
// same handler bare, for a small JSON answer (not compressed: under 1 KB)
// and an 8 KB one (gzip level 6). The access log goes to a JSON handler
// writing to io.Discard, so its formatting cost is counted. Run with
//
//	go test -run '^$' -bench Stack -benchmem -count 6 ./httpkit
//
// and see README.md for figures.
func BenchmarkStack(b *testing.B) {
	mw, err := New(Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	small := `{"id":7,"name":"lamp","price_cents":1999,"stock":12}`
	big := "[" + strings.Repeat(`{"id":7,"name":"lamp","price_cents":1999,"stock":12},`, 150) + "{}]"
	for _, size := range []struct {
		name string
		body string
	}{{"small", small}, {"8KB", big}} {
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, size.body)
		})
		for _, stack := range []struct {
			name string
			h    http.Handler
		}{{"bare", handler}, {"httpkit", mw(handler)}} {
			b.Run(size.name+"/"+stack.name, func(b *testing.B) {
				req := httptest.NewRequest("GET", "/products/7", nil)
				req.Header.Set("Accept-Encoding", "gzip")
				b.ReportAllocs()
				for b.Loop() {
					rec := discardRecorder{h: http.Header{}}
					stack.h.ServeHTTP(&rec, req)
				}
			})
		}
	}
}

// discardRecorder is a ResponseWriter that keeps nothing, so the benchmark
// measures the middleware, not a recorder's buffer.
type discardRecorder struct {
	h      http.Header
	status int
}

func (d *discardRecorder) Header() http.Header         { return d.h }
func (d *discardRecorder) WriteHeader(code int)        { d.status = code }
func (d *discardRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardRecorder) Flush()                      {}

// BenchmarkServer is BenchmarkStack over a real loopback connection
// (keep-alive, one client), where the stack's cost is seen beside what
// net/http and the network cost anyway.
func BenchmarkServer(b *testing.B) {
	mw, err := New(Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	body := `{"id":7,"name":"lamp","price_cents":1999,"stock":12}`
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	})
	for _, stack := range []struct {
		name string
		h    http.Handler
	}{{"bare", handler}, {"httpkit", mw(handler)}} {
		b.Run("small/"+stack.name, func(b *testing.B) {
			srv := httptest.NewServer(stack.h)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			for b.Loop() {
				res, err := client.Get(srv.URL + "/products/7")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
}
