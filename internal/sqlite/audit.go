package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// AddAudit appends an entry to the audit trail.
func (s *Store) AddAudit(ctx context.Context, e *kycd.AuditEntry) error {
	return addAudit(ctx, s, s.w, e)
}

// addAudit appends e through q: the write connection, or a transaction on it.
func addAudit(ctx context.Context, s *Store, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, e *kycd.AuditEntry) error {
	err := q.QueryRowContext(ctx, `INSERT INTO audit (at, actor, action, target, remote, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		formatTime(e.At), e.Actor, e.Action, e.Target, e.Remote, e.Outcome, e.Detail).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("sqlite: add audit entry: %w", translate(s, err))
	}
	return nil
}

// Audit reads the audit entries q selects, newest first.
func (s *Store) Audit(ctx context.Context, q kycd.AuditQuery) ([]*kycd.AuditEntry, error) {
	query := `SELECT id, at, actor, action, target, remote, outcome, detail FROM audit WHERE 1 = 1`
	var args []any
	if q.Actor != "" {
		query += ` AND actor = ?`
		args = append(args, q.Actor)
	}
	if q.Action != "" {
		query += ` AND action = ?`
		args = append(args, q.Action)
	}
	switch {
	case q.TargetPrefix:
		query += ` AND substr(target, 1, ?) = ?`
		args = append(args, len(q.Target), q.Target)
	case q.Target != "":
		query += ` AND target = ?`
		args = append(args, q.Target)
	}
	if q.BeforeID > 0 {
		query += ` AND id < ?`
		args = append(args, q.BeforeID)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, q.Limit)
	var out []*kycd.AuditEntry
	err := queryRows(ctx, s.r, query, args, func(rows *sql.Rows) error {
		var e kycd.AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Remote, &e.Outcome, &e.Detail); err != nil {
			return err
		}
		var err error
		e.At, err = parseTime(at)
		out = append(out, &e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit: %w", translate(s, err))
	}
	return out, nil
}

// PurgeAudit drops audit entries older than before.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int64, error) {
	r, err := s.w.ExecContext(ctx, `DELETE FROM audit WHERE at < ?`, formatTime(before))
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge audit: %w", translate(s, err))
	}
	n, _ := r.RowsAffected()
	return n, nil
}
