package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// The reads and writes of export, erasure and retention (kycd.SubjectTx).
// A set of ids goes to SQLite as one JSON array, taken apart by json_each,
// so a statement stays the same size however many ids there are.

// jsonArray is values as one JSON array, for json_each.
func jsonArray[T any](values []T) (string, error) {
	if values == nil {
		values = []T{}
	}
	b, err := json.Marshal(values)
	return string(b), err
}

// ExcludeProjections does nothing more than the transaction does: it holds
// the main file's one write connection, which projections wait for.
func (t *tx) ExcludeProjections(context.Context) error { return nil }

// SubjectLevel reads the subject's own row.
func (t *tx) SubjectLevel(ctx context.Context, sub kycd.SubjectRef) (string, time.Time, error) {
	var level, at sql.NullString
	err := t.tx.QueryRowContext(ctx, `SELECT level, level_at FROM subjects WHERE id = ? AND type = ?`, sub.ID, sub.Type).Scan(&level, &at)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sqlite: subject level: %w", t.s.notFound(err, "subject %s %s has no row", sub.Type, sub.ID))
	}
	levelAt, err := parseNullTime(at)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sqlite: subject level: %w", err)
	}
	return level.String, levelAt, nil
}

const sessionReadColumns = `id, subject_type, subject_id, status, status_at, status_event_id, expires_at, checks, history`

// scanSession reads a row of sessionReadColumns, as stored.
func scanSession(row interface{ Scan(...any) error }) (*kycd.Session, error) {
	sess := &kycd.Session{}
	var at string
	var expires sql.NullString
	var checks, history []byte
	err := row.Scan(&sess.ID, &sess.Subject.Type, &sess.Subject.ID, &sess.Status, &at, &sess.StatusEventID, &expires, &checks, &history)
	if err != nil {
		return nil, err
	}
	if sess.StatusAt, err = parseTime(at); err != nil {
		return nil, err
	}
	if sess.ExpiresAt, err = parseNullTime(expires); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(checks, &sess.Checks); err != nil {
		return nil, fmt.Errorf("session %s checks: %w", sess.ID, err)
	}
	if err := json.Unmarshal(history, &sess.History); err != nil {
		return nil, fmt.Errorf("session %s history: %w", sess.ID, err)
	}
	return sess, nil
}

func (t *tx) sessions(ctx context.Context, query string, args ...any) ([]*kycd.Session, error) {
	var out []*kycd.Session
	err := queryRows(ctx, t.tx, query, args, func(rows *sql.Rows) error {
		sess, err := scanSession(rows)
		out = append(out, sess)
		return err
	})
	return out, err
}

// SubjectSessions reads the sessions of a subject.
func (t *tx) SubjectSessions(ctx context.Context, sub kycd.SubjectRef) ([]*kycd.Session, error) {
	out, err := t.sessions(ctx, `SELECT `+sessionReadColumns+` FROM sessions WHERE subject_id = ? AND subject_type = ? ORDER BY status_at DESC, id`,
		sub.ID, sub.Type)
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject sessions: %w", translate(t.s, err))
	}
	return out, nil
}

