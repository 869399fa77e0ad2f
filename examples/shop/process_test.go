package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
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

// The environment's mistakes stop the shop at start with exit 2 and the
// fix.
func TestEnvironmentMistakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"replicas without a primary", map[string]string{"DATABASE_REPLICA_URLS": "postgres://r/x"}, "set DATABASE_URL too"},
		{"one shard", map[string]string{"SHOP_ORDER_SHARDS": "postgres://a/x"}, "list two or more"},
		{"a shard that is not postgres", map[string]string{"SHOP_ORDER_SHARDS": "postgres://a/x, mysql://u:secret@b/y"}, `"mysql://u:xxxxx@b/y" is not a postgres:// URL`},
		{"secure cookies", map[string]string{"SHOP_SECURE_COOKIES": "yes"}, "use 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["PORT"] = "1"
			var stderr syncBuffer
			code := run([]string{"orders"}, func(k string) string { return tc.env[k] }, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// `shop orders` with SHOP_ORDER_SHARDS, as herd would run it, creates the
// map on its first start, opens it on the next, and serves.
func TestOrdersProcessOnShards(t *testing.T) {
	a, _ := testenv.PostgresDatabase(t)
	b, _ := testenv.PostgresDatabase(t)
	env := []string{"SHOP_ORDER_SHARDS=" + a + "," + b, "SHOP_DATA=" + t.TempDir(), "SHOP_GATEWAY_URL=http://127.0.0.1:1/api"}
	first := startProcess(t, "orders", env...)
	second := startProcess(t, "orders", env...)
	for _, srv := range []string{first, second} {
		got := do(t, "GET", srv+"/orders/admin/orders", "", nil)
		check{status: 200}.verify(t, got.status, got.body)
		got = do(t, "GET", srv+"/orders?user_id=usr_alice", "", nil)
		check{status: 200}.verify(t, got.status, got.body)
	}
	if n := countOn(t, a, `select count(*) from herd_shard_buckets`); n != 1024 {
		t.Errorf("the map has %d buckets; want 1024", n)
	}
	if n := countOn(t, b, `select count(*) from herd_shard_local where state = 'owned'`); n != 512 {
		t.Errorf("the second shard owns %d buckets; want 512", n)
	}
}
