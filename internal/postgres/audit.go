package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// AddAudit appends an entry to the audit trail.
func (s *Store) AddAudit(ctx context.Context, e *kycd.AuditEntry) error {
	return addAudit(ctx, s, s.pool, e)
}

// addAudit appends e through q: the pool, or a transaction.
func addAudit(ctx context.Context, s *Store, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, e *kycd.AuditEntry) error {
	err := q.QueryRow(ctx, `INSERT INTO audit (at, actor, action, target, remote, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		e.At, e.Actor, e.Action, e.Target, e.Remote, e.Outcome, e.Detail).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("postgres: add audit entry: %w", translate(s, err))
	}
	return nil
}

// Audit reads the audit entries q selects, newest first.
func (s *Store) Audit(ctx context.Context, q kycd.AuditQuery) ([]*kycd.AuditEntry, error) {
	query := `SELECT id, at, actor, action, target, remote, outcome, detail FROM audit WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if q.Actor != "" {
		query += ` AND actor = ` + arg(q.Actor)
	}
	if q.Action != "" {
		query += ` AND action = ` + arg(q.Action)
	}
	switch {
	case q.TargetPrefix:
		query += ` AND left(target, ` + arg(len(q.Target)) + `) = ` + arg(q.Target)
	case q.Target != "":
		query += ` AND target = ` + arg(q.Target)
	}
	if q.BeforeID > 0 {
		query += ` AND id < ` + arg(q.BeforeID)
	}
	query += ` ORDER BY id DESC LIMIT ` + arg(q.Limit)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.AuditEntry, error) {
		var e kycd.AuditEntry
		err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Remote, &e.Outcome, &e.Detail)
		e.At = e.At.UTC()
		return &e, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", translate(s, err))
	}
	return out, nil
}

// PurgeAudit drops audit entries older than before.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit WHERE at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge audit: %w", translate(s, err))
	}
	return tag.RowsAffected(), nil
}
