package server

import (
	"net/http"

	"github.com/kycd/kycd"
)

// handleStalledSessions lists the sessions stalled now, by the same rule
// (kycd.StalledAt) and threshold as the watchdog that notifies them.
func handleStalledSessions(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		f := kycd.StalledAt(o.Now(), o.ReviewAlertAfter)
		f.Limit, f.Cursor = limit, r.URL.Query().Get("cursor")
		return o.Store.StalledSessions(r.Context(), f)
	})
}
