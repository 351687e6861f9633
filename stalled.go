package kycd

import (
	"time"

	"github.com/google/uuid"
)

// Why a session is stalled: someone should follow it up.
const (
	// StalledReviewOverdue is a session in REVIEW for longer than the
	// review alert threshold: the person who was to decide has not.
	StalledReviewOverdue = "review_overdue"
	// StalledInvitationExpired is a related party's invitation
	// (NOT_STARTED) past its expiresAt: the party never verified.
	StalledInvitationExpired = "invitation_expired"
)

// DefaultReviewAlertAfter is how long a session may stay in REVIEW before
// it is stalled, unless configured.
const DefaultReviewAlertAfter = 48 * time.Hour

// StalledFilter asks a store for the sessions past the thresholds it
// carries, oldest status first. The thresholds are computed in Go (StalledAt), so every store
// applies the same rule; a store only compares.
type StalledFilter struct {
	// ReviewBefore selects sessions in REVIEW since before this time; zero
	// selects none.
	ReviewBefore time.Time
	// ExpiredBy selects sessions in NOT_STARTED whose invitation expired
	// at or before this time; zero selects none. Sessions without an
	// expiry are never selected.
	ExpiredBy time.Time
	// After is where the page starts: after this position in the order
	// of the list (status time, then id); zero for the first page.
	After Position
	// Limit is how many rows a store reads.
	Limit int
}

// StalledAt is the filter of the sessions stalled at now: in REVIEW for
// longer than reviewAlertAfter (DefaultReviewAlertAfter when 0 or less),
// or invitations whose expiry has passed.
func StalledAt(now time.Time, reviewAlertAfter time.Duration) StalledFilter {
	if reviewAlertAfter <= 0 {
		reviewAlertAfter = DefaultReviewAlertAfter
	}
	return StalledFilter{ReviewBefore: now.Add(-reviewAlertAfter).UTC(), ExpiredBy: now.UTC()}
}

// StalledSession is a session that someone should follow up, with why.
type StalledSession struct {
	ID            string     `json:"sessionId"`
	Subject       SubjectRef `json:"subject"`
	Status        Status     `json:"status"`
	StatusAt      time.Time  `json:"statusAt"`
	StatusEventID string     `json:"statusEventId"`
	ExpiresAt     time.Time  `json:"expiresAt,omitzero"`
	// Version is Session.Version, counted by the store as for
	// SessionListItem.
	Version int64 `json:"sessionVersion"`
	// Reason is StalledReviewOverdue or StalledInvitationExpired.
	Reason string `json:"stalledReason"`
}

// StalledPage is one page of stalled sessions, oldest status first (the
// longest waiting at the top).
type StalledPage struct {
	Sessions   []StalledSession `json:"sessions"`
	NextCursor string           `json:"nextCursor,omitempty"`
}

// StalledReason is the reason a session of the given status is stalled
// once a StalledFilter selected it.
func StalledReason(st Status) string {
	if st == StatusNotStarted {
		return StalledInvitationExpired
	}
	return StalledReviewOverdue
}

// StalledNotificationID is the id of the one notification a session gets
// for being stalled in the state one event put it in. Derived, not random:
// every watchdog round, on every replica, writes the same notification, and
// the store keeps the first. A session that leaves the state and comes back
// to it (another event) is notified again.
func StalledNotificationID(sessionID, statusEventID string) string {
	return uuid.NewSHA1(notificationNamespace, []byte("stalled|"+sessionID+"|"+statusEventID)).String()
}

// NewStalledNotification is the kyc.session.stalled notification of s. It
// occurred when the session crossed the line: its invitation's expiry, or
// reviewAlertAfter after it entered REVIEW. It carries no personal data.
func NewStalledNotification(s StalledSession, reviewAlertAfter time.Duration) *Notification {
	if reviewAlertAfter <= 0 {
		reviewAlertAfter = DefaultReviewAlertAfter
	}
	at := s.StatusAt.Add(reviewAlertAfter)
	if s.Reason == StalledInvitationExpired {
		at = s.ExpiresAt
	}
	return &Notification{
		ID:             StalledNotificationID(s.ID, s.StatusEventID),
		Type:           NotifySessionStalled,
		OccurredAt:     at.UTC(),
		SourceEventID:  s.StatusEventID,
		SessionID:      s.ID,
		Subject:        s.Subject,
		Status:         s.Status,
		SessionVersion: s.Version,
		StalledReason:  s.Reason,
	}
}
