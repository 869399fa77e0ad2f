// Command app is the tiny Go app worker's tests run under a real herd. It
// serves with worker.Serve and answers:
//
//	GET /          {"pid":…, "port":"…"}
//	GET /slow?ms=N the same after N ms, printing "slow start PID" first
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/herdhq/herd/worker"
)

func main() {
	port := os.Getenv("PORT")
	who := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"pid": os.Getpid(), "port": port})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { who(w) })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		fmt.Println("slow start", os.Getpid())
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			fmt.Println("slow cut", os.Getpid())
			return
		}
		who(w)
	})
	if err := worker.Serve(context.Background(), &http.Server{Handler: mux}); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
	fmt.Println("app drained", os.Getpid())
}
