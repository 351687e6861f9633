package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// Sessions lists sessions by status time, newest first.
func (s *Store) Sessions(ctx context.Context, f kycd.SessionFilter) (*kycd.SessionPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q := `SELECT id, subject_type, subject_id, status, status_at FROM sessions WHERE 1 = 1`
	var args []any
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.SubjectID != "" {
		q += ` AND subject_id = ?`
		args = append(args, f.SubjectID)
	}
	if f.Code != "" {
		q += ` AND EXISTS (SELECT 1 FROM json_each(checks) c, json_each(c.value, '$.reasons') r
			WHERE r.type = 'object' AND r.value ->> '$.code' = ?)`
		args = append(args, f.Code)
	}
	if !f.Since.IsZero() {
		q += ` AND status_at >= ?`
		args = append(args, formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND status_at < ?`
		args = append(args, formatTime(f.Until))
	}
	if f.Cursor != "" {
		t, id, err := kycd.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		at := formatTime(t)
		q += ` AND (status_at < ? OR (status_at = ? AND id > ?))`
		args = append(args, at, at, id)
	}
	q += ` ORDER BY status_at DESC, id LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sessions: %w", translate(s, err))
	}
	defer rows.Close()
	page := &kycd.SessionPage{Sessions: []kycd.SessionListItem{}}
	for rows.Next() {
		var it kycd.SessionListItem
		var at string
		if err := rows.Scan(&it.ID, &it.Subject.Type, &it.Subject.ID, &it.Status, &at); err != nil {
			return nil, fmt.Errorf("sqlite: sessions: %w", translate(s, err))
		}
		if len(page.Sessions) == limit {
			last := page.Sessions[limit-1]
			page.NextCursor = kycd.EncodeCursor(last.StatusAt, last.ID)
			break
		}
		if it.StatusAt, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("sqlite: sessions: %w", err)
		}
		page.Sessions = append(page.Sessions, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: sessions: %w", translate(s, err))
	}
	return page, nil
}

// Events lists events by arrival, last first: by seq, which is the log's
// commit order. The cursor names the page's last row by its received_at
// and id; the next page starts below that row's seq (or, should the row be
// gone, as after a rebuild, below the first row received since).
func (s *Store) Events(ctx context.Context, f kycd.EventFilter) (*kycd.EventPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q := `SELECT id, type, ts, received_at, outcome, session_id, body_hash FROM events WHERE 1 = 1`
	var args []any
	if f.Type != "" {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	if f.Cursor != "" {
		t, id, err := kycd.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		q += ` AND seq < coalesce(
			(SELECT seq FROM events WHERE id = ?),
			(SELECT min(seq) FROM events WHERE received_at >= ?),
			(SELECT max(seq) + 1 FROM events), 0)`
		args = append(args, id, formatTime(t))
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", translate(s, err))
	}
	defer rows.Close()
	page := &kycd.EventPage{Events: []kycd.EventRecord{}}
	for rows.Next() {
		var e kycd.EventRecord
		var ts, received string
		var session sql.NullString
		if err := rows.Scan(&e.ID, &e.Type, &ts, &received, &e.Outcome, &session, &e.BodyHash); err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", translate(s, err))
		}
		if len(page.Events) == limit {
			last := page.Events[limit-1]
			page.NextCursor = kycd.EncodeCursor(last.ReceivedAt, last.ID)
			break
		}
		if e.Timestamp, err = parseTime(ts); err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		if e.ReceivedAt, err = parseTime(received); err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		e.SessionID = session.String
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", translate(s, err))
	}
	return page, nil
}

// rejectedReasons is every reason of every check of the sessions rejected
// since a time (the one argument), from the checks JSON of their rows.
const rejectedReasons = `sessions s, json_each(s.checks) c, json_each(c.value, '$.reasons') r
	WHERE s.status = 'REJECTED' AND s.status_at >= ? AND r.type = 'object'`

// reasonCode is a reason's code in rejectedReasons.
const reasonCode = `coalesce(r.value ->> '$.code', '')`

// Stats counts sessions by status and the failure codes of recent
// rejections.
func (s *Store) Stats(ctx context.Context, since time.Time, limit int) (*kycd.Stats, error) {
	st := &kycd.Stats{Since: since, SessionsBy: map[kycd.Status]int{}, TopFailureCodes: []kycd.CodeCount{}, FailuresByDay: []kycd.DayCodeCount{}}
	rows, err := s.r.QueryContext(ctx, `SELECT status, count(*) FROM sessions GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
	}
	for rows.Next() {
		var status kycd.Status
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
		}
		st.SessionsBy[status] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
	}
	rows, err = s.r.QueryContext(ctx, `
		SELECT `+reasonCode+` AS code, count(*) AS n FROM `+rejectedReasons+`
		GROUP BY code ORDER BY n DESC, code LIMIT ?`, formatTime(since), kycd.PageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
	}
	for rows.Next() {
		var c kycd.CodeCount
		if err := rows.Scan(&c.Code, &c.Count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
		}
		st.TopFailureCodes = append(st.TopFailureCodes, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
	}
	if len(st.TopFailureCodes) == 0 {
		return st, nil
	}
	// Stored times are fixed-width UTC text: the first ten characters are
	// the day.
	args := []any{formatTime(since)}
	for _, c := range st.TopFailureCodes {
		args = append(args, c.Code)
	}
	rows, err = s.r.QueryContext(ctx, `
		SELECT substr(s.status_at, 1, 10) AS day, `+reasonCode+` AS code, count(*) FROM `+rejectedReasons+`
			AND `+reasonCode+` IN (`+placeholders(len(st.TopFailureCodes))+`)
		GROUP BY day, code ORDER BY day, code`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
	}
	defer rows.Close()
	for rows.Next() {
		var d kycd.DayCodeCount
		if err := rows.Scan(&d.Day, &d.Code, &d.Count); err != nil {
			return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
		}
		st.FailuresByDay = append(st.FailuresByDay, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", translate(s, err))
	}
	return st, nil
}
