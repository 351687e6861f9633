package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/kycd/kycd"
)

// StalledSessions lists the sessions past the filter's thresholds, oldest
// status first. Both halves of the condition are ranges of the
// (status, status_at) index: REVIEW by its time, NOT_STARTED by its
// status, then compared with expires_at.
func (s *Store) StalledSessions(ctx context.Context, f kycd.StalledFilter) (*kycd.StalledPage, error) {
	limit := kycd.PageLimit(f.Limit)
	var which []string
	var args []any
	if !f.ReviewBefore.IsZero() {
		which = append(which, `(status = ? AND status_at < ?)`)
		args = append(args, kycd.StatusReview, formatTime(f.ReviewBefore))
	}
	if !f.ExpiredBy.IsZero() {
		which = append(which, `(status = ? AND expires_at <= ?)`)
		args = append(args, kycd.StatusNotStarted, formatTime(f.ExpiredBy))
	}
	q := `SELECT id, subject_type, subject_id, status, status_at, status_event_id, expires_at FROM sessions
		WHERE (` + strings.Join(which, " OR ") + `)`
	if f.Cursor != "" {
		t, id, err := kycd.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		at := formatTime(t)
		q += ` AND (status_at > ? OR (status_at = ? AND id > ?))`
		args = append(args, at, at, id)
	}
	page := &kycd.StalledPage{Sessions: []kycd.StalledSession{}}
	if len(which) == 0 {
		return page, nil
	}
	q += ` ORDER BY status_at, id LIMIT ?`
	args = append(args, limit+1)
	err := queryRows(ctx, s.r, q, args, func(rows *sql.Rows) error {
		var it kycd.StalledSession
		var at string
		var expires sql.NullString
		if err := rows.Scan(&it.ID, &it.Subject.Type, &it.Subject.ID, &it.Status, &at, &it.StatusEventID, &expires); err != nil {
			return err
		}
		if len(page.Sessions) == limit {
			last := page.Sessions[limit-1]
			page.NextCursor = kycd.EncodeCursor(last.StatusAt, last.ID)
			return nil
		}
		var err error
		if it.StatusAt, err = parseTime(at); err != nil {
			return err
		}
		if it.ExpiresAt, err = parseNullTime(expires); err != nil {
			return err
		}
		it.Reason = kycd.StalledReason(it.Status)
		page.Sessions = append(page.Sessions, it)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: stalled sessions: %w", translate(s, err))
	}
	return page, nil
}
