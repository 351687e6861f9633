package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) kycd.Store { return sqlitetest.Open(t) }, func(t *testing.T) (kycd.Store, kycd.Store) {
		path := filepath.Join(t.TempDir(), "kycd.db")
		return sqlitetest.OpenPath(t, path), sqlitetest.OpenPath(t, path)
	})
}

// Two processes starting at once on a new file both migrate; both succeed.
func TestConcurrentMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kycd.db")
	storetest.MigrateConcurrently(t, 4, func() (storetest.Migrator, error) { return sqlite.Open(t.Context(), path) })
}
