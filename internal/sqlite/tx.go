package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kycd/kycd"
)

// tx is a kycd.Tx on the main file's one write connection: while it is
// open, every other write of the main file waits for it.
type tx struct {
	s  *Store
	tx *sql.Tx
}

var _ kycd.Tx = (*tx)(nil)

// Begin starts a transaction on the main file.
func (s *Store) Begin(ctx context.Context) (kycd.Tx, error) {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", translate(s, err))
	}
	return &tx{s: s, tx: t}, nil
}

// Commit commits the transaction.
func (t *tx) Commit(context.Context) error {
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", translate(t.s, err))
	}
	return nil
}

// Rollback rolls the transaction back; after Commit it does nothing.
func (t *tx) Rollback(context.Context) error {
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("sqlite: rollback: %w", translate(t.s, err))
	}
	return nil
}

// AddAudit appends an entry to the audit trail in the transaction.
func (t *tx) AddAudit(ctx context.Context, e *kycd.AuditEntry) error {
	return addAudit(ctx, t.s, t.tx, e)
}
