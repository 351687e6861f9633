package server

import (
	"context"
	"net/http"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// handleRead answers GET requests: read returns the JSON answer, or an
// error that becomes a problem (EINVALID 400, ENOTFOUND 404, …).
func handleRead(o Options, read func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := read(r)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// handleAuditedRead answers a read of personal data as handleRead does,
// once the read is in the audit trail (under action, with its outcome); a
// read that cannot be recorded is not answered.
func handleAuditedRead(o Options, action string, read func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := read(r)
		if aerr := o.recordResult(r, action, auditTarget(action, r), err, ""); aerr != nil && err == nil {
			err = kycd.Errorf(kycd.EUNAVAILABLE, "the read could not be recorded in the audit trail; try again")
		}
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

func bodyText(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(validUTF8(b))
	return &s
}

// validUTF8 is kycd.ValidUTF8: bodies are shown with U+FFFD for bytes
// that are not UTF-8, their stored bytes unchanged.
func validUTF8(b []byte) []byte { return kycd.ValidUTF8(b) }

func handleQuarantineList(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		all := r.URL.Query().Get("all") == "1" || r.URL.Query().Get("all") == "true"
		items, err := o.Store.Quarantine(r.Context(), all, kycd.PageLimit(limit))
		if err != nil {
			return nil, err
		}
		out, err := quarantineViews(r, o, items, false)
		if err != nil {
			return nil, err
		}
		return map[string]any{"items": out}, nil
	})
}

func handleQuarantineItem(o Options) http.Handler {
	return handleAuditedRead(o, kycd.AuditQuarantineRead, func(r *http.Request) (any, error) {
		it, err := o.Store.QuarantineItem(r.Context(), pathID(r))
		if err != nil {
			return nil, err
		}
		out, err := quarantineViews(r, o, []*kycd.Quarantined{it}, true)
		if err != nil {
			return nil, err
		}
		return out[0], nil
	})
}

// ReplayResult is the answer to a quarantine replay.
type ReplayResult struct {
	QuarantineID string `json:"quarantineId"`
	EventID      string `json:"eventId"`
	Outcome      string `json:"outcome"`
	Duplicate    bool   `json:"duplicate,omitempty"`
}

func handleQuarantineReplay(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := pathID(r)
		res, err := o.App.ReplayQuarantine(r.Context(), actorOf(r), o.Ingester, id)
		if err != nil {
			// The replay request itself is fine; the stored body is what is
			// still wrong, hence 422 rather than 400.
			if kycd.ErrorCode(err) == kycd.EINVALID {
				p := ingest.Problem(err)
				p.Status = http.StatusUnprocessableEntity
				writeProblem(w, p)
				return
			}
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, ReplayResult{QuarantineID: id, EventID: res.EventID, Outcome: res.Outcome, Duplicate: res.Duplicate})
	})
}

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
