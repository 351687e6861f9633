// Package sqlitetest opens migrated SQLite stores for other packages' tests.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kycd/kycd/internal/sqlite"
)

// Open returns a migrated store on a new file (and its log file) in t's
// temporary directory, closed when the test ends.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	return OpenPath(t, filepath.Join(t.TempDir(), "kycd.db"))
}

// OpenPath is Open on a given file, for tests that open one database more
// than once (as several processes would).
func OpenPath(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
