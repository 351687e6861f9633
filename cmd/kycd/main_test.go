package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/kycd/kycd/internal/testenv"
)

// kycd serve starts the HTTP server, the dispatcher and the retention loop;
// each must be gone once run returns.
func TestMain(m *testing.M) {
	testenv.Report(os.Stdout, "cmd/kycd", testenv.Postgres, testenv.LongRuns)
	goleak.VerifyTestMain(m)
}
