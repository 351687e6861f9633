package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// atVersion opens a store on a database of its own migrated up to version,
// and a plain connection to that database, to write rows as that schema
// had them before the migration under test runs.
func atVersion(t *testing.T, version int64) (*postgres.Store, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	u := postgrestest.URL(t)
	s, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.MigrateUpTo(ctx, version); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return s, conn
}
