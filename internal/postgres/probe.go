package postgres

import (
	"context"
	"fmt"

	"github.com/kycd/kycd"
)

// ProbeWrite commits a transaction that holds a transaction id, so that
// its commit is written and flushed to the WAL, and changes nothing: it
// fails when the database cannot take writes (read-only, a standby, its
// WAL cannot be written) and succeeds once it can again. Errors are
// EUNAVAILABLE.
func (s *Store) ProbeWrite(ctx context.Context) error {
	if s.closed.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return probeFailed(s, err)
	}
	defer tx.Rollback(ctx)
	var readOnly, xid string
	if err := tx.QueryRow(ctx, `SELECT current_setting('transaction_read_only'), pg_current_xact_id()::text`).Scan(&readOnly, &xid); err != nil {
		return probeFailed(s, err)
	}
	if readOnly == "on" {
		return kycd.Errorf(kycd.EUNAVAILABLE, "the event log cannot be written: the database is read-only")
	}
	if err := tx.Commit(ctx); err != nil {
		return probeFailed(s, err)
	}
	return nil
}

func probeFailed(s *Store, err error) error {
	return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "the event log cannot be written", Err: fmt.Errorf("postgres: write probe: %w", translate(s, err))}
}
