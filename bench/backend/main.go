// Command backend is the benchmark's upstream: it answers every request with
// the 13 bytes "Hello, World!" on $PORT (or the first argument), as the
// peers' figures in bench/README.md assume.
package main

import (
	"net/http"
	"os"
)

var body = []byte("Hello, World!")

func main() {
	port := os.Getenv("PORT")
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	http.ListenAndServe("127.0.0.1:"+port, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
}
