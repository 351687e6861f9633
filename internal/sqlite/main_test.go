package sqlite_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// Every goroutine the package starts has an owner that stops it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reads is the application layer over s, as the API and the CLI read s.
func reads(s kycd.Store) *app.Service { return &app.Service{Store: s} }
