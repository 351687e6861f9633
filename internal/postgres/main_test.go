package postgres_test

import (
	"os"
	"testing"

	"github.com/kycd/kycd/internal/testenv"
)

// Every test of this package needs a PostgreSQL server.
func TestMain(m *testing.M) {
	testenv.Report(os.Stdout, "internal/postgres", testenv.Postgres)
	os.Exit(m.Run())
}
