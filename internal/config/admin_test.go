package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminAuth(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	short := filepath.Join(dir, "short")
	os.WriteFile(good, []byte("  0123456789abcdef0123\n"), 0o600)
	os.WriteFile(short, []byte("abc\n"), 0o600)
	t.Setenv("HERD_TEST_ADMIN_TOKEN", "fedcba9876543210fedc")
	t.Setenv("HERD_TEST_EMPTY", "")
	const app = "apps:\n  w:\n    command: sh\n    ready: none\n"
	tests := []struct {
		name      string
		yaml      string
		problem   string // "" for a config that loads
		wantToken string
	}{
		{"loopback admin, no token", "admin: 127.0.0.1:0\n" + app, "", ""},
		{"localhost admin, no token", "admin: localhost:0\n" + app, "", ""},
		{"every interface, no token", "admin: :9090\n" + app,
			"herd.yaml:1: admin: :9090 is reachable from the network, and its writes (POST and DELETE /services) would take no token", ""},
		{"a pod IP, no token", "admin: 10.1.2.3:9090\n" + app, "herd.yaml:1: admin: 10.1.2.3:9090 is reachable from the network", ""},
		{"every interface, insecure on purpose", "admin: 0.0.0.0:9090\nadmin_auth: {insecure: true}\n" + app, "", ""},
		{"every interface, token file", "admin: 0.0.0.0:9090\nadmin_auth: {token_file: " + good + "}\n" + app, "", "0123456789abcdef0123"},
		{"token file relative to the config", "admin: 0.0.0.0:9090\nadmin_auth: {token_file: token}\n" + app, "", "0123456789abcdef0123"},
		{"token env", "admin: 0.0.0.0:9090\nadmin_auth: {token_env: HERD_TEST_ADMIN_TOKEN}\n" + app, "", "fedcba9876543210fedc"},
		{"token on loopback too", "admin_auth: {token_env: HERD_TEST_ADMIN_TOKEN}\n" + app, "", "fedcba9876543210fedc"},
		{"missing token file", "admin: 0.0.0.0:9090\nadmin_auth: {token_file: nope}\n" + app,
			"herd.yaml:2: admin_auth.token_file: cannot read the token", ""},
		{"short token", "admin_auth: {token_file: " + short + "}\n" + app,
			"herd.yaml:1: admin_auth.token_file: " + short + " holds 3 characters; write a token of 16 or more", ""},
		{"empty env", "admin_auth: {token_env: HERD_TEST_EMPTY}\n" + app,
			"herd.yaml:1: admin_auth.token_env: $HERD_TEST_EMPTY holds 0 characters", ""},
		{"both", "admin_auth: {token_env: HERD_TEST_ADMIN_TOKEN, token_file: " + good + "}\n" + app,
			"herd.yaml:1: admin_auth: token_file and token_env both give the token; keep one", ""},
		{"insecure and a token", "admin_auth: {token_env: HERD_TEST_ADMIN_TOKEN, insecure: true}\n" + app,
			"herd.yaml:1: admin_auth.insecure: insecure: true with a token", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "herd.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if tc.problem == "" {
				if err != nil {
					t.Fatalf("Load: %v; want it to load", err)
				}
				if c.AdminAuth.Token != tc.wantToken {
					t.Errorf("token %q; want %q", c.AdminAuth.Token, tc.wantToken)
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded; want %q", tc.problem)
			}
			if got := strings.ReplaceAll(err.Error(), path, "herd.yaml"); !strings.HasPrefix(got, tc.problem) {
				t.Errorf("got  %s\nwant %s…", got, tc.problem)
			}
		})
	}
}

// --admin on the command line is checked after the file.
func TestCheckAdminAuthAfterOverride(t *testing.T) {
	c, err := Parse("herd.yaml", []byte("apps:\n  w:\n    command: sh\n    ready: none\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckAdminAuth(c); err != nil {
		t.Fatalf("loopback default: %v", err)
	}
	c.Admin = "0.0.0.0:9090"
	if err := CheckAdminAuth(c); err == nil || !strings.Contains(err.Error(), "reachable from the network") {
		t.Errorf("CheckAdminAuth with --admin 0.0.0.0:9090 = %v; want the refusal", err)
	}
}
