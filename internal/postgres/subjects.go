package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// The reads and writes of export, erasure and retention (kycd.SubjectTx).
// A set of ids goes to PostgreSQL as one array parameter (= ANY($1)), so a
// statement stays the same size however many ids there are.

// ExcludeProjections takes the projection lock until the transaction ends.
func (t *tx) ExcludeProjections(ctx context.Context) error {
	if _, err := t.tx.Exec(ctx, lockProjection, projectionLockClass); err != nil {
		return fmt.Errorf("postgres: exclude projections: %w", translate(t.s, err))
	}
	return nil
}

// SubjectLevel reads the subject's own row.
func (t *tx) SubjectLevel(ctx context.Context, sub kycd.SubjectRef) (string, time.Time, error) {
	var level *string
	var at *time.Time
	err := t.tx.QueryRow(ctx, `SELECT level, level_at FROM subjects WHERE id = $1 AND type = $2`, sub.ID, sub.Type).Scan(&level, &at)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("postgres: subject level: %w", t.s.notFound(err, "subject %s %s has no row", sub.Type, sub.ID))
	}
	return deref(level), derefTime(at).UTC(), nil
}

const sessionReadColumns = `id, subject_type, subject_id, status, status_at, status_event_id, expires_at, checks, history`

// scanSession reads a row of sessionReadColumns, as stored.
func scanSession(row pgx.Row) (*kycd.Session, error) {
	var st kycd.SessionState
	var expires *time.Time
	var checks, history []byte
	if err := row.Scan(&st.ID, &st.Subject.Type, &st.Subject.ID, &st.Status, &st.StatusAt, &st.StatusEventID, &expires, &checks, &history); err != nil {
		return nil, err
	}
	if err := decodeSession(&st, checks, history); err != nil {
		return nil, err
	}
	return &kycd.Session{ID: st.ID, Subject: st.Subject, Status: st.Status, StatusAt: st.StatusAt, StatusEventID: st.StatusEventID,
		ExpiresAt: derefTime(expires), Checks: st.Checks, History: st.History}, nil
}

func (t *tx) sessions(ctx context.Context, query string, args ...any) ([]*kycd.Session, error) {
	rows, err := t.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.Session, error) { return scanSession(row) })
}

// SubjectSessions reads the sessions of a subject.
func (t *tx) SubjectSessions(ctx context.Context, sub kycd.SubjectRef) ([]*kycd.Session, error) {
	out, err := t.sessions(ctx, `SELECT `+sessionReadColumns+` FROM sessions WHERE subject_id = $1 AND subject_type = $2 ORDER BY status_at DESC, id`,
		sub.ID, sub.Type)
	if err != nil {
		return nil, fmt.Errorf("postgres: subject sessions: %w", translate(t.s, err))
	}
	return out, nil
}

// SessionsWithStatusEvent finds the sessions through the events' session
// ids, both by primary key: sessions have no index by status event.
func (t *tx) SessionsWithStatusEvent(ctx context.Context, eventIDs []string) ([]*kycd.Session, error) {
	out, err := t.sessions(ctx, `SELECT `+sessionReadColumns+` FROM sessions
		WHERE id IN (SELECT session_id FROM events WHERE id = ANY($1)) AND status_event_id = ANY($1) ORDER BY id`, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions with status event: %w", translate(t.s, err))
	}
	return out, nil
}

// SubjectEvents scans the events.
func (t *tx) SubjectEvents(ctx context.Context, sub kycd.SubjectRef, sessionIDs []string) ([]kycd.EventKey, error) {
	rows, err := t.tx.Query(ctx, `SELECT seq, id FROM events WHERE (subject_id = $1 AND subject_type = $2) OR session_id = ANY($3) ORDER BY seq`,
		sub.ID, sub.Type, sessionIDs)
	if err != nil {
		return nil, fmt.Errorf("postgres: subject events: %w", translate(t.s, err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[kycd.EventKey])
	if err != nil {
		return nil, fmt.Errorf("postgres: subject events: %w", translate(t.s, err))
	}
	return out, nil
}

// NotificationPayloads reads notifications by id.
func (t *tx) NotificationPayloads(ctx context.Context, ids []string) (map[string]json.RawMessage, error) {
	rows, err := t.tx.Query(ctx, `SELECT id, payload::text FROM notifications WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: notification payloads: %w", translate(t.s, err))
	}
	out := map[string]json.RawMessage{}
	var id, payload string
	_, err = pgx.ForEachRow(rows, []any{&id, &payload}, func() error {
		out[id] = json.RawMessage(payload)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: notification payloads: %w", translate(t.s, err))
	}
	return out, nil
}

// QuarantineNaming searches the bodies byte for byte, and the erased items
// by the id they were erased for.
func (t *tx) QuarantineNaming(ctx context.Context, eventIDs []string, needles [][]byte) ([]string, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT id FROM quarantine
		WHERE event_id = ANY($1) OR convert_to(erased_subject, 'UTF8') = ANY($2::bytea[]) OR EXISTS (
			SELECT 1 FROM unnest($2::bytea[]) AS n(needle)
			WHERE position(n.needle IN body) > 0 OR position(n.needle IN coalesce(original_body, ''::bytea)) > 0)
		ORDER BY id`, eventIDs, needles)
	if err != nil {
		return nil, fmt.Errorf("postgres: quarantine naming: %w", translate(t.s, err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: quarantine naming: %w", translate(t.s, err))
	}
	return out, nil
}

// SetSessionChecks writes a session's checks.
func (t *tx) SetSessionChecks(ctx context.Context, id string, checks []kycd.Check) error {
	js, err := json.Marshal(checks)
	if err != nil {
		return err
	}
	if _, err := t.tx.Exec(ctx, `UPDATE sessions SET checks = $2::json, version = version + 1 WHERE id = $1`, id, string(js)); err != nil {
		return fmt.Errorf("postgres: set session checks: %w", translate(t.s, err))
	}
	return nil
}

// SetNotificationPayload writes a notification's payload.
func (t *tx) SetNotificationPayload(ctx context.Context, id string, payload json.RawMessage) error {
	if _, err := t.tx.Exec(ctx, `UPDATE notifications SET payload = $2::json WHERE id = $1`, id, string(payload)); err != nil {
		return fmt.Errorf("postgres: set notification payload: %w", translate(t.s, err))
	}
	return nil
}

// ClearQuarantineBodies empties quarantined bodies.
func (t *tx) ClearQuarantineBodies(ctx context.Context, ids []string, at time.Time, result, subjectID string) (int, error) {
	tag, err := t.tx.Exec(ctx, `
		UPDATE quarantine SET body = ''::bytea, original_body = NULL,
			replayed_at = coalesce(replayed_at, $2), replay_result = coalesce(replay_result, $3), erased_subject = coalesce(erased_subject, $4)
		WHERE id = ANY($1) AND (length(body) > 0 OR original_body IS NOT NULL)`, ids, at, result, subjectID)
	if err != nil {
		return 0, fmt.Errorf("postgres: clear quarantine bodies: %w", translate(t.s, err))
	}
	return int(tag.RowsAffected()), nil
}

// ClearLogBodies removes raw bodies from the log, in the transaction.
func (t *tx) ClearLogBodies(ctx context.Context, seqs []int64) (int, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE event_log SET body = NULL WHERE seq = ANY($1) AND body IS NOT NULL`, seqs)
	if err != nil {
		return 0, fmt.Errorf("postgres: clear log bodies: %w", translate(t.s, err))
	}
	return int(tag.RowsAffected()), nil
}
