package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kycd/kycd"
)

// Session returns a session with its checks and history, all from its
// one row, as stored (kycd.Session.Complete fills the rest).
func (s *Store) Session(ctx context.Context, id string) (*kycd.Session, error) {
	sess, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionReadColumns+` FROM sessions WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: session: %w", s.notFound(err, "session %s not found", id))
	}
	return sess, nil
}

// SubjectTypes lists the types id is known under: its rows in subjects
// (kept for a level or an expiration warning) and its sessions.
func (s *Store) SubjectTypes(ctx context.Context, id string) ([]string, error) {
	var out []string
	err := queryRows(ctx, s.r, `SELECT type FROM subjects WHERE id = ? UNION SELECT subject_type FROM sessions WHERE subject_id = ?`,
		[]any{id, id}, func(rows *sql.Rows) error {
			var typ string
			err := rows.Scan(&typ)
			out = append(out, typ)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject types: %w", translate(s, err))
	}
	return out, nil
}

// Subject returns a subject with its level and sessions, newest first.
func (s *Store) Subject(ctx context.Context, ref kycd.SubjectRef) (*kycd.Subject, error) {
	sub := &kycd.Subject{Type: ref.Type, ID: ref.ID}
	var level, levelAt sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT level, level_at FROM subjects WHERE id = ? AND type = ?`, ref.ID, ref.Type).Scan(&level, &levelAt)
	sub.Recorded = err == nil
	if errors.Is(err, sql.ErrNoRows) {
		err = nil // a subject known only by its sessions
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject: %w", translate(s, err))
	}
	sub.Level = level.String
	if levelAt.Valid {
		if sub.LevelAt, err = parseTime(levelAt.String); err != nil {
			return nil, fmt.Errorf("sqlite: subject: %w", err)
		}
	}
	err = queryRows(ctx, s.r, `SELECT id, status, status_at FROM sessions WHERE subject_id = ? AND subject_type = ? ORDER BY status_at DESC, id`,
		[]any{ref.ID, ref.Type}, func(rows *sql.Rows) error {
			var ss kycd.SessionSummary
			var at string
			if err := rows.Scan(&ss.ID, &ss.Status, &at); err != nil {
				return err
			}
			var err error
			ss.StatusAt, err = parseTime(at)
			sub.Sessions = append(sub.Sessions, ss)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject sessions: %w", translate(s, err))
	}
	return sub, nil
}

// Event returns a projected event with its raw body while retained, read
// from the log file by the event's seq.
func (s *Store) Event(ctx context.Context, id string) (*kycd.EventRecord, error) {
	var e kycd.EventRecord
	var seq int64
	var ts, received string
	var session sql.NullString
	err := s.r.QueryRowContext(ctx,
		`SELECT seq, id, type, ts, received_at, outcome, session_id, body_hash FROM events WHERE id = ?`, id,
	).Scan(&seq, &e.ID, &e.Type, &ts, &received, &e.Outcome, &session, &e.BodyHash)
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
	body, err := s.LogBody(ctx, seq)
	if err != nil && kycd.ErrorCode(err) != kycd.ENOTFOUND {
		return nil, fmt.Errorf("sqlite: event: %w", err)
	}
	if body != nil {
		e.Body = body
	}
	return &e, nil
}
