package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/kycd/kycd"
)

// Sessions lists sessions by status time, newest first.
func (s *Store) Sessions(ctx context.Context, f kycd.SessionFilter) (*kycd.SessionPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q := `SELECT id, subject_type, subject_id, status, status_at FROM sessions WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Status != "" {
		q += ` AND status = ` + arg(string(f.Status))
	}
	if f.SubjectID != "" {
		q += ` AND subject_id = ` + arg(f.SubjectID)
	}
	if f.Code != "" {
		q += ` AND EXISTS (SELECT 1 FROM json_array_elements(checks) AS c(v),
			json_array_elements(CASE WHEN json_typeof(c.v->'reasons') = 'array' THEN c.v->'reasons' ELSE '[]' END) AS r(v)
			WHERE r.v->>'code' = ` + arg(f.Code) + `)`
	}
	if !f.Since.IsZero() {
		q += ` AND status_at >= ` + arg(f.Since)
	}
	if !f.Until.IsZero() {
		q += ` AND status_at < ` + arg(f.Until)
	}
	if f.Cursor != "" {
		t, id, err := kycd.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		at := arg(t)
		q += ` AND (status_at < ` + at + ` OR (status_at = ` + at + ` AND id > ` + arg(id) + `))`
	}
	q += ` ORDER BY status_at DESC, id LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions: %w", translate(s, err))
	}
	defer rows.Close()
	page := &kycd.SessionPage{Sessions: []kycd.SessionListItem{}}
	for rows.Next() {
		var it kycd.SessionListItem
		if err := rows.Scan(&it.ID, &it.Subject.Type, &it.Subject.ID, &it.Status, &it.StatusAt); err != nil {
			return nil, fmt.Errorf("postgres: sessions: %w", translate(s, err))
		}
		if len(page.Sessions) == limit {
			last := page.Sessions[limit-1]
			page.NextCursor = kycd.EncodeCursor(last.StatusAt, last.ID)
			break
		}
		it.StatusAt = it.StatusAt.UTC()
		page.Sessions = append(page.Sessions, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: sessions: %w", translate(s, err))
	}
	return page, nil
}

// Events lists events by arrival (seq), last first.
func (s *Store) Events(ctx context.Context, f kycd.EventFilter) (*kycd.EventPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q := `SELECT id, type, ts, received_at, outcome, session_id, body_hash FROM events WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.Type != "" {
		q += ` AND type = ` + arg(f.Type)
	}
	if f.Cursor != "" {
		_, id, err := kycd.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		// The cursor names the last row shown; the page goes on below its
		// seq. Its time is not needed: seq alone orders arrivals.
		q += ` AND seq < (SELECT seq FROM events WHERE id = ` + arg(id) + `)`
	}
	q += ` ORDER BY seq DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", translate(s, err))
	}
	defer rows.Close()
	page := &kycd.EventPage{Events: []kycd.EventRecord{}}
	for rows.Next() {
		var e kycd.EventRecord
		var session *string
		if err := rows.Scan(&e.ID, &e.Type, &e.Timestamp, &e.ReceivedAt, &e.Outcome, &session, &e.BodyHash); err != nil {
			return nil, fmt.Errorf("postgres: events: %w", translate(s, err))
		}
		if len(page.Events) == limit {
			last := page.Events[limit-1]
			page.NextCursor = kycd.EncodeCursor(last.ReceivedAt, last.ID)
			break
		}
		e.Timestamp, e.ReceivedAt = e.Timestamp.UTC(), e.ReceivedAt.UTC()
		e.SessionID = deref(session)
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: events: %w", translate(s, err))
	}
	return page, nil
}

// rejectedReasons is every reason of every check of the sessions rejected
// since $1, as rows r(code) beside their session s. A check stored without
// reasons (JSON null) has none.
const rejectedReasons = `sessions s
	CROSS JOIN json_array_elements(s.checks) AS c(v)
	CROSS JOIN LATERAL (
		SELECT v->>'code' AS code FROM json_array_elements(CASE WHEN json_typeof(c.v->'reasons') = 'array' THEN c.v->'reasons' ELSE '[]' END) AS r(v)
	) AS r
	WHERE s.status = 'REJECTED' AND s.status_at >= $1`

// Stats counts sessions by status and the failure codes of recent
// rejections, read from the checks of rejected sessions.
func (s *Store) Stats(ctx context.Context, since time.Time, limit int) (*kycd.Stats, error) {
	st := &kycd.Stats{Since: since, SessionsBy: map[kycd.Status]int{}, TopFailureCodes: []kycd.CodeCount{}, FailuresByDay: []kycd.DayCodeCount{}}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM sessions GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
	}
	for rows.Next() {
		var status kycd.Status
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
		}
		st.SessionsBy[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
	}
	rows, err = s.pool.Query(ctx, `
		SELECT r.code, count(*) AS n FROM `+rejectedReasons+`
		GROUP BY r.code ORDER BY n DESC, r.code COLLATE "C" LIMIT $2`, since, kycd.PageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
	}
	var codes []string
	for rows.Next() {
		var c kycd.CodeCount
		if err := rows.Scan(&c.Code, &c.Count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
		}
		st.TopFailureCodes = append(st.TopFailureCodes, c)
		codes = append(codes, c.Code)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
	}
	if len(codes) == 0 {
		return st, nil
	}
	rows, err = s.pool.Query(ctx, `
		SELECT to_char(s.status_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, r.code, count(*) FROM `+rejectedReasons+`
		AND r.code = ANY($2)
		GROUP BY day, r.code ORDER BY day, r.code COLLATE "C"`, since, codes)
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
	}
	defer rows.Close()
	for rows.Next() {
		var d kycd.DayCodeCount
		if err := rows.Scan(&d.Day, &d.Code, &d.Count); err != nil {
			return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
		}
		st.FailuresByDay = append(st.FailuresByDay, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", translate(s, err))
	}
	return st, nil
}
