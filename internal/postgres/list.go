package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// sqlSessionVersion is a session row's version, kycd.SessionVersion of its
// history: the number of its applied entries. Counted in the query so that
// a list does not decode every history.
const sqlSessionVersion = `(SELECT count(*) FROM json_array_elements(history) h WHERE (h->>'applied')::boolean)`

// Sessions reads the sessions q selects, newest status first.
func (s *Store) Sessions(ctx context.Context, q kycd.SessionQuery) ([]kycd.SessionListItem, error) {
	query := `SELECT id, subject_type, subject_id, status, status_at, ` + sqlSessionVersion + ` FROM sessions WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if q.Status != "" {
		query += ` AND status = ` + arg(string(q.Status))
	}
	if q.SubjectID != "" {
		query += ` AND subject_id = ` + arg(q.SubjectID)
	}
	if q.Code != "" {
		query += ` AND EXISTS (SELECT 1 FROM json_array_elements(checks) AS c(v),
			json_array_elements(CASE WHEN json_typeof(c.v->'reasons') = 'array' THEN c.v->'reasons' ELSE '[]' END) AS r(v)
			WHERE r.v->>'code' = ` + arg(q.Code) + `)`
	}
	if !q.Since.IsZero() {
		query += ` AND status_at >= ` + arg(q.Since)
	}
	if !q.Until.IsZero() {
		query += ` AND status_at < ` + arg(q.Until)
	}
	if !q.After.IsZero() {
		at := arg(q.After.At)
		query += ` AND (status_at < ` + at + ` OR (status_at = ` + at + ` AND id > ` + arg(q.After.ID) + `))`
	}
	query += ` ORDER BY status_at DESC, id LIMIT ` + arg(q.Limit)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (kycd.SessionListItem, error) {
		var it kycd.SessionListItem
		err := row.Scan(&it.ID, &it.Subject.Type, &it.Subject.ID, &it.Status, &it.StatusAt, &it.Version)
		it.StatusAt = it.StatusAt.UTC()
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: sessions: %w", translate(s, err))
	}
	return out, nil
}

// Events reads the events q selects, by seq (the log's commit order),
// last first.
func (s *Store) Events(ctx context.Context, q kycd.EventQuery) ([]kycd.EventRecord, error) {
	query := `SELECT id, type, ts, received_at, outcome, session_id, body_hash FROM events WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if q.Type != "" {
		query += ` AND type = ` + arg(q.Type)
	}
	if q.BelowSeq > 0 {
		query += ` AND seq < ` + arg(q.BelowSeq)
	}
	query += ` ORDER BY seq DESC LIMIT ` + arg(q.Limit)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (kycd.EventRecord, error) {
		var e kycd.EventRecord
		var session *string
		err := row.Scan(&e.ID, &e.Type, &e.Timestamp, &e.ReceivedAt, &e.Outcome, &session, &e.BodyHash)
		e.Timestamp, e.ReceivedAt = e.Timestamp.UTC(), e.ReceivedAt.UTC()
		e.SessionID = deref(session)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", translate(s, err))
	}
	return out, nil
}

// EventSeq returns the seq of an event.
func (s *Store) EventSeq(ctx context.Context, id string) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT seq FROM events WHERE id = $1`, id).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: event seq: %w", s.notFound(err, "event %s not found", id))
	}
	return seq, nil
}

// FirstEventSeqSince returns the least seq of the events received at or
// after t.
func (s *Store) FirstEventSeqSince(ctx context.Context, t time.Time) (int64, error) {
	var seq *int64
	if err := s.pool.QueryRow(ctx, `SELECT min(seq) FROM events WHERE received_at >= $1`, t).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: event seq: %w", translate(s, err))
	}
	if seq == nil {
		return 0, kycd.Errorf(kycd.ENOTFOUND, "no event received since %s", t.UTC().Format(time.RFC3339Nano))
	}
	return *seq, nil
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

// SessionCounts counts sessions by status.
func (s *Store) SessionCounts(ctx context.Context) (map[kycd.Status]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM sessions GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("postgres: session counts: %w", translate(s, err))
	}
	out := map[kycd.Status]int{}
	var status kycd.Status
	var n int
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		out[status] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: session counts: %w", translate(s, err))
	}
	return out, nil
}

// FailureCodes counts the reason codes of the sessions rejected since
// since, most frequent first, then by code.
func (s *Store) FailureCodes(ctx context.Context, since time.Time, limit int) ([]kycd.CodeCount, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT r.code, count(*) AS n FROM `+rejectedReasons+`
		GROUP BY r.code ORDER BY n DESC, r.code COLLATE "C" LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: failure codes: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (kycd.CodeCount, error) {
		var c kycd.CodeCount
		err := row.Scan(&c.Code, &c.Count)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: failure codes: %w", translate(s, err))
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
	rows, err := s.pool.Query(ctx, `
		SELECT to_char(s.status_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, r.code, count(*) FROM `+rejectedReasons+`
		AND r.code = ANY($2)
		GROUP BY day, r.code ORDER BY day, r.code COLLATE "C"`, since, codes)
	if err != nil {
		return nil, fmt.Errorf("postgres: failure codes by day: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (kycd.DayCodeCount, error) {
		var d kycd.DayCodeCount
		err := row.Scan(&d.Day, &d.Code, &d.Count)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: failure codes by day: %w", translate(s, err))
	}
	return out, nil
}
