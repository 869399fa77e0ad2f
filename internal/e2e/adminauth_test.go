package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An admin listener the network reaches is refused without a token, and
// with one its writes need it while its reads stay open.
func TestAdminWritesNeedAToken(t *testing.T) {
	const app = "apps:\n  web:\n    command: TESTAPP\nroutes:\n  - path: /\n    to: web\n"
	path, _, _ := writeConfig(t, app)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	var stderr bytes.Buffer
	up := exec.Command(herdBin, "up", "-f", path, "--admin", "0.0.0.0:"+port)
	up.Stderr = &stderr
	err := up.Run()
	if code := up.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "0.0.0.0:"+port+" is reachable from the network") {
		t.Fatalf("herd up --admin 0.0.0.0:%s with no token: exit %d (%v)\n%s\nwant exit 2 and the refusal", port, code, err, stderr.String())
	}

	const token = "5f2b8e0c9d7a41e6b3c8f0a2d4e6b8c0"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHerd(t, "admin_auth: {token_file: "+tokenFile+"}\n"+app)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	send := func(method, url, auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	const reg = `{"name": "billing", "url": "http://127.0.0.1:9", "ttl": "30s"}`
	if code, body := send("POST", "http://"+h.admin+"/services", "", reg); code != 401 || !strings.Contains(body, "Bearer") {
		t.Errorf("POST /services without the token = %d %s; want 401", code, body)
	}
	if code, body := send("POST", "http://"+h.admin+"/services", "wrong-token-wrong-token", reg); code != 401 {
		t.Errorf("POST /services with a wrong token = %d %s; want 401", code, body)
	}
	if code, body := send("POST", "http://"+h.admin+"/services", token, reg); code != 200 {
		t.Errorf("POST /services with the token = %d %s; want 200", code, body)
	}
	if code, body := send("GET", "http://"+h.admin+"/services/billing", "", ""); code != 200 || !strings.Contains(body, "billing") {
		t.Errorf("GET /services/billing (open) = %d %s; want 200", code, body)
	}
	if code, body := send("GET", "http://"+h.admin+"/health", "", ""); code != 200 {
		t.Errorf("GET /health (open) = %d %s; want 200", code, body)
	}
	if strings.Contains(h.out.String(), token) {
		t.Errorf("herd's output shows the token:\n%s", h.out.String())
	}
}
