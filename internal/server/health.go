package server

import (
	"context"
	"net/http"
	"time"

	"github.com/kycd/kycd"
)

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func handleReadyz(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Draining.Load() {
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "shutting down"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := o.Store.Ping(ctx); err != nil {
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "store not reachable"})
			return
		}
		// A store that answers reads but cannot commit (a full disk, a
		// read-only database) answers every webhook 503: not ready either.
		if err := o.Ingester.Writable(ctx); err != nil {
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "the event log cannot take commits"})
			return
		}
		// The log takes commits but the projection does not (its file is
		// full, or another process holds its write lock): events are
		// acknowledged and neither projected nor notified.
		if err := o.Ingester.Projecting(); err != nil {
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable,
				Detail: kycd.ErrorMessage(err) + "; events are acknowledged but not projected or notified until it commits again"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
