package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kycd/kycd"
)

// Migration 00006: the one admin token of earlier versions, kept as a
// setting, becomes the admin token named admin, and the setting goes.
func TestMigrateAdminTokenToTokens(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "kycd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.migrate(ctx, s.lw, logMigrations, "logmigrations"); err != nil {
		t.Fatal(err)
	}
	if _, err := mainProvider(t, s).UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	hash := kycd.TokenHash("the old admin token")
	execAll(t, s.w, `INSERT INTO settings (key, value) VALUES ('admin_token', '`+hash+`'), ('ralio_secret', 'kept')`)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := s.TokenByHash(ctx, hash)
	if err != nil || tok.Name != kycd.AdminTokenName || tok.Role != kycd.RoleAdmin || tok.CreatedAt.IsZero() {
		t.Fatalf("the old admin token = %+v, %v; want the admin token named admin", tok, err)
	}
	if _, err := s.Setting(ctx, "admin_token"); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Errorf("the admin_token setting is still there: %v", err)
	}
	if v, err := s.Setting(ctx, "ralio_secret"); err != nil || v != "kept" {
		t.Errorf("another setting = %q, %v; want kept", v, err)
	}
	if _, err := mainProvider(t, s).DownTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Setting(ctx, "admin_token"); err != nil || v != hash {
		t.Errorf("after migrating down, admin_token = %q, %v; want the hash back", v, err)
	}
}
