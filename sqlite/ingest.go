package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// Ingest records ev, its projection and its notification in one transaction.
// The write connection begins IMMEDIATE, so the duplicate check and the
// projection read see no concurrent writer.
func (s *Store) Ingest(ctx context.Context, ev *kycd.Event, n *kycd.Notification, sinks []string) (res kycd.IngestResult, err error) {
	if s.closed.Load() {
		return res, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("sqlite: ingest: begin: %w", unavailable(s, err))
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	var hash string
	switch err := tx.QueryRowContext(ctx, `SELECT body_hash FROM events WHERE id = ?`, ev.ID).Scan(&hash); {
	case err == nil:
		tx.Rollback()
		if hash != ev.BodyHash {
			return res, kycd.Errorf(kycd.ECONFLICT, "event %s was received before with a different body", ev.ID)
		}
		return kycd.IngestResult{Duplicate: true}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return res, fmt.Errorf("sqlite: ingest: find event: %w", unavailable(s, err))
	}

	res.Outcome, err = project(ctx, tx, ev)
	if err != nil {
		return res, fmt.Errorf("sqlite: ingest: project: %w", unavailable(s, err))
	}
	if _, err = tx.ExecContext(ctx,
		`INSERT INTO events (id, type, ts, received_at, body, body_hash, outcome, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.ID, ev.Type, formatTime(ev.Timestamp), formatTime(ev.ReceivedAt), ev.Body, ev.BodyHash, res.Outcome, nullString(ev.SessionID),
	); err != nil {
		return res, fmt.Errorf("sqlite: ingest: insert event: %w", unavailable(s, err))
	}
	if res.Outcome == kycd.OutcomeApplied && n != nil {
		if err = insertNotification(ctx, tx, n, sinks, ev.ReceivedAt); err != nil {
			return res, fmt.Errorf("sqlite: ingest: outbox: %w", unavailable(s, err))
		}
		res.NotificationID = n.ID
	}
	if err = tx.Commit(); err != nil {
		return res, fmt.Errorf("sqlite: ingest: commit: %w", unavailable(s, err))
	}
	return res, nil
}

// unavailable marks every failure inside an ingest as EUNAVAILABLE: whatever
// went wrong, nothing was committed and Ralio must send the event again.
func unavailable(s *Store, err error) error {
	err = translate(s, err)
	if kycd.ErrorCode(err) == kycd.EINTERNAL {
		return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "store could not record the event", Err: err}
	}
	return err
}

// project applies ev to the session or subject it concerns and reports the
// outcome. Newest (timestamp, id) wins; an older session event is still
// written to the session's history, marked not applied.
func project(ctx context.Context, tx *sql.Tx, ev *kycd.Event) (string, error) {
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

func projectSession(ctx context.Context, tx *sql.Tx, ev *kycd.Event) (string, error) {
	applied := true
	var at, eventID string
	switch err := tx.QueryRowContext(ctx, `SELECT status_at, status_event_id FROM sessions WHERE id = ?`, ev.SessionID).Scan(&at, &eventID); {
	case err == nil:
		cur, err := parseTime(at)
		if err != nil {
			return "", err
		}
		applied = kycd.Supersedes(ev.Timestamp, ev.ID, cur, eventID)
	case !errors.Is(err, sql.ErrNoRows):
		return "", err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO session_history (session_id, event_id, event, ts, received_at, status, applied) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		ev.SessionID, ev.ID, ev.Type, formatTime(ev.Timestamp), formatTime(ev.ReceivedAt), ev.Status, applied,
	); err != nil {
		return "", err
	}
	if !applied {
		return kycd.OutcomeStale, nil
	}
	if err := ensureSubject(ctx, tx, ev.Subject); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET subject_type = excluded.subject_type, subject_id = excluded.subject_id,
			status = excluded.status, status_at = excluded.status_at, status_event_id = excluded.status_event_id`,
		ev.SessionID, ev.Subject.Type, ev.Subject.ID, ev.Status, formatTime(ev.Timestamp), ev.ID,
	); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM session_checks WHERE session_id = ?`, ev.SessionID); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM check_reasons WHERE session_id = ?`, ev.SessionID); err != nil {
		return "", err
	}
	for i, c := range ev.Checks {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO session_checks (session_id, position, type, state) VALUES (?, ?, ?, ?)`,
			ev.SessionID, i, c.Type, c.State,
		); err != nil {
			return "", err
		}
		for j, r := range c.Reasons {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO check_reasons (session_id, check_position, position, type, code, message, category) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				ev.SessionID, i, j, r.Type, r.Code, r.Message, r.Category,
			); err != nil {
				return "", err
			}
		}
	}
	return kycd.OutcomeApplied, nil
}

func projectLevel(ctx context.Context, tx *sql.Tx, ev *kycd.Event) (string, error) {
	var at, eventID sql.NullString
	switch err := tx.QueryRowContext(ctx, `SELECT level_at, level_event_id FROM subjects WHERE id = ? AND type = ?`,
		ev.Subject.ID, ev.Subject.Type).Scan(&at, &eventID); {
	case err == nil && at.Valid:
		cur, err := parseTime(at.String)
		if err != nil {
			return "", err
		}
		if !kycd.Supersedes(ev.Timestamp, ev.ID, cur, eventID.String) {
			return kycd.OutcomeStale, nil
		}
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return "", err
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO subjects (type, id, level, level_at, level_event_id) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id, type) DO UPDATE SET level = excluded.level, level_at = excluded.level_at, level_event_id = excluded.level_event_id`,
		ev.Subject.Type, ev.Subject.ID, ev.Level, formatTime(ev.Timestamp), ev.ID)
	if err != nil {
		return "", err
	}
	return kycd.OutcomeApplied, nil
}

func ensureSubject(ctx context.Context, tx *sql.Tx, sub kycd.SubjectRef) error {
	if sub.IsZero() {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO subjects (type, id) VALUES (?, ?) ON CONFLICT (id, type) DO NOTHING`, sub.Type, sub.ID)
	return err
}

func insertNotification(ctx context.Context, tx *sql.Tx, n *kycd.Notification, sinks []string, now time.Time) error {
	payload, err := json.Marshal(n)
	if err != nil {
		return err
	}
	ts := formatTime(now)
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
		n.ID, n.Type, n.SourceEventID, payload, ts,
	); err != nil {
		return err
	}
	for _, sink := range sinks {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)`,
			id.String(), n.ID, sink, ts, ts, ts, ts,
		); err != nil {
			return err
		}
	}
	return nil
}
