package server_test

import (
	"os"
	"testing"

	"github.com/kycd/kycd/internal/testenv"
)

// The dashboard's tests share one chromium, stopped once they are done.
func TestMain(m *testing.M) {
	testenv.Report(os.Stdout, "internal/server", testenv.Chromium)
	code := m.Run()
	stopBrowser()
	os.Exit(code)
}
