package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// What support needs beyond the plain reads: sessions found by reason code
// and time, a session's notifications and their deliveries, and the
// quarantine's bodies judged and given up.

// SessionNotifications is the answer of GET /api/v1/sessions/{id}/notifications:
// every notification the session produced, oldest first, each with its
// deliveries.
type SessionNotifications struct {
	SessionID string                   `json:"sessionId"`
	Items     []*kycd.SentNotification `json:"items"`
}

func handleSessionNotifications(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		s, err := o.App.Session(r.Context(), pathID(r))
		if err != nil {
			return nil, err
		}
		items, err := o.App.Notifications(r.Context(), kycd.SessionNotificationIDs(s))
		if err != nil {
			return nil, err
		}
		for _, n := range items {
			n.Payload = withoutPersonalData(n.Payload)
			for _, d := range n.Deliveries {
				app.RedactDelivery(d)
			}
		}
		return SessionNotifications{SessionID: s.ID, Items: items}, nil
	})
}

// withoutPersonalData is a notification's payload without its personal
// data (kycd.RedactPayload): support sees what was sent and when, not whom
// to write to nor what was said about them.
func withoutPersonalData(payload json.RawMessage) json.RawMessage {
	out, _ := kycd.RedactPayload(payload)
	return out
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
