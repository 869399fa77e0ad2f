package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/testenv"
)

// TestMain lets a test run the shop as a real process: the test binary
// started with SHOP_TEST_RUN=NAME is `shop NAME`.
func TestMain(m *testing.M) {
	if name := os.Getenv("SHOP_TEST_RUN"); name != "" {
		os.Exit(run([]string{name}, os.Getenv, os.Stderr))
	}
	os.Exit(m.Run())
}

// startProcess runs `shop name` as a child process with env added to
// this one's, and returns its base URL once /health answers.
func startProcess(t *testing.T, name string, env ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "SHOP_TEST_RUN="+name, "PORT="+port)...)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("shop %s's log:\n%s", name, log.String())
		}
	})
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := client.Get(base + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("shop %s exited before serving (%v):\n%s", name, err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("shop %s: no /health within 30 s:\n%s", name, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two products processes, as herd runs them, sharing REDIS_URL and one
// database: after each PATCH on A, B serves the new price. The time from
// A's answer to B's first fresh read is measured over 50 rounds.
func TestProductPatchAcrossProcesses(t *testing.T) {
	r := testenv.StartRedis(t)
	env := []string{"REDIS_URL=" + r.URL(), "SHOP_DATA=" + t.TempDir()}
	a := startProcess(t, "products", env...)
	b := startProcess(t, "products", env...)
	const rounds = 50
	lags := make([]time.Duration, 0, rounds)
	firstFresh := 0
	for i := range rounds {
		price := int64(5000 + i)
		if p := priceOn(t, b, "prd_keyboard"); p != price-1 && i > 0 {
			t.Fatalf("round %d: B serves %d before the PATCH; want %d", i, p, price-1)
		}
		got := do(t, "PATCH", a+"/products/prd_keyboard", fmt.Sprintf(`{"price_cents":%d}`, price), nil)
		check{status: 200}.verify(t, got.status, got.body)
		answered := time.Now()
		if priceOn(t, b, "prd_keyboard") == price {
			firstFresh++
		}
		await(t, 2*time.Second, "B serving the patched price", func() bool {
			return priceOn(t, b, "prd_keyboard") == price
		})
		lags = append(lags, time.Since(answered))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	t.Logf("PATCH answered on A → a GET on B answered the new price: %d of %d rounds at B's first GET; time to a fresh answer (GETs included) median %v, p99 %v, max %v",
		firstFresh, rounds, lags[rounds/2], lags[rounds*99/100], lags[rounds-1])
}