// SessionsWithStatusEvent finds the sessions through the events' session
// ids, both by primary key: sessions have no index by status event.
func (t *tx) SessionsWithStatusEvent(ctx context.Context, eventIDs []string) ([]*kycd.Session, error) {
	ids, err := jsonArray(eventIDs)
	if err != nil {
		return nil, err
	}
	out, err := t.sessions(ctx, `SELECT `+sessionReadColumns+` FROM sessions
		WHERE id IN (SELECT session_id FROM events WHERE id IN (SELECT value FROM json_each(?1)))
		AND status_event_id IN (SELECT value FROM json_each(?1)) ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sessions with status event: %w", translate(t.s, err))
	}
	return out, nil
}

// SubjectEvents scans the events.
func (t *tx) SubjectEvents(ctx context.Context, sub kycd.SubjectRef, sessionIDs []string) ([]kycd.EventKey, error) {
	sessions, err := jsonArray(sessionIDs)
	if err != nil {
		return nil, err
	}
	var out []kycd.EventKey
	err = queryRows(ctx, t.tx, `SELECT seq, id FROM events
		WHERE (subject_id = ? AND subject_type = ?) OR session_id IN (SELECT value FROM json_each(?)) ORDER BY seq`,
		[]any{sub.ID, sub.Type, sessions}, func(rows *sql.Rows) error {
			var e kycd.EventKey
			err := rows.Scan(&e.Seq, &e.ID)
			out = append(out, e)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject events: %w", translate(t.s, err))
	}
	return out, nil
}

// NotificationPayloads reads notifications by id.
func (t *tx) NotificationPayloads(ctx context.Context, ids []string) (map[string]json.RawMessage, error) {
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	err = queryRows(ctx, t.tx, `SELECT id, payload FROM notifications WHERE id IN (SELECT value FROM json_each(?))`, []any{arr},
		func(rows *sql.Rows) error {
			var id string
			var payload []byte
			err := rows.Scan(&id, &payload)
			out[id] = payload
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: notification payloads: %w", translate(t.s, err))
	}
	return out, nil
}

// QuarantineNaming searches the bodies byte for byte (instr on blobs), and
// the erased items by the id they were erased for.
func (t *tx) QuarantineNaming(ctx context.Context, eventIDs []string, needles [][]byte) ([]string, error) {
	events, err := jsonArray(eventIDs)
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(needles))
	for i, n := range needles {
		texts[i] = string(n)
	}
	ns, err := jsonArray(texts)
	if err != nil {
		return nil, err
	}
	var out []string
	err = queryRows(ctx, t.tx, `SELECT id FROM quarantine q
		WHERE event_id IN (SELECT value FROM json_each(?1)) OR erased_subject IN (SELECT value FROM json_each(?2)) OR EXISTS (
			SELECT 1 FROM json_each(?2) n
			WHERE instr(q.body, CAST(n.value AS BLOB)) > 0 OR instr(coalesce(q.original_body, x''), CAST(n.value AS BLOB)) > 0)
		ORDER BY id`, []any{events, ns}, func(rows *sql.Rows) error {
		var id string
		err := rows.Scan(&id)
		out = append(out, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: quarantine naming: %w", translate(t.s, err))
	}
	return out, nil
}

// SetSessionChecks writes a session's checks.
func (t *tx) SetSessionChecks(ctx context.Context, id string, checks []kycd.Check) error {
	js, err := json.Marshal(checks)
	if err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE sessions SET checks = ?, version = version + 1 WHERE id = ?`, string(js), id); err != nil {
		return fmt.Errorf("sqlite: set session checks: %w", translate(t.s, err))
	}
	return nil
}

// SetNotificationPayload writes a notification's payload.
func (t *tx) SetNotificationPayload(ctx context.Context, id string, payload json.RawMessage) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE notifications SET payload = ? WHERE id = ?`, []byte(payload), id); err != nil {
		return fmt.Errorf("sqlite: set notification payload: %w", translate(t.s, err))
	}
	return nil
}

// ClearQuarantineBodies empties quarantined bodies.
func (t *tx) ClearQuarantineBodies(ctx context.Context, ids []string, at time.Time, result, subjectID string) (int, error) {
	arr, err := jsonArray(ids)
	if err != nil {
		return 0, err
	}
	r, err := t.tx.ExecContext(ctx, `UPDATE quarantine SET body = x'', original_body = NULL,
			replayed_at = coalesce(replayed_at, ?), replay_result = coalesce(replay_result, ?), erased_subject = coalesce(erased_subject, ?)
		WHERE id IN (SELECT value FROM json_each(?)) AND (length(body) > 0 OR original_body IS NOT NULL)`, formatTime(at), result, subjectID, arr)
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear quarantine bodies: %w", translate(t.s, err))
	}
	n, err := r.RowsAffected()
	return int(n), err
}

// ClearLogBodies writes the log file through its own write connection, in
// a statement of its own: acknowledgements, which append to the log, wait
// for it only.
func (t *tx) ClearLogBodies(ctx context.Context, seqs []int64) (int, error) {
	arr, err := jsonArray(seqs)
	if err != nil {
		return 0, err
	}
	r, err := t.s.lw.ExecContext(ctx, `UPDATE event_log SET body = NULL WHERE body IS NOT NULL AND seq IN (SELECT value FROM json_each(?))`, arr)
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear log bodies: %w", translate(t.s, err))
	}
	n, err := r.RowsAffected()
	return int(n), err
}
