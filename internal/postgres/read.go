package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// Session returns a session with its checks and history, all from its
// one row, as stored (kycd.Session.Complete fills the rest).
func (s *Store) Session(ctx context.Context, id string) (*kycd.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionReadColumns+` FROM sessions WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: session: %w", s.notFound(err, "session %s not found", id))
	}
	return sess, nil
}

// SubjectTypes lists the types id is known under: its rows in subjects
// (kept for a level or an expiration warning) and its sessions.
func (s *Store) SubjectTypes(ctx context.Context, id string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT type FROM subjects WHERE id = $1 UNION SELECT subject_type FROM sessions WHERE subject_id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: subject types: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: subject types: %w", translate(s, err))
	}
	return out, nil
}

// Subject returns a subject with its level and sessions, newest first.
func (s *Store) Subject(ctx context.Context, ref kycd.SubjectRef) (*kycd.Subject, error) {
	sub := &kycd.Subject{Type: ref.Type, ID: ref.ID}
	var level *string
	var levelAt *time.Time
	err := s.pool.QueryRow(ctx, `SELECT level, level_at FROM subjects WHERE id = $1 AND type = $2`, ref.ID, ref.Type).Scan(&level, &levelAt)
	sub.Recorded = err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil // a subject known only by its sessions
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: subject: %w", translate(s, err))
	}
	sub.Level = deref(level)
	if levelAt != nil {
		sub.LevelAt = levelAt.UTC()
	}
	rows, err := s.pool.Query(ctx,
		`SELECT id, status, status_at FROM sessions WHERE subject_id = $1 AND subject_type = $2 ORDER BY status_at DESC, id`, ref.ID, ref.Type)
	if err != nil {
		return nil, fmt.Errorf("postgres: subject sessions: %w", translate(s, err))
	}
	sub.Sessions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (kycd.SessionSummary, error) {
		var ss kycd.SessionSummary
		err := row.Scan(&ss.ID, &ss.Status, &ss.StatusAt)
		ss.StatusAt = ss.StatusAt.UTC()
		return ss, err
	})
	if err != nil {
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
