package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kycd/kycd"
)

// Session returns a session with its checks, failures and history.
func (s *Store) Session(ctx context.Context, id string) (*kycd.Session, error) {
	sess := &kycd.Session{ID: id, Checks: []kycd.Check{}, History: []kycd.HistoryEntry{}}
	var at string
	err := s.r.QueryRowContext(ctx,
		`SELECT subject_type, subject_id, status, status_at, status_event_id FROM sessions WHERE id = ?`, id,
	).Scan(&sess.Subject.Type, &sess.Subject.ID, &sess.Status, &at, &sess.StatusEventID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: session: %w", s.notFound(err, "session %s not found", id))
	}
	if sess.StatusAt, err = parseTime(at); err != nil {
		return nil, fmt.Errorf("sqlite: session: %w", err)
	}
	if err := s.loadChecks(ctx, sess); err != nil {
		return nil, fmt.Errorf("sqlite: session checks: %w", translate(s, err))
	}
	sess.Failures = kycd.Failures(sess.Checks)
	if err := s.loadHistory(ctx, sess); err != nil {
		return nil, fmt.Errorf("sqlite: session history: %w", translate(s, err))
	}
	return sess, nil
}

func (s *Store) loadChecks(ctx context.Context, sess *kycd.Session) error {
	rows, err := s.r.QueryContext(ctx, `SELECT type, state FROM session_checks WHERE session_id = ? ORDER BY position`, sess.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		c := kycd.Check{Reasons: []kycd.Reason{}}
		if err := rows.Scan(&c.Type, &c.State); err != nil {
			rows.Close()
			return err
		}
		sess.Checks = append(sess.Checks, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = s.r.QueryContext(ctx,
		`SELECT check_position, type, code, message, category FROM check_reasons WHERE session_id = ? ORDER BY check_position, position`, sess.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var r kycd.Reason
		if err := rows.Scan(&i, &r.Type, &r.Code, &r.Message, &r.Category); err != nil {
			return err
		}
		if i < len(sess.Checks) {
			sess.Checks[i].Reasons = append(sess.Checks[i].Reasons, r)
		}
	}
	return rows.Err()
}

func (s *Store) loadHistory(ctx context.Context, sess *kycd.Session) error {
	rows, err := s.r.QueryContext(ctx,
		`SELECT event_id, event, ts, received_at, status, applied FROM session_history WHERE session_id = ? ORDER BY ts, event_id`, sess.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h kycd.HistoryEntry
		var ts, received string
		if err := rows.Scan(&h.EventID, &h.Event, &ts, &received, &h.Status, &h.Applied); err != nil {
			return err
		}
		if h.Timestamp, err = parseTime(ts); err != nil {
			return err
		}
		if h.ReceivedAt, err = parseTime(received); err != nil {
			return err
		}
		sess.History = append(sess.History, h)
	}
	return rows.Err()
}

// Subject returns a subject with its level and sessions, newest first.
func (s *Store) Subject(ctx context.Context, id, typ string) (*kycd.Subject, error) {
	sub := &kycd.Subject{ID: id, Sessions: []kycd.SessionSummary{}}
	var level, levelAt sql.NullString
	err := s.r.QueryRowContext(ctx,
		`SELECT type, level, level_at FROM subjects WHERE id = ? AND (? = '' OR type = ?) ORDER BY type LIMIT 1`, id, typ, typ,
	).Scan(&sub.Type, &level, &levelAt)
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject: %w", s.notFound(err, "subject %s not found", id))
	}
	sub.Level = level.String
	if levelAt.Valid {
		if sub.LevelAt, err = parseTime(levelAt.String); err != nil {
			return nil, fmt.Errorf("sqlite: subject: %w", err)
		}
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, status, status_at FROM sessions WHERE subject_id = ? AND subject_type = ? ORDER BY status_at DESC, id`, id, sub.Type)
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject sessions: %w", translate(s, err))
	}
	defer rows.Close()
	for rows.Next() {
		var ss kycd.SessionSummary
		var at string
		if err := rows.Scan(&ss.ID, &ss.Status, &at); err != nil {
			return nil, fmt.Errorf("sqlite: subject sessions: %w", translate(s, err))
		}
		if ss.StatusAt, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("sqlite: subject sessions: %w", err)
		}
		sub.Sessions = append(sub.Sessions, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: subject sessions: %w", translate(s, err))
	}
	return sub, nil
}

// Event returns a stored event with its raw body while retained.
func (s *Store) Event(ctx context.Context, id string) (*kycd.EventRecord, error) {
	var e kycd.EventRecord
	var ts, received string
	var session sql.NullString
	var body []byte
	err := s.r.QueryRowContext(ctx,
		`SELECT id, type, ts, received_at, outcome, session_id, body_hash, body FROM events WHERE id = ?`, id,
	).Scan(&e.ID, &e.Type, &ts, &received, &e.Outcome, &session, &e.BodyHash, &body)
	if err != nil {
		return nil, fmt.Errorf("sqlite: event: %w", s.notFound(err, "event %s not found", id))
	}
	if e.Timestamp, err = parseTime(ts); err != nil {
		return nil, fmt.Errorf("sqlite: event: %w", err)
	}
	if e.ReceivedAt, err = parseTime(received); err != nil {
		return nil, fmt.Errorf("sqlite: event: %w", err)
	}
	e.SessionID = session.String
	if body != nil {
		e.Body = body
	}
	return &e, nil
}
