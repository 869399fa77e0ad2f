package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herdhq/herd/internal/balance"
)

// TestPathNormalization sends each target as is over a raw socket (a
// client would clean it) and checks which route's instance got it, with
// which target, or that herd refused it with a JSON 400; TestMain runs it
// on both paths.
func TestPathNormalization(t *testing.T) {
	instance := func(name string) (*balance.Pool, func()) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", name, r.RequestURI)
		}))
		pool := balance.NewPool(name, 1, time.Minute)
		pool.Add(&balance.Backend{Addr: strings.TrimPrefix(app.URL, "http://")})
		return pool, app.Close
	}
	public, closePublic := instance("public")
	defer closePublic()
	admin, closeAdmin := instance("admin")
	defer closeAdmin()
	root, closeRoot := instance("root")
	defer closeRoot()
	routes := []Route{
		{Path: "/public", App: "public", Pool: public, Policy: &balance.RoundRobin{}},
		{Path: "/admin", App: "admin", Pool: admin, Policy: &balance.RoundRobin{}},
		{Path: "/", App: "root", Pool: root, Policy: &balance.RoundRobin{}},
	}
	for _, keep := range []bool{false, true} {
		h, err := testNew(Options{Routes: routes, KeepSlashes: keep})
		if err != nil {
			t.Fatal(err)
		}
		addr := newFront(t, h, nil).Listener.Addr().String()
		tests := []struct {
			target, want string // want: "app target", or "400"
			keep         bool
		}{
			{"/public/x", "public /public/x", false},
			{"/public/../admin/x", "admin /admin/x", false},
			{"/public/%2e%2e/admin/x", "admin /admin/x", false},
			{"/public/.%2E/admin/x?a=../b", "admin /admin/x?a=../b", false},
			{"/public/./x", "public /public/x", false},
			{"/a/./b", "root /a/b", false},
			{"//admin", "admin /admin", false},
			{"//admin", "root //admin", true},
			{"/public//x", "public /public/x", false},
			{"/public//x", "public /public//x", true},
			{"/public/a/../../admin", "admin /admin", false},
			{"/%7Eu/%41", "root /~u/A", false},
			{"/public/a%2Fb", "public /public/a%2Fb", false},
			{"/..", "400", false},
			{"/public/../../admin", "400", false},
			{"/public/..%2Fadmin", "400", false},
			{"/public/..%5cadmin", "400", false},
			{`/public/..\admin`, "400", false},
		}
		for _, tc := range tests {
			if tc.keep != keep {
				continue
			}
			got := pathGet(t, addr, tc.target)
			if got != tc.want {
				t.Errorf("keep slashes %v: GET %s: %s; want %s", keep, tc.target, got, tc.want)
			}
		}
	}
}

// pathGet sends GET target over a new connection and returns the body, or
// "400" for a JSON 400 with a reason.
func pathGet(t *testing.T, addr, target string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", target, err)
	}
	if res.StatusCode == http.StatusBadRequest {
		var e struct{ Reason string }
		if json.Unmarshal(b, &e) != nil || !strings.Contains(e.Reason, "path") {
			return fmt.Sprintf("400 without a JSON reason: %s", b)
		}
		return "400"
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Sprintf("%d %s", res.StatusCode, b)
	}
	return string(b)
}
