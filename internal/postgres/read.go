package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// Session returns a session with its checks, failures and history, all
// from its one row.
func (s *Store) Session(ctx context.Context, id string) (*kycd.Session, error) {
	st := kycd.SessionState{ID: id}
	var expires *time.Time
	var checks, history []byte
	err := s.pool.QueryRow(ctx,
		`SELECT subject_type, subject_id, status, status_at, status_event_id, expires_at, checks, history FROM sessions WHERE id = $1`, id,
	).Scan(&st.Subject.Type, &st.Subject.ID, &st.Status, &st.StatusAt, &st.StatusEventID, &expires, &checks, &history)
	if err != nil {
		return nil, fmt.Errorf("postgres: session: %w", s.notFound(err, "session %s not found", id))
	}
	if err := decodeSession(&st, checks, history); err != nil {
		return nil, fmt.Errorf("postgres: session: %w", err)
	}
	sess := &kycd.Session{
		ID: id, Subject: st.Subject, Status: st.Status, StatusAt: st.StatusAt, StatusEventID: st.StatusEventID,
		ExpiresAt: derefTime(expires), Checks: st.Checks, History: st.History,
	}
	if sess.Checks == nil {
		sess.Checks = []kycd.Check{}
	}
	for i := range sess.Checks {
		if sess.Checks[i].Reasons == nil {
			sess.Checks[i].Reasons = []kycd.Reason{}
		}
	}
	if sess.History == nil {
		sess.History = []kycd.HistoryEntry{}
	}
	sess.Failures = kycd.Failures(sess.Checks)
	return sess, nil
}

// Subject returns a subject with its level and sessions, newest first. A
// subject has a subjects row only once it has a level (or an expiration
// warning); otherwise its sessions are what make it known.
func (s *Store) Subject(ctx context.Context, id, typ string) (*kycd.Subject, error) {
	sub := &kycd.Subject{ID: id, Sessions: []kycd.SessionSummary{}}
	var level *string
	var levelAt *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT type, level, level_at FROM (
			SELECT type, level, level_at FROM subjects WHERE id = $1 AND ($2 = '' OR type = $2)
			UNION ALL
			(SELECT subject_type, NULL, NULL FROM sessions WHERE subject_id = $1 AND ($2 = '' OR subject_type = $2)
				ORDER BY subject_type COLLATE "C" LIMIT 1)
		) AS known ORDER BY type COLLATE "C", level IS NULL LIMIT 1`, id, typ,
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

// Event returns a stored event with its raw body, from the log, while
// retained.
func (s *Store) Event(ctx context.Context, id string) (*kycd.EventRecord, error) {
	var e kycd.EventRecord
	var session *string
	var body []byte
	err := s.pool.QueryRow(ctx, `
		SELECT e.id, e.type, e.ts, e.received_at, e.outcome, e.session_id, e.body_hash, l.body
		FROM events e LEFT JOIN event_log l ON l.seq = e.seq WHERE e.id = $1`, id,
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
