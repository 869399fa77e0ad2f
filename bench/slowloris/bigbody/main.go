// Command bigbody is the slow-client bench's second upstream: it answers
// every request with a body of -size bytes (1 MiB by default) and a
// Content-Length, on $PORT (or the first argument), so that a client that
// reads it a byte a second keeps a proxy busy for as long as the proxy lets
// it. bench/backend's 13-byte answer cannot do that.
package main

import (
	"bytes"
	"flag"
	"log"
	"net/http"
	"os"
	"strconv"
)

func main() {
	size := flag.Int("size", 1<<20, "bytes in every answer's body")
	flag.Parse()
	port := os.Getenv("PORT")
	if flag.NArg() > 0 {
		port = flag.Arg(0)
	}
	body := bytes.Repeat([]byte("x"), *size)
	length := strconv.Itoa(len(body))
	err := http.ListenAndServe("127.0.0.1:"+port, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", length)
		_, _ = w.Write(body)
	}))
	log.Fatalf("bigbody: serving on port %q: %v", port, err)
}
