package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// sqlSessionVersion is a session row's version, kycd.SessionVersion of its
// history: the number of its applied entries. Counted in the query so that
// a list does not decode every history.
const sqlSessionVersion = `(SELECT count(*) FROM json_each(history) h WHERE h.value ->> '$.applied')`

// Sessions reads the sessions q selects, newest status first.
func (s *Store) Sessions(ctx context.Context, q kycd.SessionQuery) ([]kycd.SessionListItem, error) {
	query := `SELECT id, subject_type, subject_id, status, status_at, ` + sqlSessionVersion + ` FROM sessions WHERE 1 = 1`
	var args []any
	if q.Status != "" {
		query += ` AND status = ?`
		args = append(args, q.Status)
	}
	if q.SubjectID != "" {
		query += ` AND subject_id = ?`
		args = append(args, q.SubjectID)
	}
	if q.Code != "" {
		query += ` AND EXISTS (SELECT 1 FROM json_each(checks) c, json_each(c.value, '$.reasons') r
			WHERE r.type = 'object' AND r.value ->> '$.code' = ?)`
		args = append(args, q.Code)
	}
	if !q.Since.IsZero() {
		query += ` AND status_at >= ?`
		args = append(args, formatTime(q.Since))
	}
	if !q.Until.IsZero() {
		query += ` AND status_at < ?`
		args = append(args, formatTime(q.Until))
	}
	if !q.After.IsZero() {
		at := formatTime(q.After.At)
		query += ` AND (status_at < ? OR (status_at = ? AND id > ?))`
		args = append(args, at, at, q.After.ID)
	}
	query += ` ORDER BY status_at DESC, id LIMIT ?`
	args = append(args, q.Limit)
	var out []kycd.SessionListItem
	err := queryRows(ctx, s.r, query, args, func(rows *sql.Rows) error {
		var it kycd.SessionListItem
		var at string
		if err := rows.Scan(&it.ID, &it.Subject.Type, &it.Subject.ID, &it.Status, &at, &it.Version); err != nil {
			return err
		}
		var err error
		it.StatusAt, err = parseTime(at)
		out = append(out, it)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: sessions: %w", translate(s, err))
	}
	return out, nil
}

// Events reads the events q selects, by seq (the log's commit order),
// last first.
func (s *Store) Events(ctx context.Context, q kycd.EventQuery) ([]kycd.EventRecord, error) {
	query := `SELECT id, type, ts, received_at, outcome, session_id, body_hash FROM events WHERE 1 = 1`
	var args []any
	if q.Type != "" {
		query += ` AND type = ?`
		args = append(args, q.Type)
	}
	if q.BelowSeq > 0 {
		query += ` AND seq < ?`
		args = append(args, q.BelowSeq)
	}
	query += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, q.Limit)
	var out []kycd.EventRecord
	err := queryRows(ctx, s.r, query, args, func(rows *sql.Rows) error {
		var e kycd.EventRecord
		var ts, received string
		var session sql.NullString
		if err := rows.Scan(&e.ID, &e.Type, &ts, &received, &e.Outcome, &session, &e.BodyHash); err != nil {
			return err
		}
		var err error
		if e.Timestamp, err = parseTime(ts); err != nil {
			return err
		}
		if e.ReceivedAt, err = parseTime(received); err != nil {
			return err
		}
		e.SessionID = session.String
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", translate(s, err))
	}
	return out, nil
}

// EventSeq returns the seq of an event.
func (s *Store) EventSeq(ctx context.Context, id string) (int64, error) {
	var seq int64
	if err := s.r.QueryRowContext(ctx, `SELECT seq FROM events WHERE id = ?`, id).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: event seq: %w", s.notFound(err, "event %s not found", id))
	}
	return seq, nil
}

// FirstEventSeqSince returns the least seq of the events received at or
// after t.
func (s *Store) FirstEventSeqSince(ctx context.Context, t time.Time) (int64, error) {
	var seq sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(seq) FROM events WHERE received_at >= ?`, formatTime(t)).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: event seq: %w", translate(s, err))
	}
	if !seq.Valid {
		return 0, kycd.Errorf(kycd.ENOTFOUND, "no event received since %s", formatTime(t))
	}
	return seq.Int64, nil
}

// rejectedReasons is every reason of every check of the sessions rejected
// since a time (the one argument), from the checks JSON of their rows.
const rejectedReasons = `sessions s, json_each(s.checks) c, json_each(c.value, '$.reasons') r
	WHERE s.status = 'REJECTED' AND s.status_at >= ? AND r.type = 'object'`

// reasonCode is a reason's code in rejectedReasons.
const reasonCode = `coalesce(r.value ->> '$.code', '')`

// SessionCounts counts sessions by status.
func (s *Store) SessionCounts(ctx context.Context) (map[kycd.Status]int, error) {
	out := map[kycd.Status]int{}
	err := queryRows(ctx, s.r, `SELECT status, count(*) FROM sessions GROUP BY status`, nil, func(rows *sql.Rows) error {
		var status kycd.Status
		var n int
		err := rows.Scan(&status, &n)
		out[status] = n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: session counts: %w", translate(s, err))
	}
	return out, nil
}

// FailureCodes counts the reason codes of the sessions rejected since
// since, most frequent first, then by code.
func (s *Store) FailureCodes(ctx context.Context, since time.Time, limit int) ([]kycd.CodeCount, error) {
	var out []kycd.CodeCount
	err := queryRows(ctx, s.r, `
		SELECT `+reasonCode+` AS code, count(*) AS n FROM `+rejectedReasons+`
		GROUP BY code ORDER BY n DESC, code LIMIT ?`, []any{formatTime(since), limit}, func(rows *sql.Rows) error {
		var c kycd.CodeCount
		err := rows.Scan(&c.Code, &c.Count)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: failure codes: %w", translate(s, err))
	}
	return out, nil
}

// FailureCodesByDay counts the reason codes among codes of the sessions
// rejected since since, by the UTC day of their rejection, by day then
// code.
func (s *Store) FailureCodesByDay(ctx context.Context, since time.Time, codes []string) ([]kycd.DayCodeCount, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	// Stored times are fixed-width UTC text: the first ten characters are
	// the day.
	args := []any{formatTime(since)}
	for _, c := range codes {
		args = append(args, c)
	}
	var out []kycd.DayCodeCount
	err := queryRows(ctx, s.r, `
		SELECT substr(s.status_at, 1, 10) AS day, `+reasonCode+` AS code, count(*) FROM `+rejectedReasons+`
			AND `+reasonCode+` IN (`+placeholders(len(codes))+`)
		GROUP BY day, code ORDER BY day, code`, args, func(rows *sql.Rows) error {
		var d kycd.DayCodeCount
		err := rows.Scan(&d.Day, &d.Code, &d.Count)
		out = append(out, d)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: failure codes by day: %w", translate(s, err))
	}
	return out, nil
}
