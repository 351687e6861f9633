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

// Audit lists the audit trail, newest first.
func (s *Store) Audit(ctx context.Context, f kycd.AuditFilter) (*kycd.AuditPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q := `SELECT id, at, actor, action, target, remote, outcome, detail FROM audit WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Actor != "" {
		q += ` AND actor = ` + arg(f.Actor)
	}
	if f.Action != "" {
		q += ` AND action = ` + arg(f.Action)
	}
	if f.Target != "" {
		if f.Target[len(f.Target)-1] == ':' {
			q += ` AND left(target, ` + arg(len(f.Target)) + `) = ` + arg(f.Target)
		} else {
			q += ` AND target = ` + arg(f.Target)
		}
	}
	if f.Cursor != "" {
		id, err := kycd.DecodeAuditCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		q += ` AND id < ` + arg(id)
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", translate(s, err))
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.AuditEntry, error) {
		var e kycd.AuditEntry
		if err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Remote, &e.Outcome, &e.Detail); err != nil {
			return nil, err
		}
		e.At = e.At.UTC()
		return &e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", translate(s, err))
	}
	page := &kycd.AuditPage{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextCursor = kycd.AuditCursor(items[limit-1])
	}
	if page.Items == nil {
		page.Items = []*kycd.AuditEntry{}
	}
	return page, nil
}

// PurgeAudit drops audit entries older than before.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit WHERE at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge audit: %w", translate(s, err))
	}
	return tag.RowsAffected(), nil
}
