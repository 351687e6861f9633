package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// Ingest records ev, its projection and its notification in one
// transaction. Concurrent ingests need no lock of their own: the event
// insert waits for another transaction inserting the same id, and the
// projection's upserts compare (timestamp, id) against the row as committed,
// so the newest event wins whichever commits first.
func (s *Store) Ingest(ctx context.Context, ev *kycd.Event, n *kycd.Notification, sinks []string) (res kycd.IngestResult, err error) {
	if s.closed.Load() {
		return res, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("postgres: ingest: begin: %w", unavailable(s, err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	// The row goes in first, outcome to follow, so that a concurrent copy
	// of the event waits here for this transaction.
	tag, err := tx.Exec(ctx, `
		INSERT INTO events (id, type, ts, received_at, body, body_hash, outcome, session_id)
		VALUES ($1, $2, $3, $4, $5, $6, '', $7) ON CONFLICT (id) DO NOTHING`,
		ev.ID, ev.Type, ev.Timestamp, ev.ReceivedAt, ev.Body, ev.BodyHash, nullString(ev.SessionID))
	if err != nil {
		return res, fmt.Errorf("postgres: ingest: insert event: %w", unavailable(s, err))
	}
	if tag.RowsAffected() == 0 {
		var hash string
		if err := tx.QueryRow(ctx, `SELECT body_hash FROM events WHERE id = $1`, ev.ID).Scan(&hash); err != nil {
			return res, fmt.Errorf("postgres: ingest: find event: %w", unavailable(s, err))
		}
		if hash != ev.BodyHash {
			return res, kycd.Errorf(kycd.ECONFLICT, "event %s was received before with a different body", ev.ID)
		}
		return kycd.IngestResult{Duplicate: true}, nil
	}

	if res.Outcome, err = project(ctx, tx, ev); err != nil {
		return res, fmt.Errorf("postgres: ingest: project: %w", unavailable(s, err))
	}
	if _, err := tx.Exec(ctx, `UPDATE events SET outcome = $2 WHERE id = $1`, ev.ID, res.Outcome); err != nil {
		return res, fmt.Errorf("postgres: ingest: outcome: %w", unavailable(s, err))
	}
	if res.Outcome == kycd.OutcomeApplied && n != nil {
		if err := insertNotification(ctx, tx, n, sinks, ev.ReceivedAt); err != nil {
			return res, fmt.Errorf("postgres: ingest: outbox: %w", unavailable(s, err))
		}
		res.NotificationID = n.ID
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("postgres: ingest: commit: %w", unavailable(s, err))
	}
	return res, nil
}

func project(ctx context.Context, tx pgx.Tx, ev *kycd.Event) (string, error) {
	switch {
	case ev.Status != "":
		return projectSession(ctx, tx, ev)
	case ev.Level != "":
		return projectLevel(ctx, tx, ev)
	case ev.Expiration != nil:
		return kycd.OutcomeApplied, ensureSubject(ctx, tx, ev.Subject)
	}
	return kycd.OutcomeUnhandled, nil
}

// projectSession applies a session event if it is newer than the one that
// set the session's status. The upsert's WHERE is the projection rule of
// kycd.Supersedes, in SQL: (timestamp, id) compared as a row, ids in the
// "C" collation.
func projectSession(ctx context.Context, tx pgx.Tx, ev *kycd.Event) (string, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET subject_type = excluded.subject_type, subject_id = excluded.subject_id,
			status = excluded.status, status_at = excluded.status_at, status_event_id = excluded.status_event_id
		WHERE (sessions.status_at, sessions.status_event_id) < (excluded.status_at, excluded.status_event_id)`,
		ev.SessionID, ev.Subject.Type, ev.Subject.ID, ev.Status, ev.Timestamp, ev.ID)
	if err != nil {
		return "", err
	}
	applied := tag.RowsAffected() == 1
	if _, err := tx.Exec(ctx, `
		INSERT INTO session_history (session_id, event_id, event, ts, received_at, status, applied) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		ev.SessionID, ev.ID, ev.Type, ev.Timestamp, ev.ReceivedAt, ev.Status, applied); err != nil {
		return "", err
	}
	if !applied {
		return kycd.OutcomeStale, nil
	}
	if err := ensureSubject(ctx, tx, ev.Subject); err != nil {
		return "", err
	}
	batch := &pgx.Batch{}
	batch.Queue(`DELETE FROM session_checks WHERE session_id = $1`, ev.SessionID)
	batch.Queue(`DELETE FROM check_reasons WHERE session_id = $1`, ev.SessionID)
	for i, c := range ev.Checks {
		batch.Queue(`INSERT INTO session_checks (session_id, position, type, state) VALUES ($1, $2, $3, $4)`, ev.SessionID, i, c.Type, c.State)
		for j, r := range c.Reasons {
			batch.Queue(`INSERT INTO check_reasons (session_id, check_position, position, type, code, message, category) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				ev.SessionID, i, j, r.Type, r.Code, r.Message, r.Category)
		}
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return "", err
	}
	return kycd.OutcomeApplied, nil
}

func projectLevel(ctx context.Context, tx pgx.Tx, ev *kycd.Event) (string, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO subjects (type, id, level, level_at, level_event_id) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id, type) DO UPDATE SET level = excluded.level, level_at = excluded.level_at, level_event_id = excluded.level_event_id
		WHERE subjects.level_at IS NULL OR (subjects.level_at, subjects.level_event_id) < (excluded.level_at, excluded.level_event_id)`,
		ev.Subject.Type, ev.Subject.ID, ev.Level, ev.Timestamp, ev.ID)
	if err != nil {
		return "", err
	}
	if tag.RowsAffected() == 0 {
		return kycd.OutcomeStale, nil
	}
	return kycd.OutcomeApplied, nil
}

func ensureSubject(ctx context.Context, tx pgx.Tx, sub kycd.SubjectRef) error {
	if sub.IsZero() {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO subjects (type, id) VALUES ($1, $2) ON CONFLICT (id, type) DO NOTHING`, sub.Type, sub.ID)
	return err
}

func insertNotification(ctx context.Context, tx pgx.Tx, n *kycd.Notification, sinks []string, now time.Time) error {
	payload, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES ($1, $2, $3, $4, $5)`,
		n.ID, n.Type, n.SourceEventID, string(payload), now); err != nil {
		return err
	}
	for _, sink := range sinks {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at)
			VALUES ($1, $2, $3, 'pending', $4, $4, $4, $4)`, id.String(), n.ID, sink, now); err != nil {
			return err
		}
	}
	return nil
}
