package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sqlite"
)

// The write probe writes the log's file and leaves what it holds as it was.
func TestProbeWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kycd.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path+sqlite.LogSuffix)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `PRAGMA user_version = 7`); err != nil {
		t.Fatal(err)
	}
	var before, after int64
	if err := raw.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatalf("ProbeWrite on a writable store: %v", err)
	}
	// data_version changes when another connection committed a write.
	if err := raw.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Error("ProbeWrite committed no write to the log's file")
	}
	var v int64
	if err := raw.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil || v != 7 {
		t.Errorf("user_version after the probe = %d (%v), want 7 as it was", v, err)
	}
	s.Close()
	if err := s.ProbeWrite(ctx); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Fatalf("ProbeWrite on a closed store = %v, want EUNAVAILABLE", err)
	}
}
