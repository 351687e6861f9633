package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// AddQuarantine keeps a refused body.
func (s *Store) AddQuarantine(ctx context.Context, q *kycd.Quarantined) error {
	_, err := s.w.ExecContext(ctx,
		insertQuarantine, q.ID, formatTime(q.ReceivedAt), q.Reason, string(q.Problem), nullString(q.EventID), q.Body, q.OriginalBody, nullString(q.Signature))
	if err != nil {
		return fmt.Errorf("sqlite: add quarantine: %w", unavailable(s, err))
	}
	return nil
}

const insertQuarantine = `INSERT INTO quarantine (id, received_at, reason, problem, event_id, body, original_body, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// trimHold deletes the held bodies beyond the caps, newest kept first.
const trimHold = `DELETE FROM quarantine WHERE id IN (
	SELECT id FROM (
		SELECT id,
			row_number() OVER (ORDER BY received_at DESC, id DESC) AS n,
			sum(coalesce(length(body), 0)) OVER (ORDER BY received_at DESC, id DESC ROWS UNBOUNDED PRECEDING) AS total
		FROM quarantine WHERE reason = '` + kycd.QuarantineSignature + `'
	) WHERE n > ? OR total > ?)`

// HoldQuarantine keeps a body of the signature hold and deletes the oldest
// held ones beyond the caps, in one transaction.
func (s *Store) HoldQuarantine(ctx context.Context, q *kycd.Quarantined, hold kycd.SignatureHold) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: hold quarantine: %w", unavailable(s, err))
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, insertQuarantine, q.ID, formatTime(q.ReceivedAt), q.Reason, string(q.Problem), nullString(q.EventID), q.Body, q.OriginalBody, nullString(q.Signature)); err != nil {
		return 0, fmt.Errorf("sqlite: hold quarantine: %w", unavailable(s, err))
	}
	r, err := tx.ExecContext(ctx, trimHold, hold.MaxCount, hold.MaxBytes)
	if err != nil {
		return 0, fmt.Errorf("sqlite: hold quarantine: %w", unavailable(s, err))
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: hold quarantine: %w", unavailable(s, err))
	}
	n, _ := r.RowsAffected()
	return int(n), nil
}

const quarantineColumns = `id, received_at, reason, problem, event_id, body, original_body, replayed_at, replay_result, discarded_at, discarded_by, signature`

func scanQuarantined(row interface{ Scan(...any) error }) (*kycd.Quarantined, error) {
	var q kycd.Quarantined
	var received, problem string
	var eventID, replayedAt, result, discardedAt, discardedBy, signature sql.NullString
	if err := row.Scan(&q.ID, &received, &q.Reason, &problem, &eventID, &q.Body, &q.OriginalBody, &replayedAt, &result, &discardedAt, &discardedBy, &signature); err != nil {
		return nil, err
	}
	var err error
	if q.ReceivedAt, err = parseTime(received); err != nil {
		return nil, err
	}
	if replayedAt.Valid {
		if q.ReplayedAt, err = parseTime(replayedAt.String); err != nil {
			return nil, err
		}
	}
	if q.DiscardedAt, err = parseNullTime(discardedAt); err != nil {
		return nil, err
	}
	q.Problem = []byte(problem)
	q.EventID = eventID.String
	q.ReplayResult = result.String
	q.DiscardedBy = discardedBy.String
	q.Signature = signature.String
	return &q, nil
}

// QuarantineItem returns one quarantined body.
func (s *Store) QuarantineItem(ctx context.Context, id string) (*kycd.Quarantined, error) {
	q, err := scanQuarantined(s.r.QueryRowContext(ctx, `SELECT `+quarantineColumns+` FROM quarantine WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: quarantine item: %w", s.notFound(err, "quarantined body %s not found", id))
	}
	return q, nil
}

// Quarantine lists quarantined bodies, newest first; pending ones are
// neither replayed nor discarded.
func (s *Store) Quarantine(ctx context.Context, all bool, limit int) ([]*kycd.Quarantined, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+quarantineColumns+` FROM quarantine WHERE (? OR (replayed_at IS NULL AND discarded_at IS NULL)) ORDER BY received_at DESC, id LIMIT ?`, all, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: quarantine: %w", translate(s, err))
	}
	defer rows.Close()
	out := []*kycd.Quarantined{}
	for rows.Next() {
		q, err := scanQuarantined(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: quarantine: %w", translate(s, err))
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: quarantine: %w", translate(s, err))
	}
	return out, nil
}

// ResolveQuarantine records a successful replay.
func (s *Store) ResolveQuarantine(ctx context.Context, id, result string, at time.Time) error {
	r, err := s.w.ExecContext(ctx, `UPDATE quarantine SET replayed_at = ?, replay_result = ? WHERE id = ?`, formatTime(at), result, id)
	if err != nil {
		return fmt.Errorf("sqlite: resolve quarantine: %w", translate(s, err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return kycd.Errorf(kycd.ENOTFOUND, "quarantined body %s not found", id)
	}
	return nil
}

// LockQuarantined reads a quarantined body; the write connection's
// transaction holds it.
func (t *tx) LockQuarantined(ctx context.Context, id string) (*kycd.Quarantined, error) {
	q, err := scanQuarantined(t.tx.QueryRowContext(ctx, `SELECT `+quarantineColumns+` FROM quarantine WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock quarantined: %w", t.s.notFound(err, "quarantined body %s not found", id))
	}
	return q, nil
}

// SetQuarantineDiscarded notes who discarded a quarantined body, and when.
func (t *tx) SetQuarantineDiscarded(ctx context.Context, id, by string, at time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE quarantine SET discarded_at = ?, discarded_by = ? WHERE id = ?`, formatTime(at), by, id); err != nil {
		return fmt.Errorf("sqlite: set quarantine discarded: %w", translate(t.s, err))
	}
	return nil
}

// QuarantinePending counts the bodies waiting for a replay.
func (s *Store) QuarantinePending(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM quarantine WHERE replayed_at IS NULL AND discarded_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: quarantine pending: %w", translate(s, err))
	}
	return n, nil
}
