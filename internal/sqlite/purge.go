package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// purgeChunk is how many log bodies one purge transaction drops.
const purgeChunk = 500

// Purge drops raw bodies and personal data received before t; event ids
// stay for good, in the log and in the projection.
func (s *Store) Purge(ctx context.Context, before time.Time) (int64, error) {
	t := formatTime(before)
	n, err := s.purgeLog(ctx, t)
	if err != nil {
		return n, fmt.Errorf("sqlite: purge log: %w", translate(s, err))
	}
	r, err := s.w.ExecContext(ctx, `DELETE FROM quarantine WHERE received_at < ?`, t)
	if err != nil {
		return n, fmt.Errorf("sqlite: purge quarantine: %w", translate(s, err))
	}
	q, _ := r.RowsAffected()
	// An invitation's contact details and verification URL are personal
	// data: the notification keeps its ids and type, not them.
	r, err = s.w.ExecContext(ctx, `UPDATE notifications SET payload = json_remove(CAST(payload AS TEXT), '$.invitation')
		WHERE created_at < ? AND json_extract(CAST(payload AS TEXT), '$.invitation') IS NOT NULL`, t)
	if err != nil {
		return n + q, fmt.Errorf("sqlite: purge notifications: %w", translate(s, err))
	}
	i, _ := r.RowsAffected()
	if n+q+i > 0 {
		s.truncateWAL(ctx)
	}
	return n + q + i, nil
}

// purgeLog drops the bodies of log entries received before t. The log has
// no index on received_at (an append would pay for it), so the entries are
// found by a scan through the read pool, which takes no lock, and dropped a
// chunk at a time in short transactions, so that acknowledgements, which
// append to the log, never wait for more than one chunk.
func (s *Store) purgeLog(ctx context.Context, t string) (int64, error) {
	var n, after int64
	for {
		var seqs []any
		err := queryRows(ctx, s.lr, `SELECT seq FROM event_log WHERE seq > ? AND received_at < ? AND body IS NOT NULL ORDER BY seq LIMIT ?`,
			[]any{after, t, purgeChunk}, func(rows *sql.Rows) error {
				if err := rows.Scan(&after); err != nil {
					return err
				}
				seqs = append(seqs, after)
				return nil
			})
		if err != nil || len(seqs) == 0 {
			return n, err
		}
		r, err := s.lw.ExecContext(ctx, `UPDATE event_log SET body = NULL WHERE body IS NOT NULL AND seq IN (`+placeholders(len(seqs))+`)`, seqs...)
		if err != nil {
			return n, err
		}
		k, _ := r.RowsAffected()
		n += k
		if len(seqs) < purgeChunk {
			return n, nil
		}
	}
}
