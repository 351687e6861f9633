package kycd

import (
	"time"
)

// Status is a KYC session's state, as Ralio names it.
type Status string

// Session states. No Ralio event announces STARTED; it is listed because
// Ralio's API reports it.
const (
	StatusNotStarted Status = "NOT_STARTED"
	StatusStarted    Status = "STARTED"
	StatusVerified   Status = "VERIFIED"
	StatusReview     Status = "REVIEW"
	StatusRejected   Status = "REJECTED"
	StatusExpired    Status = "EXPIRED"
)

// Session is a KYC session's current state and history.
type Session struct {
	ID            string         `json:"sessionId"`
	Subject       SubjectRef     `json:"subject"`
	Status        Status         `json:"status"`
	StatusAt      time.Time      `json:"statusAt"` // the status event's ordering time (kycd.OrderingTime)
	StatusEventID string         `json:"statusEventId"`
	ExpiresAt     time.Time      `json:"expiresAt,omitzero"` // the invitation's, as the status event gave it; zero for other sessions
	Checks        []Check        `json:"checks"`
	Failures      []Failure      `json:"failures"`
	History       []HistoryEntry `json:"history"`
	// Version is the session's version: how many of its events were
	// applied (SessionVersion). Every notification of the session carries
	// the version it brought the session to.
	Version int64 `json:"sessionVersion"`
}

// SessionVersion is the version of a session with this history: the
// number of its events that were applied. Stale events, duplicates and a
// transition learnt again from the other source are in the history
// unapplied, so they do not count. It grows by one with each applied
// event, is the same on every replica (they share the row) and after a
// rebuild (which applies the log in the same order), and is derived, not
// stored, so every existing session has one.
func SessionVersion(history []HistoryEntry) int64 {
	var n int64
	for _, h := range history {
		if h.Applied {
			n++
		}
	}
	return n
}

// Complete fills what every read of a session shows beyond its stored
// row: lists, never null, and the failure reasons of its checks
// (Failures). The stores return the row as written; the application layer
// completes it.
func (s *Session) Complete() {
	if s.Checks == nil {
		s.Checks = []Check{}
	}
	for i := range s.Checks {
		if s.Checks[i].Reasons == nil {
			s.Checks[i].Reasons = []Reason{}
		}
	}
	if s.History == nil {
		s.History = []HistoryEntry{}
	}
	s.Failures = Failures(s.Checks)
	s.Version = SessionVersion(s.History)
}

// HistoryEntry is one event of a session, applied or stale.
type HistoryEntry struct {
	EventID    string    `json:"eventId"`
	Event      string    `json:"event"`
	Timestamp  time.Time `json:"timestamp"`
	ReceivedAt time.Time `json:"receivedAt"`
	Status     Status    `json:"status"`
	Applied    bool      `json:"applied"`
	Source     string    `json:"source,omitempty"` // "reconciliation"; absent for a webhook
	// ClockSkew marks an event stamped more than the maximum clock skew
	// after its receipt; it is ordered at OrderedAt (kycd.OrderingTime),
	// not at its timestamp. Both are absent for every other event.
	ClockSkew bool      `json:"clockSkew,omitempty"`
	OrderedAt time.Time `json:"orderedAt,omitzero"`
}

// orderedAt is the time the entry is ordered at in a session's history.
func (h HistoryEntry) orderedAt() time.Time {
	if h.ClockSkew {
		return h.OrderedAt
	}
	return h.Timestamp
}

// SessionFilter selects sessions to list. Zero fields select all.
type SessionFilter struct {
	Status    Status
	SubjectID string
	Limit     int    // 1 to 500; 50 when 0
	Cursor    string // from the previous page's NextCursor

	// Code selects sessions whose current checks give a reason with this
	// code (the reasons of the event that set their status).
	Code string
	// Since and Until bound the status time: Since <= statusAt < Until.
	Since, Until time.Time
}

// SessionQuery tells a store which sessions to read: those Status,
// SubjectID, Code, Since and Until select (zero fields select all), newest
// status first (status time descending, then id), after the position After
// in that order (zero: from the first), at most Limit rows. The
// application layer (internal/app) makes a SessionFilter into a query.
type SessionQuery struct {
	Status    Status
	SubjectID string
	// Code selects sessions whose current checks give a reason with this
	// code.
	Code string
	// Since and Until bound the status time: Since <= statusAt < Until.
	Since, Until time.Time
	After        Position
	Limit        int
}

// SessionStatuses are the statuses a session may have, in the order a
// list of them is shown.
var SessionStatuses = []Status{StatusNotStarted, StatusStarted, StatusVerified, StatusReview, StatusRejected, StatusExpired}

// SessionPage is one page of sessions, newest status first.
type SessionPage struct {
	Sessions   []SessionListItem `json:"sessions"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

// SessionListItem is a session as a list shows it.
type SessionListItem struct {
	ID       string     `json:"sessionId"`
	Subject  SubjectRef `json:"subject"`
	Status   Status     `json:"status"`
	StatusAt time.Time  `json:"statusAt"`
	// Version is Session.Version; a store counts the applied entries of
	// the history as SessionVersion does.
	Version int64 `json:"sessionVersion"`
}

// Supersedes reports whether an event at (ts, id) is newer than the one at
// (curTS, curID) that set the current state. Events are ordered by their
// ordering time (OrderingTime: Ralio's timestamp, bounded by the receipt
// plus the maximum clock skew), then by event id, so every replica and
// every arrival order agrees on the winner.
func Supersedes(ts time.Time, id string, curTS time.Time, curID string) bool {
	if !ts.Equal(curTS) {
		return ts.After(curTS)
	}
	return id > curID
}
