package kycd

import "time"

// Notification types.
const (
	NotifySessionRejected  = "kyc.session.rejected"
	NotifySessionVerified  = "kyc.session.verified"
	NotifySessionReview    = "kyc.session.review"
	NotifySessionExpired   = "kyc.session.expired"
	NotifySessionInvited   = "kyc.session.invited"
	NotifyKYCLevelUpdated  = "kyc.level.updated"
	NotifyKYBLevelUpdated  = "kyb.level.updated"
	NotifyDocumentExpiring = "kyc.document.expiring"
	// NotifySessionStalled is the watchdog's: a session stuck in REVIEW or
	// an invitation past its expiry (see NewStalledNotification).
	NotifySessionStalled = "kyc.session.stalled"
)

// Notification tells the merchant's systems what an applied event changed.
// Its ID is the same on every delivery attempt, so receivers drop repeats.
type Notification struct {
	ID            string      `json:"id"`
	Type          string      `json:"type"`
	OccurredAt    time.Time   `json:"occurredAt"`
	SourceEventID string      `json:"sourceEventId,omitempty"` // none on kyc.subject.erased
	SessionID     string      `json:"sessionId,omitempty"`
	Subject       SubjectRef  `json:"subject,omitzero"`
	Status        Status      `json:"status,omitempty"`
	Failures      []Failure   `json:"failures,omitzero"`
	Level         string      `json:"level,omitempty"`
	Invitation    *Invitation `json:"invitation,omitempty"`
	Expiration    *Expiration `json:"expiration,omitempty"`
	// StalledReason is set on kyc.session.stalled: StalledReviewOverdue or
	// StalledInvitationExpired.
	StalledReason string `json:"stalledReason,omitempty"`
	// PreviousStatus is, on a session notification, the session's status
	// before the event; absent on the session's first.
	PreviousStatus Status `json:"previousStatus,omitempty"`
	// SessionVersion is, on a session notification, the session's version
	// once the event was applied (Session.Version: its applied events).
	// A receiver applies a notification only if its SessionVersion is
	// higher than the one it holds. kyc.session.stalled carries the
	// version of the state it is about.
	SessionVersion int64 `json:"sessionVersion,omitempty"`
}

// NotificationType returns the notification type an event produces when it
// is applied, or "" for events that notify nothing.
func NotificationType(ev *Event) string {
	switch {
	case ev.Status == StatusRejected:
		return NotifySessionRejected
	case ev.Status == StatusVerified:
		return NotifySessionVerified
	case ev.Status == StatusReview:
		return NotifySessionReview
	case ev.Status == StatusExpired:
		return NotifySessionExpired
	case ev.Status == StatusNotStarted:
		return NotifySessionInvited
	case ev.Level != "" && ev.Subject.Type == SubjectBusiness:
		return NotifyKYBLevelUpdated
	case ev.Level != "":
		return NotifyKYCLevelUpdated
	case ev.Expiration != nil:
		return NotifyDocumentExpiring
	}
	return ""
}

// NewNotification builds the notification for ev under the given id, or
// returns nil when ev notifies nothing. Rejections carry the flat failure
// list, each failure with guidance from guide (which may be nil).
// PlanBatch adds a session notification's PreviousStatus and
// SessionVersion, which the event alone does not tell.
func NewNotification(id string, ev *Event, guide func(code string) string) *Notification {
	typ := NotificationType(ev)
	if typ == "" {
		return nil
	}
	n := &Notification{
		ID:            id,
		Type:          typ,
		OccurredAt:    ev.Timestamp,
		SourceEventID: ev.ID,
		SessionID:     ev.SessionID,
		Subject:       ev.Subject,
		Status:        ev.Status,
		Level:         ev.Level,
		Invitation:    ev.Invitation,
		Expiration:    ev.Expiration,
	}
	if ev.Status == StatusRejected {
		n.Failures = Failures(ev.Checks)
		if guide != nil {
			for i := range n.Failures {
				n.Failures[i].Guidance = guide(n.Failures[i].Code)
			}
		}
	}
	return n
}

// SessionChange is what an applied session event changed: the status the
// session had before it ("" for its first) and its version after it.
// Zero for events of no session.
type SessionChange struct {
	PreviousStatus Status
	Version        int64
}

// NotificationTypes lists every notification type a sink's events filter
// may name.
func NotificationTypes() []string {
	return []string{
		NotifySessionRejected, NotifySessionVerified, NotifySessionReview, NotifySessionExpired, NotifySessionInvited,
		NotifyKYCLevelUpdated, NotifyKYBLevelUpdated, NotifyDocumentExpiring, NotifySessionStalled,
		NotifySubjectErased,
	}
}

// OrderKey names what a notification is ordered with at each sink: its
// session's other notifications (s:SESSION), or, for one that concerns no
// session (a level, a document expiry, an erasure), its subject's
// (u:TYPE:ID); n:ID, ordered with nothing, for one that names neither. A
// sink of order session sends a delivery only once every earlier one of
// its key there was delivered or given up (docs/decisions.md, "Ordered
// outbox").
func (n *Notification) OrderKey() string {
	switch {
	case n.SessionID != "":
		return "s:" + n.SessionID
	case n.Subject.ID != "":
		return "u:" + n.Subject.Type + ":" + n.Subject.ID
	}
	return "n:" + n.ID
}
