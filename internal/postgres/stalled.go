package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// StalledSessions reads the sessions past the filter's thresholds, oldest
// status first. Both halves of the condition are ranges of the
// (status, status_at) index: REVIEW by its time, NOT_STARTED by its
// status, then compared with expires_at.
func (s *Store) StalledSessions(ctx context.Context, f kycd.StalledFilter) ([]kycd.StalledSession, error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	var which []string
	if !f.ReviewBefore.IsZero() {
		which = append(which, `(status = `+arg(string(kycd.StatusReview))+` AND status_at < `+arg(f.ReviewBefore)+`)`)
	}
	if !f.ExpiredBy.IsZero() {
		which = append(which, `(status = `+arg(string(kycd.StatusNotStarted))+` AND expires_at <= `+arg(f.ExpiredBy)+`)`)
	}
	if len(which) == 0 {
		return nil, nil
	}
	q := `SELECT id, subject_type, subject_id, status, status_at, status_event_id, expires_at, ` + sqlSessionVersion + ` FROM sessions
		WHERE (` + strings.Join(which, " OR ") + `)`
	if !f.After.IsZero() {
		at := arg(f.After.At)
		q += ` AND (status_at > ` + at + ` OR (status_at = ` + at + ` AND id > ` + arg(f.After.ID) + `))`
	}
	q += ` ORDER BY status_at, id LIMIT ` + arg(f.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: stalled sessions: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (kycd.StalledSession, error) {
		var it kycd.StalledSession
		var expires *time.Time
		err := row.Scan(&it.ID, &it.Subject.Type, &it.Subject.ID, &it.Status, &it.StatusAt, &it.StatusEventID, &expires, &it.Version)
		it.StatusAt, it.ExpiresAt = it.StatusAt.UTC(), derefTime(expires)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: stalled sessions: %w", translate(s, err))
	}
	return out, nil
}
