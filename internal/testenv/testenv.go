// Package testenv says which of kycd's test suites run on this machine: the
// long ones only with KYCD_TEST_LONG=1, and those that need a service
// (PostgreSQL, NATS, Chromium) only where it is present. Without its
// service a suite skips, unless KYCD_TEST_REQUIRE_SERVICES=1 (CI), where it
// fails. Only tests import this package.
package testenv

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A Need is what some of a package's tests need to run.
type Need int

const (
	// Postgres is a PostgreSQL server named by KYCD_TEST_POSTGRES.
	Postgres Need = iota
	// NATS is a NATS server with JetStream named by KYCD_TEST_NATS.
	NATS
	// Chromium is a headless Chromium for the dashboard's browser tests.
	Chromium
	// LongRuns is KYCD_TEST_LONG=1, which the long fault scenarios and
	// the memory tests wait for.
	LongRuns
)

// LongEnabled reports whether KYCD_TEST_LONG=1 asks for the long tests.
func LongEnabled() bool { return os.Getenv("KYCD_TEST_LONG") == "1" }

// LongWhy is the skip message of a long test.
const LongWhy = "long test: set KYCD_TEST_LONG=1 to run it (.ci/run does)"

// Long skips t unless KYCD_TEST_LONG=1.
func Long(t testing.TB) {
	t.Helper()
	if !LongEnabled() {
		t.Skip(LongWhy)
	}
}

// NATSURL is the NATS server (with JetStream) that KYCD_TEST_NATS names.
// Without it t skips, unless KYCD_TEST_REQUIRE_SERVICES=1 (CI): then it fails.
func NATSURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("KYCD_TEST_NATS")
	if u == "" {
		const how = "run a nats-server with JetStream (nats-server -js) and set KYCD_TEST_NATS=nats://127.0.0.1:4222"
		if os.Getenv("KYCD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("KYCD_TEST_NATS not set but KYCD_TEST_REQUIRE_SERVICES=1: " + how)
		}
		t.Skip("KYCD_TEST_NATS not set: " + how)
	}
	return u
}

// ChromiumPath finds the browser of the dashboard's tests: KYCD_TEST_CHROMIUM,
// else chromium, chromium-browser or google-chrome on the PATH.
func ChromiumPath() (string, bool) {
	for _, name := range []string{os.Getenv("KYCD_TEST_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if path, err := exec.LookPath(name); err == nil {
			return path, true
		}
	}
	return "", false
}

// missing says why the tests that need n will skip, or "" when they run.
func missing(n Need) string {
	switch n {
	case Postgres:
		if os.Getenv("KYCD_TEST_POSTGRES") == "" {
			return "the PostgreSQL tests (KYCD_TEST_POSTGRES not set)"
		}
	case NATS:
		if os.Getenv("KYCD_TEST_NATS") == "" {
			return "the NATS tests (KYCD_TEST_NATS not set)"
		}
	case Chromium:
		if _, ok := ChromiumPath(); !ok {
			return "the browser tests (no chromium on the PATH, KYCD_TEST_CHROMIUM not set)"
		}
	case LongRuns:
		if !LongEnabled() {
			return "the long tests (KYCD_TEST_LONG=1 not set)"
		}
	}
	return ""
}

// Report writes one line naming the suites of package pkg that will skip
// on this machine and why (or fail: a missing service under
// KYCD_TEST_REQUIRE_SERVICES=1), or nothing when all of them run. A
// TestMain calls it before m.Run. go test shows a package's output only
// with -v, with -json, when the package fails, or when it runs in the
// package's directory (go test with no arguments); go test ./... keeps only
// the "ok" line of a passing package.
func Report(w io.Writer, pkg string, needs ...Need) {
	required := os.Getenv("KYCD_TEST_REQUIRE_SERVICES") == "1"
	var skipped, failing []string
	for _, n := range needs {
		why := missing(n)
		switch {
		case why == "":
		case required && n != LongRuns:
			failing = append(failing, why)
		default:
			skipped = append(skipped, why)
		}
	}
	var parts []string
	if len(skipped) > 0 {
		parts = append(parts, "skipping "+strings.Join(skipped, ", "))
	}
	if len(failing) > 0 {
		parts = append(parts, "failing "+strings.Join(failing, ", ")+" (KYCD_TEST_REQUIRE_SERVICES=1)")
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "%s: %s\n", pkg, strings.Join(parts, "; "))
	}
}
