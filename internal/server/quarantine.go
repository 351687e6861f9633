package server

import (
	"net/http"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

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
		items, _, err := o.App.ListQuarantine(r.Context(), all, limit)
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
	return handleRead(o, func(r *http.Request) (any, error) {
		it, err := o.App.QuarantineItem(r.Context(), actorOf(r), pathID(r))
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

// handleQuarantineSummary answers a quarantined body as the list shows it,
// without the bytes it holds: what any token may read of it, unaudited.
func handleQuarantineSummary(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		it, err := o.App.QuarantineSummary(r.Context(), pathID(r))
		if err != nil {
			return nil, err
		}
		out, err := quarantineViews(r, o, []*kycd.Quarantined{it}, false)
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

// QuarantineView is a quarantined body as the API shows it, with whether
// a replay can succeed now and, if not, why. Body is the refused body as
// text (it may not be JSON at all); lists leave the bodies out.
type QuarantineView struct {
	*kycd.Quarantined
	Replayable    bool    `json:"replayable"`
	ReplayBlocked string  `json:"replayBlocked,omitempty"`
	Body          *string `json:"body,omitempty"`
	OriginalBody  *string `json:"originalBody,omitempty"`
}

// quarantineViews shows items with their replay checks, and their bodies
// when bodies is set.
func quarantineViews(r *http.Request, o Options, items []*kycd.Quarantined, bodies bool) ([]QuarantineView, error) {
	checks, err := o.Ingester.ReplayChecks(r.Context(), items)
	if err != nil {
		return nil, err
	}
	out := make([]QuarantineView, len(items))
	for i, it := range items {
		out[i] = QuarantineView{Quarantined: it, Replayable: checks[i].Replayable, ReplayBlocked: checks[i].Why}
		if bodies {
			out[i].Body, out[i].OriginalBody = bodyText(it.Body), bodyText(it.OriginalBody)
		}
	}
	return out, nil
}

// Discarded is the answer to a discard.
type Discarded struct {
	ID          string    `json:"id"`
	DiscardedAt time.Time `json:"discardedAt"`
	DiscardedBy string    `json:"discardedBy"`
}

// handleQuarantineDiscard gives a quarantined body up: kept, marked with
// who and when, out of the pending list; never deleted here.
func handleQuarantineDiscard(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, actor := pathID(r), actorOf(r)
		at, err := o.App.DiscardQuarantine(r.Context(), actor, id)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, Discarded{ID: id, DiscardedAt: at, DiscardedBy: actor.Name})
	})
}
