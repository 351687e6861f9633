package server

import (
	"encoding/json"
	"net/http"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// A session's notifications with their deliveries, and how the API leaves
// the personal data out of a notification's payload.

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

// withoutInvitation is a notification payload without its personal data
// (kycd.RedactPayload: the invitation, the failures' messages, an
// expiration warning's action text), for a token that may not read it,
// and whether it held any.
func withoutInvitation(payload json.RawMessage) (json.RawMessage, bool) {
	return kycd.RedactPayload(payload)
}
