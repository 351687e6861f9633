package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// SaveReconciliation records a run, replacing the record of its id.
func (s *Store) SaveReconciliation(ctx context.Context, r *kycd.Reconciliation) error {
	repaired, err := json.Marshal(append([]string{}, r.Repaired...))
	if err != nil {
		return err
	}
	errs, err := json.Marshal(append([]string{}, r.Errors...))
	if err != nil {
		return err
	}
	var finished *time.Time
	if !r.FinishedAt.IsZero() {
		finished = &r.FinishedAt
	}
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO reconciliations (id, started_at, finished_at, state, users, checked, drift, repaired, errors, cursor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, state = excluded.state, users = excluded.users,
			checked = excluded.checked, drift = excluded.drift, repaired = excluded.repaired, errors = excluded.errors,
			cursor = excluded.cursor`,
		r.ID, r.StartedAt, finished, r.State, r.Users, r.Checked, r.Drift, string(repaired), string(errs), r.Cursor,
	); err != nil {
		return fmt.Errorf("postgres: save reconciliation: %w", translate(s, err))
	}
	return nil
}

// Reconciliations returns the last limit runs, newest first.
func (s *Store) Reconciliations(ctx context.Context, limit int) ([]*kycd.Reconciliation, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, started_at, finished_at, state, users, checked, drift, repaired::text, errors::text, cursor
		FROM reconciliations ORDER BY started_at DESC, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: reconciliations: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.Reconciliation, error) {
		var r kycd.Reconciliation
		var finished *time.Time
		var repaired, errs string
		if err := row.Scan(&r.ID, &r.StartedAt, &finished, &r.State, &r.Users, &r.Checked, &r.Drift, &repaired, &errs, &r.Cursor); err != nil {
			return nil, err
		}
		r.StartedAt = r.StartedAt.UTC()
		if finished != nil {
			r.FinishedAt = finished.UTC()
		}
		if err := json.Unmarshal([]byte(repaired), &r.Repaired); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(errs), &r.Errors); err != nil {
			return nil, err
		}
		return &r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: reconciliations: %w", translate(s, err))
	}
	if out == nil {
		out = []*kycd.Reconciliation{}
	}
	return out, nil
}
