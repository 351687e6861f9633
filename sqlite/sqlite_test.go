package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/sqlite"
	"github.com/kycd/kycd/storetest"
)

func open(t *testing.T) kycd.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "kycd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func TestMigrateTwiceIsANoop(t *testing.T) {
	s := open(t).(*sqlite.Store)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := sqlite.Open(filepath.Join(t.TempDir(), "no", "such", "kycd.db"))
	if kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("Open in a missing directory = %v, want EINVALID naming the path", err)
	}
}
