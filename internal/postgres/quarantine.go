package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// AddQuarantine keeps a refused body.
func (s *Store) AddQuarantine(ctx context.Context, q *kycd.Quarantined) error {
	_, err := s.pool.Exec(ctx,
		insertQuarantine, q.ID, q.ReceivedAt, q.Reason, string(q.Problem), nullString(q.EventID), q.Body, q.OriginalBody, nullString(q.Signature))
	if err != nil {
		return fmt.Errorf("postgres: add quarantine: %w", unavailable(s, err))
	}
	return nil
}

const insertQuarantine = `INSERT INTO quarantine (id, received_at, reason, problem, event_id, body, original_body, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// trimHold deletes the held bodies beyond the caps, newest kept first.
const trimHold = `DELETE FROM quarantine WHERE id IN (
	SELECT id FROM (
		SELECT id,
			row_number() OVER (ORDER BY received_at DESC, id DESC) AS n,
			sum(coalesce(octet_length(body), 0)) OVER (ORDER BY received_at DESC, id DESC ROWS UNBOUNDED PRECEDING) AS total
		FROM quarantine WHERE reason = '` + kycd.QuarantineSignature + `'
	) h WHERE n > $1 OR total > $2)`

// HoldQuarantine keeps a body of the signature hold and deletes the oldest
// held ones beyond the caps, in one transaction.
func (s *Store) HoldQuarantine(ctx context.Context, q *kycd.Quarantined, hold kycd.SignatureHold) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: hold quarantine: %w", unavailable(s, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, insertQuarantine, q.ID, q.ReceivedAt, q.Reason, string(q.Problem), nullString(q.EventID), q.Body, q.OriginalBody, nullString(q.Signature)); err != nil {
		return 0, fmt.Errorf("postgres: hold quarantine: %w", unavailable(s, err))
	}
	tag, err := tx.Exec(ctx, trimHold, hold.MaxCount, hold.MaxBytes)
	if err != nil {
		return 0, fmt.Errorf("postgres: hold quarantine: %w", unavailable(s, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: hold quarantine: %w", unavailable(s, err))
	}
	return int(tag.RowsAffected()), nil
}

const quarantineColumns = `id, received_at, reason, problem, event_id, body, original_body, replayed_at, replay_result, discarded_at, discarded_by, signature`

func scanQuarantined(row pgx.Row) (*kycd.Quarantined, error) {
	var q kycd.Quarantined
	var problem string
	var eventID, result, discardedBy, signature *string
	var replayedAt, discardedAt *time.Time
	if err := row.Scan(&q.ID, &q.ReceivedAt, &q.Reason, &problem, &eventID, &q.Body, &q.OriginalBody, &replayedAt, &result, &discardedAt, &discardedBy, &signature); err != nil {
		return nil, err
	}
	q.ReceivedAt = q.ReceivedAt.UTC()
	if replayedAt != nil {
		q.ReplayedAt = replayedAt.UTC()
	}
	if discardedAt != nil {
		q.DiscardedAt = discardedAt.UTC()
	}
	q.Problem = []byte(problem)
	q.EventID, q.ReplayResult, q.DiscardedBy, q.Signature = deref(eventID), deref(result), deref(discardedBy), deref(signature)
	return &q, nil
}

// QuarantineItem returns one quarantined body.
func (s *Store) QuarantineItem(ctx context.Context, id string) (*kycd.Quarantined, error) {
	q, err := scanQuarantined(s.pool.QueryRow(ctx, `SELECT `+quarantineColumns+` FROM quarantine WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: quarantine item: %w", s.notFound(err, "quarantined body %s not found", id))
	}
	return q, nil
}

// Quarantine lists quarantined bodies, newest first; pending ones are
// neither replayed nor discarded.
func (s *Store) Quarantine(ctx context.Context, all bool, limit int) ([]*kycd.Quarantined, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+quarantineColumns+` FROM quarantine WHERE ($1 OR (replayed_at IS NULL AND discarded_at IS NULL)) ORDER BY received_at DESC, id LIMIT $2`, all, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: quarantine: %w", translate(s, err))
	}
	defer rows.Close()
	out := []*kycd.Quarantined{}
	for rows.Next() {
		q, err := scanQuarantined(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: quarantine: %w", translate(s, err))
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: quarantine: %w", translate(s, err))
	}
	return out, nil
}

// ResolveQuarantine records a successful replay.
func (s *Store) ResolveQuarantine(ctx context.Context, id, result string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE quarantine SET replayed_at = $2, replay_result = $3 WHERE id = $1`, id, at, result)
	if err != nil {
		return fmt.Errorf("postgres: resolve quarantine: %w", translate(s, err))
	}
	if tag.RowsAffected() == 0 {
		return kycd.Errorf(kycd.ENOTFOUND, "quarantined body %s not found", id)
	}
	return nil
}

// LockQuarantined reads a quarantined body and locks its row.
func (t *tx) LockQuarantined(ctx context.Context, id string) (*kycd.Quarantined, error) {
	q, err := scanQuarantined(t.tx.QueryRow(ctx, `SELECT `+quarantineColumns+` FROM quarantine WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: lock quarantined: %w", t.s.notFound(err, "quarantined body %s not found", id))
	}
	return q, nil
}

// SetQuarantineDiscarded notes who discarded a quarantined body, and when.
func (t *tx) SetQuarantineDiscarded(ctx context.Context, id, by string, at time.Time) error {
	if _, err := t.tx.Exec(ctx, `UPDATE quarantine SET discarded_at = $2, discarded_by = $3 WHERE id = $1`, id, at, by); err != nil {
		return fmt.Errorf("postgres: set quarantine discarded: %w", translate(t.s, err))
	}
	return nil
}

// QuarantinePending counts the bodies waiting for a replay.
func (s *Store) QuarantinePending(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM quarantine WHERE replayed_at IS NULL AND discarded_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: quarantine pending: %w", translate(s, err))
	}
	return n, nil
}
