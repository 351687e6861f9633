package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/kycd/kycd"
)

// StalledSessions reads the sessions past the filter's thresholds, oldest
// status first. Both halves of the condition are ranges of the
// (status, status_at) index: REVIEW by its time, NOT_STARTED by its
// status, then compared with expires_at.
func (s *Store) StalledSessions(ctx context.Context, f kycd.StalledFilter) ([]kycd.StalledSession, error) {
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
	if len(which) == 0 {
		return nil, nil
	}
	q := `SELECT id, subject_type, subject_id, status, status_at, status_event_id, expires_at, ` + sqlSessionVersion + ` FROM sessions
		WHERE (` + strings.Join(which, " OR ") + `)`
	if !f.After.IsZero() {
		at := formatTime(f.After.At)
		q += ` AND (status_at > ? OR (status_at = ? AND id > ?))`
		args = append(args, at, at, f.After.ID)
	}
	q += ` ORDER BY status_at, id LIMIT ?`
	args = append(args, f.Limit)
	var out []kycd.StalledSession
	err := queryRows(ctx, s.r, q, args, func(rows *sql.Rows) error {
		var it kycd.StalledSession
		var at string
		var expires sql.NullString
		if err := rows.Scan(&it.ID, &it.Subject.Type, &it.Subject.ID, &it.Status, &at, &it.StatusEventID, &expires, &it.Version); err != nil {
			return err
		}
		var err error
		if it.StatusAt, err = parseTime(at); err != nil {
			return err
		}
		if it.ExpiresAt, err = parseNullTime(expires); err != nil {
			return err
		}
		out = append(out, it)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: stalled sessions: %w", translate(s, err))
	}
	return out, nil
}
