package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

func TestMigrateTwiceIsANoop(t *testing.T) {
	s := sqlitetest.Open(t)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "no", "such", "kycd.db"))
	if kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("Open in a missing directory = %v, want EINVALID naming the path", err)
	}
}

func TestFilesAreInWALMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kycd.db")
	sqlitetest.OpenPath(t, path)
	for _, p := range []string{path, path + sqlite.LogSuffix} {
		db, err := sql.Open("sqlite", "file:"+p)
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		if err := db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s: journal_mode = %q, %v; want wal (readers never wait for the writer)", p, mode, err)
		}
		db.Close()
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s := sqlitetest.Open(t)
	s.Close()
	ctx := context.Background()
	if err := s.AppendLog(ctx, []*kycd.LogEntry{{EventID: "x", BodyHash: "h"}}); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Errorf("AppendLog after Close = %v, want EUNAVAILABLE", err)
	}
	if _, err := s.BeginProjection(ctx); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Errorf("BeginProjection after Close = %v, want EUNAVAILABLE", err)
	}
	if _, err := s.LogHead(ctx); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Errorf("LogHead after Close = %v, want EUNAVAILABLE", err)
	}
}
