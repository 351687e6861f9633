package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// The reads and writes of the retention purge that only it needs; the
// others it shares with erasure (subjects.go).

// LogBodiesBefore scans the log through its read pool, which takes no
// lock: the log has no index on received_at (an append would pay for it).
func (t *tx) LogBodiesBefore(ctx context.Context, before time.Time, after int64, limit int) ([]kycd.EventKey, error) {
	var out []kycd.EventKey
	err := queryRows(ctx, t.s.lr, `SELECT seq, event_id FROM event_log WHERE seq > ? AND received_at < ? AND body IS NOT NULL ORDER BY seq LIMIT ?`,
		[]any{after, formatTime(before), limit}, func(rows *sql.Rows) error {
			var e kycd.EventKey
			err := rows.Scan(&e.Seq, &e.ID)
			out = append(out, e)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: log bodies before: %w", translate(t.s, err))
	}
	return out, nil
}

// DeleteQuarantineBefore deletes old quarantine items.
func (t *tx) DeleteQuarantineBefore(ctx context.Context, before time.Time) (int, error) {
	r, err := t.tx.ExecContext(ctx, `DELETE FROM quarantine WHERE received_at < ?`, formatTime(before))
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete quarantine: %w", translate(t.s, err))
	}
	n, err := r.RowsAffected()
	return int(n), err
}

// DropCopies checkpoints both files and empties their write-ahead logs,
// whose old frames would otherwise keep what was just erased or purged
// until they are written over. It waits checkpointWait at most for a
// reader or a writer, on the checkpointer's connections, never on the
// writers': a reader that keeps its frames (Litestream holds one) is
// reported as an error, and the checkpointer tries again every second in
// the background until the logs are empty.
func (s *Store) DropCopies(ctx context.Context) error {
	if s.closed.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	if err := s.ck.checkpoint(ctx, "TRUNCATE"); err != nil {
		s.ck.owed.Store(true)
		return fmt.Errorf("sqlite: truncate the write-ahead logs (tried again in the background while this process runs): %w", translate(s, err))
	}
	return nil
}

var _ kycd.CopyDropper = (*Store)(nil)

// DeleteHeldBefore deletes old bodies of the signature hold.
func (t *tx) DeleteHeldBefore(ctx context.Context, before time.Time) (int, error) {
	r, err := t.tx.ExecContext(ctx, `DELETE FROM quarantine WHERE reason = ? AND received_at < ?`, kycd.QuarantineSignature, formatTime(before))
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete held: %w", translate(t.s, err))
	}
	n, _ := r.RowsAffected()
	return int(n), nil
}
