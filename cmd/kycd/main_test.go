package main

import (
	"testing"

	"go.uber.org/goleak"
)

// kycd serve starts the HTTP server, the dispatcher and the retention loop;
// each must be gone once run returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
