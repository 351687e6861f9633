package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// The reads and writes of the retention purge that only it needs; the
// others it shares with erasure (subjects.go).

// LogBodiesBefore reads the log by seq.
func (t *tx) LogBodiesBefore(ctx context.Context, before time.Time, after int64, limit int) ([]kycd.EventKey, error) {
	rows, err := t.tx.Query(ctx, `SELECT seq, event_id FROM event_log WHERE seq > $1 AND received_at < $2 AND body IS NOT NULL ORDER BY seq LIMIT $3`,
		after, before, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: log bodies before: %w", translate(t.s, err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[kycd.EventKey])
	if err != nil {
		return nil, fmt.Errorf("postgres: log bodies before: %w", translate(t.s, err))
	}
	return out, nil
}

// DeleteQuarantineBefore deletes old quarantine items.
func (t *tx) DeleteQuarantineBefore(ctx context.Context, before time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM quarantine WHERE received_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete quarantine: %w", translate(t.s, err))
	}
	return int(tag.RowsAffected()), nil
}

// DeleteHeldBefore deletes old bodies of the signature hold.
func (t *tx) DeleteHeldBefore(ctx context.Context, before time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM quarantine WHERE reason = $1 AND received_at < $2`, kycd.QuarantineSignature, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete held: %w", translate(t.s, err))
	}
	return int(tag.RowsAffected()), nil
}
