package kycd

import (
	"encoding/json"
	"time"
)

// SentNotification is a notification kycd wrote, with its deliveries (one
// per sink it went to), each with its attempts and the actions operators
// took on it: what a session's page shows of what the merchant's systems
// were told.
type SentNotification struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	EventID   string          `json:"eventId"` // the event it tells of (the status event, for kyc.session.stalled)
	CreatedAt time.Time       `json:"createdAt"`
	Payload   json.RawMessage `json:"notification"`
	// Deliveries are oldest first, without their payload (Payload holds
	// it once).
	Deliveries []*Delivery `json:"deliveries"`
}

// SessionNotificationIDs lists the ids of every notification a session can
// have produced: one per event of its history (NotificationID) and one per
// stall in the state an event put it in (StalledNotificationID). Ids are
// derived, never random, so the notifications of a session are found by
// their keys, without an index from notification to session. Most of the
// ids name nothing (a stale event notifies nothing; few sessions stall).
func SessionNotificationIDs(s *Session) []string {
	ids := make([]string, 0, 2*len(s.History))
	for _, h := range s.History {
		ids = append(ids, NotificationID(h.EventID), StalledNotificationID(s.ID, h.EventID))
	}
	return ids
}
