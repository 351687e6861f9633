package server

import (
	"fmt"
	"net/http"

	"github.com/kycd/kycd/internal/app"
)

// handleSubjectExport answers everything kept about a subject, once the
// read is in the audit trail (app.ExportSubject).
func handleSubjectExport(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := app.Actor{Name: callerOf(r).Name, Remote: remoteHost(r)}
		x, err := o.App.ExportSubject(r.Context(), a, pathID(r), r.URL.Query().Get("type"))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="kycd-%s-%s.json"`, x.Subject.Type, x.Subject.ID))
		writeJSON(w, http.StatusOK, x)
	})
}

// handleSubjectErase erases a subject's personal data and answers the
// receipt (app.EraseSubject, which records it in the audit trail).
func handleSubjectErase(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := app.Actor{Name: callerOf(r).Name, Remote: remoteHost(r)}
		receipt, err := o.App.EraseSubject(r.Context(), a, pathID(r), r.URL.Query().Get("type"))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		// The subject's id is in the audit trail, not in the logs.
		o.Logger.InfoContext(r.Context(), "subject erased", "subject_type", receipt.Subject.Type,
			"actor", a.Name, "notification_id", receipt.NotificationID)
		writeJSON(w, http.StatusOK, receipt)
	})
}

// caughtUp lets a request through once every event acknowledged before it
// is projected, and answers 503 otherwise: an erasure must not miss an
// event it has not seen yet.
func caughtUp(o Options, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caught, err := o.Ingester.CaughtUp(r.Context(), o.ReadWait)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		if !caught {
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "events acknowledged before this request are not projected yet; try again"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
