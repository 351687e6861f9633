package kycd

import "time"

// StatusFor returns the session status a Ralio event type sets, or "" when
// the type does not set one.
func StatusFor(eventType string) Status {
	switch eventType {
	case "kyc_session_failed":
		return StatusRejected
	case "kyc_session_verified":
		return StatusVerified
	case "kyc_session_manual_review":
		return StatusReview
	case "kyc_session_expired":
		return StatusExpired
	case "related_party.kyc_session_created":
		return StatusNotStarted
	}
	return ""
}

// Supersedes reports whether an event at (ts, id) is newer than the one at
// (curTS, curID) that set the current state. Events are ordered by Ralio's
// timestamp, then by event id, so every replica and every arrival order
// agrees on the winner.
func Supersedes(ts time.Time, id string, curTS time.Time, curID string) bool {
	if !ts.Equal(curTS) {
		return ts.After(curTS)
	}
	return id > curID
}
