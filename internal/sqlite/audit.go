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

// Audit lists the audit trail, newest first.
func (s *Store) Audit(ctx context.Context, f kycd.AuditFilter) (*kycd.AuditPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q := `SELECT id, at, actor, action, target, remote, outcome, detail FROM audit WHERE 1 = 1`
	var args []any
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if f.Target != "" {
		if f.Target[len(f.Target)-1] == ':' {
			q += ` AND substr(target, 1, ?) = ?`
			args = append(args, len(f.Target), f.Target)
		} else {
			q += ` AND target = ?`
			args = append(args, f.Target)
		}
	}
	if f.Cursor != "" {
		id, err := kycd.DecodeAuditCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		q += ` AND id < ?`
		args = append(args, id)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit+1)
	page := &kycd.AuditPage{Items: []*kycd.AuditEntry{}}
	err := queryRows(ctx, s.r, q, args, func(rows *sql.Rows) error {
		var e kycd.AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Remote, &e.Outcome, &e.Detail); err != nil {
			return err
		}
		if len(page.Items) == limit {
			page.NextCursor = kycd.AuditCursor(page.Items[limit-1])
			return nil
		}
		var err error
		e.At, err = parseTime(at)
		page.Items = append(page.Items, &e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit: %w", translate(s, err))
	}
	return page, nil
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
