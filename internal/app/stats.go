package app

import (
	"context"
	"time"

	"github.com/kycd/kycd"
)

// Stats counts sessions by status, and the failure codes (at most limit,
// kycd.PageLimit) of the sessions rejected within window back from now
// (kycd.DefaultStatsWindow when 0). EINVALID for a window that is not
// positive. The answer names its window, so the dashboard shows the
// default it did not choose.
func (s *Service) Stats(ctx context.Context, window time.Duration, limit int) (*kycd.Stats, error) {
	if window == 0 {
		window = kycd.DefaultStatsWindow
	}
	if err := kycd.CheckStatsWindow(window); err != nil {
		return nil, err
	}
	since := kycd.StatsSince(s.now(), window)
	st := &kycd.Stats{Window: kycd.FormatStatsWindow(window), Since: since}
	var err error
	if st.SessionsBy, err = s.Store.SessionCounts(ctx); err != nil {
		return nil, err
	}
	if st.TopFailureCodes, err = s.Store.FailureCodes(ctx, since, kycd.PageLimit(limit)); err != nil {
		return nil, err
	}
	// The chart over time shows the codes the ranking shows.
	codes := make([]string, len(st.TopFailureCodes))
	for i, c := range st.TopFailureCodes {
		codes[i] = c.Code
	}
	if st.FailuresByDay, err = s.Store.FailureCodesByDay(ctx, since, codes); err != nil {
		return nil, err
	}
	st.TopFailureCodes, st.FailuresByDay = nonNil(st.TopFailureCodes), nonNil(st.FailuresByDay)
	return st, nil
}
