package server

import (
	"net/http"

	"github.com/kycd/kycd"
)

func handleStats(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		window, err := kycd.ParseStatsWindow(r.URL.Query().Get("window"))
		if err != nil {
			return nil, err
		}
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		return o.App.Stats(r.Context(), window, limit)
	})
}

func handleReconciliations(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		runs, err := o.App.Reconciliations(r.Context(), limit)
		if err != nil {
			return nil, err
		}
		return map[string][]*kycd.Reconciliation{"reconciliations": runs}, nil
	})
}
