// Package postgrestest gives other packages' tests a PostgreSQL schema of
// their own on the server named by KYCD_TEST_POSTGRES.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd/internal/postgres"
)

// database returns the URL of the PostgreSQL server named by
// KYCD_TEST_POSTGRES. Without it the test skips, unless
// KYCD_TEST_REQUIRE_SERVICES=1 (CI), where it fails.
func database(t testing.TB) string {
	t.Helper()
	u := os.Getenv("KYCD_TEST_POSTGRES")
	if u == "" {
		const how = "set KYCD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests"
		if os.Getenv("KYCD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("KYCD_TEST_POSTGRES not set but KYCD_TEST_REQUIRE_SERVICES=1: " + how)
		}
		t.Skip("KYCD_TEST_POSTGRES not set: " + how)
	}
	return u
}

// URL creates a schema of this test alone, dropped when it ends, and
// returns the database URL with that schema as its search_path. Without
// KYCD_TEST_POSTGRES the test skips, unless KYCD_TEST_REQUIRE_SERVICES=1
// (CI), where it fails.
func URL(t testing.TB) string {
	t.Helper()
	base := database(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "kycd_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("KYCD_TEST_POSTGRES: cannot connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated store on the PostgreSQL database at u, closed
// when the test ends.
func Open(t testing.TB, u string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
