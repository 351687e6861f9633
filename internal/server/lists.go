package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/kycd/kycd"
)

// DefaultStatsWindow is the window of /api/v1/stats's failure codes unless
// ?window= says otherwise.
const DefaultStatsWindow = 7 * 24 * time.Hour

// queryLimit reads ?limit=, naming it when it is not a number.
func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, kycd.Errorf(kycd.EINVALID, "limit must be a positive number (at most 500)")
	}
	return n, nil
}

func handleSessionList(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		q := r.URL.Query()
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		f := kycd.SessionFilter{Status: kycd.Status(q.Get("status")), SubjectID: q.Get("subject"), Limit: limit, Cursor: q.Get("cursor")}
		switch f.Status {
		case "", kycd.StatusNotStarted, kycd.StatusStarted, kycd.StatusVerified, kycd.StatusReview, kycd.StatusRejected, kycd.StatusExpired:
		default:
			return nil, kycd.Errorf(kycd.EINVALID, "status must be one of NOT_STARTED, STARTED, VERIFIED, REVIEW, REJECTED, EXPIRED")
		}
		if err := sessionSearch(q, &f); err != nil {
			return nil, err
		}
		return o.Store.Sessions(r.Context(), f)
	})
}

func handleEventList(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		q := r.URL.Query()
		return o.Store.Events(r.Context(), kycd.EventFilter{Type: q.Get("type"), Limit: limit, Cursor: q.Get("cursor")})
	})
}

func handleStats(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		window := DefaultStatsWindow
		if v := r.URL.Query().Get("window"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, kycd.Errorf(kycd.EINVALID, "window must be a positive duration, e.g. 24h")
			}
			window = d
		}
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		return o.Store.Stats(r.Context(), o.Now().Add(-window), limit)
	})
}

func handleReconciliations(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		runs, err := o.Store.Reconciliations(r.Context(), limit)
		if err != nil {
			return nil, err
		}
		return map[string][]*kycd.Reconciliation{"reconciliations": runs}, nil
	})
}
