// Package testtool holds the rule for tests that need a tool beyond Go
// (Node, Chromium, PostgreSQL): without the tool such a test skips with a
// SKIP line, except under CI=true, where .ci/run has installed everything and
// a skip would hide a failure. It also finds the PostgreSQL server that the
// tests of `crm engine` store into.
package testtool

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"
)

// Missing skips the test with a SKIP line saying what is missing and how to
// get it, or fails it under CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a missing tool fails the test instead of skipping it)", msg)
	}
	t.Skipf("SKIP: %s", msg)
}

// PostgreSQL returns the URL of the PostgreSQL server to test against:
// CRM_TEST_POSTGRESQL_URL, by default the local one that .ci/run starts. When
// none answers, the test is skipped (see Missing).
func PostgreSQL(t testing.TB) string {
	t.Helper()
	pgURL := os.Getenv("CRM_TEST_POSTGRESQL_URL")
	if pgURL == "" {
		pgURL = "postgres://postgres:postgres@127.0.0.1:5432/postgres"
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatalf("CRM_TEST_POSTGRESQL_URL: %v", err)
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		Missing(t, "PostgreSQL at %s is not reachable (%v); start it (see .ci/run) to run this test", u.Host, err)
	}
	c.Close()
	return pgURL
}
