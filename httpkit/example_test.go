package httpkit_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/herdhq/herd/httpkit"
)

func ExampleNew() {
	mw, err := httpkit.New(httpkit.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// As the seed's helmet({contentSecurityPolicy: false}).
		Security: httpkit.SecurityOptions{Omit: []string{"Content-Security-Policy"}},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "["+strings.Repeat(`{"name":"lamp"},`, 200)+`{"name":"desk"}]`)
	})
	srv := httptest.NewServer(mw(mux))
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/products", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	fmt.Println(res.Status, res.Header.Get("Content-Encoding"), res.Header.Get("X-Frame-Options"))
	fmt.Println("weak etag:", strings.HasPrefix(res.Header.Get("ETag"), `W/"`))
	fmt.Println("csp:", res.Header.Get("Content-Security-Policy") != "")

	// The client has it already.
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	res, err = (&http.Transport{}).RoundTrip(req)
	if err != nil {
		panic(err)
	}
	res.Body.Close()
	fmt.Println(res.Status)
	// Output:
	// 200 OK gzip SAMEORIGIN
	// weak etag: true
	// csp: false
	// 304 Not Modified
}

func ExampleRequestIDFrom() {
	h := httpkit.RequestID(httpkit.RequestIDOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handling", httpkit.RequestIDFrom(r.Context()))
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Request-Id", "from-herd-1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output: handling from-herd-1
}

func ExampleBodyLimit() {
	h := httpkit.BodyLimit(httpkit.BodyLimitOptions{Limit: 10})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader("more than ten bytes")))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output: 413 {"error":"request body too large","limit":10,"reason":"the body is larger than the 10 bytes this server takes; send a smaller one"}
}
