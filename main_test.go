package kycd_test

import (
	"os"
	"testing"

	"github.com/kycd/kycd/internal/testenv"
)

// The schema test compares the two stores' schemas on a PostgreSQL server.
func TestMain(m *testing.M) {
	testenv.Report(os.Stdout, "kycd", testenv.Postgres)
	os.Exit(m.Run())
}
