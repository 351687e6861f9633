package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kycd/kycd"
)

// StalledSessions lists the sessions past the filter's thresholds, oldest
// status first. Both halves of the condition are ranges of the
// (status, status_at) index: REVIEW by its time, NOT_STARTED by its
// status, then compared with expires_at.
func (s *Store) StalledSessions(ctx context.Context, f kycd.StalledFilter) (*kycd.StalledPage, error) {
	limit := kycd.PageLimit(f.Limit)
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	var which []string
	if !f.ReviewBefore.IsZero() {
		which = append(which, `(status = `+arg(string(kycd.StatusReview))+` AND status_at < `+arg(f.ReviewBefore)+`)`)
	}
	if !f.ExpiredBy.IsZero() {
		which = append(which, `(status = `+arg(string(kycd.StatusNotStarted))+` AND expires_at <= `+arg(f.ExpiredBy)+`)`)
	}
	q := `SELECT id, subject_type, subject_id, status, status_at, status_event_id, expires_at FROM sessions
		WHERE (` + strings.Join(which, " OR ") + `)`
	if f.Cursor != "" {
		t, id, err := kycd.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		at := arg(t)
		q += ` AND (status_at > ` + at + ` OR (status_at = ` + at + ` AND id > ` + arg(id) + `))`
	}
	page := &kycd.StalledPage{Sessions: []kycd.StalledSession{}}
	if len(which) == 0 {
		return page, nil
	}
	q += ` ORDER BY status_at, id LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: stalled sessions: %w", translate(s, err))
	}
	defer rows.Close()
	for rows.Next() {
		var it kycd.StalledSession
		var expires *time.Time
		if err := rows.Scan(&it.ID, &it.Subject.Type, &it.Subject.ID, &it.Status, &it.StatusAt, &it.StatusEventID, &expires); err != nil {
			return nil, fmt.Errorf("postgres: stalled sessions: %w", translate(s, err))
		}
		if len(page.Sessions) == limit {
			last := page.Sessions[limit-1]
			page.NextCursor = kycd.EncodeCursor(last.StatusAt, last.ID)
			break
		}
		it.StatusAt, it.ExpiresAt = it.StatusAt.UTC(), derefTime(expires)
		it.Reason = kycd.StalledReason(it.Status)
		page.Sessions = append(page.Sessions, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stalled sessions: %w", translate(s, err))
	}
	return page, nil
}
