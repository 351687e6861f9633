package postgres_test

import (
	"context"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// The write probe succeeds where the database takes writes and fails where
// it does not (here: every transaction read-only, as on a standby).
func TestProbeWrite(t *testing.T) {
	ctx := context.Background()
	u := postgrestest.URL(t)
	s := postgrestest.Open(t, u)
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatalf("ProbeWrite on a writable database: %v", err)
	}
	ro, err := postgres.Open(ctx, u+"&default_transaction_read_only=on")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.ProbeWrite(ctx); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Fatalf("ProbeWrite on a read-only database = %v, want EUNAVAILABLE", err)
	}
	s.Close()
	if err := s.ProbeWrite(ctx); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Fatalf("ProbeWrite on a closed store = %v, want EUNAVAILABLE", err)
	}
}
