package app

import (
	"context"
	"time"

	"github.com/kycd/kycd"
)

// StalledRequest asks for a page of the sessions stalled now.
type StalledRequest struct {
	// ReviewAlertAfter is how long a session may stay in REVIEW
	// (kycd.DefaultReviewAlertAfter when 0): the watchdog's threshold.
	ReviewAlertAfter time.Duration
	Limit            int    // kycd.PageLimit
	Cursor           string // from the previous page's NextCursor
}

// StalledSessions lists the sessions stalled now (kycd.StalledAt), oldest
// status first, a page at a time, each with its reason: the API's and the
// dashboard's list, and the watchdog's rounds. EINVALID for a cursor that
// is not one of this list's.
func (s *Service) StalledSessions(ctx context.Context, r StalledRequest) (*kycd.StalledPage, error) {
	return ListStalled(ctx, s.Store, s.now(), r)
}

// StalledReader is the store read ListStalled makes.
type StalledReader interface {
	StalledSessions(ctx context.Context, f kycd.StalledFilter) ([]kycd.StalledSession, error)
}

// ListStalled is StalledSessions at now over any store that reads stalled
// sessions: the watchdog's rounds, which need no more of a store.
func ListStalled(ctx context.Context, st StalledReader, now time.Time, r StalledRequest) (*kycd.StalledPage, error) {
	f := kycd.StalledAt(now, r.ReviewAlertAfter)
	after, err := kycd.ParsePosition(r.Cursor)
	if err != nil {
		return nil, err
	}
	limit := kycd.PageLimit(r.Limit)
	f.After, f.Limit = after, limit+1
	rows, err := st.StalledSessions(ctx, f)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		rows[i].Reason = kycd.StalledReason(rows[i].Status)
	}
	p := kycd.NewPage(rows, limit, func(it kycd.StalledSession) string {
		return kycd.Position{At: it.StatusAt, ID: it.ID}.Cursor()
	})
	return &kycd.StalledPage{Sessions: nonNil(p.Items), NextCursor: p.NextCursor}, nil
}
