package server

import (
	"context"
	"net/http"
	"time"
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
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
