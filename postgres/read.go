package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// Session returns a session with its checks, failures and history.
func (s *Store) Session(ctx context.Context, id string) (*kycd.Session, error) {
	sess := &kycd.Session{ID: id, Checks: []kycd.Check{}, History: []kycd.HistoryEntry{}}
	err := s.pool.QueryRow(ctx,
		`SELECT subject_type, subject_id, status, status_at, status_event_id FROM sessions WHERE id = $1`, id,
	).Scan(&sess.Subject.Type, &sess.Subject.ID, &sess.Status, &sess.StatusAt, &sess.StatusEventID)
	if err != nil {
		return nil, fmt.Errorf("postgres: session: %w", s.notFound(err, "session %s not found", id))
	}
	sess.StatusAt = sess.StatusAt.UTC()
	rows, err := s.pool.Query(ctx, `SELECT type, state FROM session_checks WHERE session_id = $1 ORDER BY position`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: session checks: %w", translate(s, err))
	}
	for rows.Next() {
		c := kycd.Check{Reasons: []kycd.Reason{}}
		if err := rows.Scan(&c.Type, &c.State); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: session checks: %w", translate(s, err))
		}
		sess.Checks = append(sess.Checks, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: session checks: %w", translate(s, err))
	}
	rows, err = s.pool.Query(ctx,
		`SELECT check_position, type, code, message, category FROM check_reasons WHERE session_id = $1 ORDER BY check_position, position`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: session reasons: %w", translate(s, err))
	}
	for rows.Next() {
		var i int
		var r kycd.Reason
		if err := rows.Scan(&i, &r.Type, &r.Code, &r.Message, &r.Category); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: session reasons: %w", translate(s, err))
		}
		if i < len(sess.Checks) {
			sess.Checks[i].Reasons = append(sess.Checks[i].Reasons, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: session reasons: %w", translate(s, err))
	}
	sess.Failures = kycd.Failures(sess.Checks)
	rows, err = s.pool.Query(ctx,
		`SELECT event_id, event, ts, received_at, status, applied FROM session_history WHERE session_id = $1 ORDER BY ts, event_id`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: session history: %w", translate(s, err))
	}
	for rows.Next() {
		var h kycd.HistoryEntry
		if err := rows.Scan(&h.EventID, &h.Event, &h.Timestamp, &h.ReceivedAt, &h.Status, &h.Applied); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: session history: %w", translate(s, err))
		}
		h.Timestamp, h.ReceivedAt = h.Timestamp.UTC(), h.ReceivedAt.UTC()
		sess.History = append(sess.History, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: session history: %w", translate(s, err))
	}
	return sess, nil
}

// Subject returns a subject with its level and sessions, newest first.
func (s *Store) Subject(ctx context.Context, id, typ string) (*kycd.Subject, error) {
	sub := &kycd.Subject{ID: id, Sessions: []kycd.SessionSummary{}}
	var level *string
	var levelAt *time.Time
	err := s.pool.QueryRow(ctx,
		`SELECT type, level, level_at FROM subjects WHERE id = $1 AND ($2 = '' OR type = $2) ORDER BY type LIMIT 1`, id, typ,
	).Scan(&sub.Type, &level, &levelAt)
	if err != nil {
		return nil, fmt.Errorf("postgres: subject: %w", s.notFound(err, "subject %s not found", id))
	}
	sub.Level = deref(level)
	if levelAt != nil {
		sub.LevelAt = levelAt.UTC()
	}
	rows, err := s.pool.Query(ctx,
		`SELECT id, status, status_at FROM sessions WHERE subject_id = $1 AND subject_type = $2 ORDER BY status_at DESC, id`, id, sub.Type)
	if err != nil {
		return nil, fmt.Errorf("postgres: subject sessions: %w", translate(s, err))
	}
	defer rows.Close()
	for rows.Next() {
		var ss kycd.SessionSummary
		if err := rows.Scan(&ss.ID, &ss.Status, &ss.StatusAt); err != nil {
			return nil, fmt.Errorf("postgres: subject sessions: %w", translate(s, err))
		}
		ss.StatusAt = ss.StatusAt.UTC()
		sub.Sessions = append(sub.Sessions, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: subject sessions: %w", translate(s, err))
	}
	return sub, nil
}

// Event returns a stored event with its raw body while retained.
func (s *Store) Event(ctx context.Context, id string) (*kycd.EventRecord, error) {
	var e kycd.EventRecord
	var session *string
	var body []byte
	err := s.pool.QueryRow(ctx,
		`SELECT id, type, ts, received_at, outcome, session_id, body_hash, body FROM events WHERE id = $1`, id,
	).Scan(&e.ID, &e.Type, &e.Timestamp, &e.ReceivedAt, &e.Outcome, &session, &e.BodyHash, &body)
	if err != nil {
		return nil, fmt.Errorf("postgres: event: %w", s.notFound(err, "event %s not found", id))
	}
	e.Timestamp, e.ReceivedAt = e.Timestamp.UTC(), e.ReceivedAt.UTC()
	e.SessionID = deref(session)
	if body != nil {
		e.Body = body
	}
	return &e, nil
}
