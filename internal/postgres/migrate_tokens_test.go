package postgres_test

import (
	"context"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// Migration 00006: the one admin token of earlier versions, kept as a
// setting, becomes the admin token named admin, and the setting goes.
func TestMigrateAdminTokenToTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := postgres.Open(ctx, postgrestest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.MigrateUpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	hash := kycd.TokenHash("the old admin token")
	if _, _, err := s.InitSetting(ctx, "admin_token", hash); err != nil {
		t.Fatal(err)
	}
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
	if err := s.MigrateDownTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Setting(ctx, "admin_token"); err != nil || v != hash {
		t.Errorf("after migrating down, admin_token = %q, %v; want the hash back", v, err)
	}
}
