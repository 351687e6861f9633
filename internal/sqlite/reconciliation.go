package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/kycd/kycd"
)

// SaveReconciliation records a run, replacing the record of its id.
func (s *Store) SaveReconciliation(ctx context.Context, r *kycd.Reconciliation) error {
	repaired, errs, err := reconcileLists(r)
	if err != nil {
		return err
	}
	var finished sql.NullString
	if !r.FinishedAt.IsZero() {
		finished = sql.NullString{String: formatTime(r.FinishedAt), Valid: true}
	}
	if _, err := s.w.ExecContext(ctx, `
		INSERT INTO reconciliations (id, started_at, finished_at, state, users, checked, drift, repaired, errors, cursor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, state = excluded.state, users = excluded.users,
			checked = excluded.checked, drift = excluded.drift, repaired = excluded.repaired, errors = excluded.errors,
			cursor = excluded.cursor`,
		r.ID, formatTime(r.StartedAt), finished, r.State, r.Users, r.Checked, r.Drift, repaired, errs, r.Cursor,
	); err != nil {
		return fmt.Errorf("sqlite: save reconciliation: %w", translate(s, err))
	}
	return nil
}

// Reconciliations returns the last limit runs, newest first.
func (s *Store) Reconciliations(ctx context.Context, limit int) ([]*kycd.Reconciliation, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT id, started_at, finished_at, state, users, checked, drift, repaired, errors, cursor
		FROM reconciliations ORDER BY started_at DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reconciliations: %w", translate(s, err))
	}
	defer rows.Close()
	out := []*kycd.Reconciliation{}
	for rows.Next() {
		var r kycd.Reconciliation
		var started string
		var finished sql.NullString
		var repaired, errs string
		if err := rows.Scan(&r.ID, &started, &finished, &r.State, &r.Users, &r.Checked, &r.Drift, &repaired, &errs, &r.Cursor); err != nil {
			return nil, fmt.Errorf("sqlite: reconciliations: %w", translate(s, err))
		}
		if r.StartedAt, err = parseTime(started); err != nil {
			return nil, fmt.Errorf("sqlite: reconciliations: %w", err)
		}
		if finished.Valid {
			if r.FinishedAt, err = parseTime(finished.String); err != nil {
				return nil, fmt.Errorf("sqlite: reconciliations: %w", err)
			}
		}
		if err := json.Unmarshal([]byte(repaired), &r.Repaired); err != nil {
			return nil, fmt.Errorf("sqlite: reconciliations: %w", err)
		}
		if err := json.Unmarshal([]byte(errs), &r.Errors); err != nil {
			return nil, fmt.Errorf("sqlite: reconciliations: %w", err)
		}
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reconciliations: %w", translate(s, err))
	}
	return out, nil
}

// reconcileLists are a run's lists as stored: JSON arrays, never null.
func reconcileLists(r *kycd.Reconciliation) (repaired, errs string, err error) {
	a, err := json.Marshal(append([]string{}, r.Repaired...))
	if err != nil {
		return "", "", err
	}
	b, err := json.Marshal(append([]string{}, r.Errors...))
	if err != nil {
		return "", "", err
	}
	return string(a), string(b), nil
}
