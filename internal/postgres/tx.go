package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// tx is a kycd.Tx on one pooled connection, at PostgreSQL's default READ
// COMMITTED isolation; operations that must not race another replica lock
// the rows they read (FOR UPDATE).
type tx struct {
	s  *Store
	tx pgx.Tx
}

var _ kycd.Tx = (*tx)(nil)

// Begin starts a transaction.
func (s *Store) Begin(ctx context.Context) (kycd.Tx, error) {
	t, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", translate(s, err))
	}
	return &tx{s: s, tx: t}, nil
}

// Commit commits the transaction.
func (t *tx) Commit(ctx context.Context) error {
	if err := t.tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", translate(t.s, err))
	}
	return nil
}

// Rollback rolls the transaction back; after Commit it does nothing.
func (t *tx) Rollback(ctx context.Context) error {
	if err := t.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("postgres: rollback: %w", translate(t.s, err))
	}
	return nil
}

// AddAudit appends an entry to the audit trail in the transaction.
func (t *tx) AddAudit(ctx context.Context, e *kycd.AuditEntry) error {
	return addAudit(ctx, t.s, t.tx, e)
}
