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
	st, err := s.Store.Stats(ctx, kycd.StatsSince(s.now(), window), kycd.PageLimit(limit))
	if err != nil {
		return nil, err
	}
	st.Window = kycd.FormatStatsWindow(window)
	return st, nil
}
