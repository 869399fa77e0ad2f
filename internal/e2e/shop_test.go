package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/herdhq/herd/internal/testenv"
)

// TestShop runs the repository's own herd.yaml, the seed's four services,
// on free ports: the main job herd does for a newcomer. The same story runs
// on the default SQLite files and on a real PostgreSQL.
func TestShop(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testShop(t, "SHOP_DATA="+t.TempDir())
	})
	t.Run("postgres", func(t *testing.T) {
		testShop(t, "DATABASE_URL="+freshDatabase(t, testenv.Postgres(t)))
	})
}

func testShop(t *testing.T, storage string) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	h := startShop(t, repo, storage)
	api := "http://" + h.public

	// The seeded catalogue answers at once.
	var products []struct{ ID string }
	if code := h.getJSON(api+"/products", &products); code != 200 || len(products) < 4 {
		t.Fatalf("GET /products = %d %+v; want the seeded products", code, products)
	}

	// A user and an order, through the gateway.
	email := "e2e-" + randomHex(t) + "@example.com"
	var user struct{ ID string }
	if code, body := sendJSON(t, "POST", api+"/users", fmt.Sprintf(`{"name": "E2E", "email": %q}`, email), &user); code != 201 {
		t.Fatalf("POST /users = %d %s", code, body)
	}
	if code, body := sendJSON(t, "POST", api+"/users", fmt.Sprintf(`{"name": "Again", "email": %q}`, email), nil); code != 409 || !strings.Contains(body, `"field":"email"`) {
		t.Errorf("a duplicate email = %d %s; want 409 naming the field", code, body)
	}
	order := placeOrder(t, api, user.ID)
	var got struct {
		ID, Status string
		TotalCents int `json:"total_cents"`
	}
	if code := h.getJSON(api+"/orders/"+order, &got); code != 200 || got.Status != "paid" || got.TotalCents != 2*4999 {
		t.Fatalf("GET /orders/%s = %d %+v; want a paid order of 9998 cents", order, code, got)
	}

	// kill -9 of one orders instance while clients read orders: none fails.
	reads := startGETs(api + "/orders/" + order)
	time.Sleep(300 * time.Millisecond)
	victim := h.status()["orders"][0]
	syscall.Kill(victim.Pid, syscall.SIGKILL)
	waitFor(t, 15*time.Second, "a replacement for the killed orders instance", func() bool {
		in := h.status()["orders"][0]
		return in.Pid != victim.Pid && in.State == "ready"
	})
	time.Sleep(300 * time.Millisecond)
	reads.finish(t)

	// With payments stopped, an order is refused whole and /health says why.
	if out, err := h.cli("stop", "payments"); err != nil {
		t.Fatalf("herd stop payments: %v\n%s", err, out)
	}
	code, body := sendJSON(t, "POST", api+"/orders", orderBody(user.ID), nil)
	if code != 503 || !strings.Contains(body, "payments") || !strings.Contains(body, `"error":"Service Unavailable"`) {
		t.Errorf("POST /orders with payments stopped = %d %s; want a 503 JSON naming payments", code, body)
	}
	var mine []struct{ ID string }
	if code := h.getJSON(api+"/orders?user_id="+user.ID, &mine); code != 200 || len(mine) != 1 {
		t.Errorf("the user's orders after the refused one: %d %+v; want only the first (nothing half-written)", code, mine)
	}
	code, health := get(t, "http://"+h.admin+"/health")
	if code != 503 || !strings.Contains(string(health), `"failing": [`) || !strings.Contains(string(health), `"payments"`) {
		t.Errorf("/health with payments stopped = %d %s; want 503 naming payments", code, health)
	}
	if out, err := h.cli("start", "payments"); err != nil {
		t.Fatalf("herd start payments: %v\n%s", err, out)
	}
	h.waitHealthy(30 * time.Second)
	// The orders instances' breakers for payments opened meanwhile; they
	// let a call through again within seconds (half-open), then orders succeed.
	waitFor(t, 15*time.Second, "orders to succeed with payments back", func() bool {
		code, _ := sendJSON(t, "POST", api+"/orders", orderBody(user.ID), nil)
		return code == 201
	})

	// Data survives a restart of herd.
	h.cmd.Process.Signal(syscall.SIGTERM)
	if code := h.waitExit(30 * time.Second); code != 0 {
		t.Fatalf("herd exited %d on SIGTERM", code)
	}
	h = startShop(t, repo, storage)
	var again struct{ Email string }
	if code := h.getJSON("http://"+h.public+"/users/"+user.ID, &again); code != 200 || again.Email != email {
		t.Errorf("the user after a restart of herd = %d %+v; want it kept", code, again)
	}
	if code := h.getJSON("http://"+h.public+"/orders?user_id="+user.ID, &mine); code != 200 || len(mine) != 2 {
		t.Errorf("the user's orders after a restart = %d %+v; want 2", code, mine)
	}
}

// startShop runs `herd up` on the repository's herd.yaml with free ports,
// its control socket in a temporary folder, and storage (an environment
// variable) choosing the database, and waits until /health is 200. The
// first run builds bin/shop, so the wait is long.
func startShop(t *testing.T, repo, storage string) *herd {
	t.Helper()
	h := &herd{t: t, dir: repo, public: freeAddr(t), admin: freeAddr(t), socket: filepath.Join(t.TempDir(), "herd.sock")}
	cmd := exec.Command(herdBin, "up", "-f", filepath.Join(repo, "herd.yaml"), "--listen", h.public, "--admin", h.admin, "--socket", h.socket)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), storage)
	h.start(cmd)
	h.waitHealthy(3 * time.Minute)
	h.waitAllReady()
	if !strings.Contains(h.out.String(), "herd is serving 4 apps (8 instances) on http://"+h.public) {
		waitFor(t, 5*time.Second, "the banner", func() bool { return strings.Contains(h.out.String(), "curl "+h.public+"/products") })
	}
	return h
}

func orderBody(userID string) string {
	return fmt.Sprintf(`{"user_id": %q, "items": [{"product_id": "prd_keyboard", "quantity": 2}]}`, userID)
}

func placeOrder(t *testing.T, api, userID string) string {
	t.Helper()
	var order struct{ ID, Status string }
	if code, body := sendJSON(t, "POST", api+"/orders", orderBody(userID), &order); code != 201 || order.Status != "paid" {
		t.Fatalf("POST /orders = %d %s; want 201 paid", code, body)
	}
	return order.ID
}

// sendJSON sends body and decodes a 2xx answer into out (if not nil).
func sendJSON(t *testing.T, method, url, body string, out any) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	if out != nil && res.StatusCode/100 == 2 {
		if err := json.Unmarshal(b.Bytes(), out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, url, b.String(), err)
		}
	}
	return res.StatusCode, b.String()
}

// freshDatabase creates an empty database on the PostgreSQL at base and
// returns its URL; it is dropped when the test ends.
func freshDatabase(t *testing.T, base string) string {
	t.Helper()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	name := "herd_e2e_" + randomHex(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating a database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
