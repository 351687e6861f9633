package sqlite_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// Every goroutine the package starts has an owner that stops it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reads is the application layer over s, as the API and the CLI read s.
func reads(s kycd.Store) *app.Service { return &app.Service{Store: s} }

// statsSince is the stats of a window that began at since.
func statsSince(s kycd.Store, since time.Time, limit int) (*kycd.Stats, error) {
	a := &app.Service{Store: s, Now: func() time.Time { return since.Add(time.Hour) }}
	return a.Stats(context.Background(), time.Hour, limit)
}
