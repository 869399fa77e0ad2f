// Package testenv gives tests the real servers scripts/test.sh starts. A
// test asks for one by name; without it the test skips with the reason,
// unless HERD_REQUIRE_SERVICES=1 (the README test command and CI), where a
// missing server fails the test instead of hiding it.
package testenv

import (
	"os"
	"testing"
)

// Redis returns the URL of a Redis for tests (HERD_TEST_REDIS_URL).
func Redis(t testing.TB) string { return need(t, "HERD_TEST_REDIS_URL", "Redis") }

// Postgres returns the URL of a PostgreSQL for tests (HERD_TEST_POSTGRES_URL).
func Postgres(t testing.TB) string { return need(t, "HERD_TEST_POSTGRES_URL", "PostgreSQL") }

func need(t testing.TB, env, what string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	msg := what + " is not available: " + env + " is unset; run the tests with `make test` (scripts/test.sh starts it), or `bash scripts/test.sh --services` and export what it prints"
	if os.Getenv("HERD_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
