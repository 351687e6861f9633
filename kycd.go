// Package kycd holds what kycd is about: Ralio events as kycd records them,
// the KYC sessions and subjects they project into, the notifications they
// produce, and the Store that keeps them. It imports nothing else of kycd;
// adapters (sqlite, server, ingest, …) translate the outside world into these
// types.
package kycd

import (
	"encoding/json"
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

// Subject types.
const (
	SubjectUser         = "user"
	SubjectRelatedParty = "related-party"
	SubjectBusiness     = "business"
)

// Outcomes of an ingested event, as recorded with it.
const (
	OutcomeApplied   = "applied"   // it changed a session or subject, or notified
	OutcomeStale     = "stale"     // older than the state it would change; kept in history only
	OutcomeUnhandled = "unhandled" // an event type kycd does not act on, stored
	OutcomeDuplicate = "duplicate" // the same event again: no effect (never stored as an outcome)
)

// SubjectRef identifies whom a session or level belongs to.
type SubjectRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// IsZero reports whether no subject is set.
func (s SubjectRef) IsZero() bool { return s.ID == "" }

// Event is one Ralio event as kycd records it: its envelope, its raw body,
// and the effect it asks for. Exactly one of Status, Level, Expiration is set
// for events kycd acts on; none for unhandled types.
type Event struct {
	ID         string    // Ralio's event id (UUID), unique
	Type       string    // canonical Ralio event type
	Timestamp  time.Time // Ralio's timestamp; orders events
	ReceivedAt time.Time
	Body       []byte // raw body as received and signed
	BodyHash   string // hex SHA-256 of the compacted body; tells a duplicate from a conflict

	SessionID  string
	Subject    SubjectRef
	Status     Status  // the session status a session event sets
	Checks     []Check // the session's checks as this event gives them
	Level      string  // the level a level event sets (REGULAR, LIGHT)
	Invitation *Invitation
	Expiration *Expiration

	// Source is where kycd learnt of the event: "" for a Ralio webhook,
	// SourceReconciliation for a transition found in Ralio's REST API.
	Source string
}

// SourceReconciliation marks events that reconciliation found in Ralio's
// REST API rather than received as webhooks.
const SourceReconciliation = "reconciliation"

// Check is one verification check of a session.
type Check struct {
	Type    string   `json:"type"`
	State   string   `json:"state"`
	Reasons []Reason `json:"reasons"`
}

// Reason explains why a check did not pass.
type Reason struct {
	Type     string `json:"type"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Category string `json:"category,omitempty"`
}

// Failure is one reason flattened with its check, as the merchant acts on it.
type Failure struct {
	CheckType string `json:"checkType"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Guidance  string `json:"guidance,omitempty"`
}

// Failures flattens every reason of every check, in order.
func Failures(checks []Check) []Failure {
	out := []Failure{}
	for _, c := range checks {
		for _, r := range c.Reasons {
			out = append(out, Failure{CheckType: c.Type, Code: r.Code, Message: r.Message})
		}
	}
	return out
}

// Invitation is a related party's invitation to verify. It is personal data:
// never logged, kept only as long as the retention allows.
type Invitation struct {
	BusinessUserID  int64     `json:"businessUserId,omitempty"`
	RoleType        string    `json:"roleType,omitempty"`
	FirstName       string    `json:"firstName,omitempty"`
	LastName        string    `json:"lastName,omitempty"`
	Email           string    `json:"email,omitempty"`
	PhoneNumber     string    `json:"phoneNumber,omitempty"`
	VerificationURL string    `json:"verificationUrl,omitempty"`
	ExpiresAt       time.Time `json:"expiresAt,omitzero"`
}

// Expiration warns that a subject's verified document expires soon.
type Expiration struct {
	Date          string `json:"expirationDate"`
	DaysRemaining int    `json:"daysRemaining"`
	Action        string `json:"action,omitempty"`
}

// Session is a KYC session's current state and history.
type Session struct {
	ID            string         `json:"sessionId"`
	Subject       SubjectRef     `json:"subject"`
	Status        Status         `json:"status"`
	StatusAt      time.Time      `json:"statusAt"`
	StatusEventID string         `json:"statusEventId"`
	ExpiresAt     time.Time      `json:"expiresAt,omitzero"` // the invitation's, as the status event gave it; zero for other sessions
	Checks        []Check        `json:"checks"`
	Failures      []Failure      `json:"failures"`
	History       []HistoryEntry `json:"history"`
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
}

// Subject is a user, related party or business with its level and sessions.
type Subject struct {
	Type     string           `json:"type"`
	ID       string           `json:"id"`
	Level    string           `json:"level,omitempty"`
	LevelAt  time.Time        `json:"levelAt,omitzero"`
	Sessions []SessionSummary `json:"sessions"`
}

// SessionSummary is a session as listed under its subject.
type SessionSummary struct {
	ID       string    `json:"sessionId"`
	Status   Status    `json:"status"`
	StatusAt time.Time `json:"statusAt"`
}

// EventRecord is a stored event as the read API shows it.
type EventRecord struct {
	ID         string          `json:"eventId"`
	Type       string          `json:"type"`
	Timestamp  time.Time       `json:"timestamp"`
	ReceivedAt time.Time       `json:"receivedAt"`
	Outcome    string          `json:"outcome"`
	SessionID  string          `json:"sessionId,omitempty"`
	BodyHash   string          `json:"bodyHash"`
	Body       json.RawMessage `json:"body,omitempty"` // nil once purged by retention
}

// Quarantine reasons.
const (
	QuarantineInvalid  = "invalid"  // answered 400
	QuarantineConflict = "conflict" // answered 409: a known event id with another body
	// QuarantineUnstorable is an event acknowledged (200) that the store
	// then refused for good while projecting it: kept so that it neither
	// blocks every later event nor is lost.
	QuarantineUnstorable = "unstorable"
)

// Quarantined is a signed body that kycd refused, kept so an operator can
// replay it after a fix. Ralio never retries a 4xx, so this is the only copy.
type Quarantined struct {
	ID           string          `json:"id"`
	ReceivedAt   time.Time       `json:"receivedAt"`
	Reason       string          `json:"reason"`
	Problem      json.RawMessage `json:"problem"` // the RFC 9457 problem answered
	EventID      string          `json:"eventId,omitempty"`
	Body         []byte          `json:"-"`
	OriginalBody []byte          `json:"-"` // for conflicts: the body stored first under EventID
	ReplayedAt   time.Time       `json:"replayedAt,omitzero"`
	ReplayResult string          `json:"replayResult,omitempty"`
	// DiscardedAt and DiscardedBy say that an operator gave the body up:
	// it is kept (until the retention purges it) but no longer pending.
	DiscardedAt time.Time `json:"discardedAt,omitzero"`
	DiscardedBy string    `json:"discardedBy,omitempty"`
}

// IngestResult says what Store.Ingest did with an event.
type IngestResult struct {
	Duplicate      bool   // the same event was stored before; nothing changed
	Outcome        string // OutcomeApplied, OutcomeStale or OutcomeUnhandled
	NotificationID string // set when the event produced a notification
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
}

// EventFilter selects events to list. Zero fields select all.
type EventFilter struct {
	Type   string
	Limit  int    // 1 to 500; 50 when 0
	Cursor string // from the previous page's NextCursor
}

// EventPage is one page of events, last received first, without bodies.
type EventPage struct {
	Events     []EventRecord `json:"events"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

// Stats summarises sessions: how many are in each status, and the failure
// codes of the sessions rejected since a time, most frequent first.
type Stats struct {
	Since           time.Time      `json:"since"`
	SessionsBy      map[Status]int `json:"sessionsByStatus"`
	TopFailureCodes []CodeCount    `json:"topFailureCodes"`
	// FailuresByDay counts the same failure codes by the UTC day the
	// session was rejected, oldest day first, for a chart over time.
	FailuresByDay []DayCodeCount `json:"failuresByDay"`
}

// DayCodeCount is how often a failure code occurred on one day.
type DayCodeCount struct {
	Day   string `json:"day"` // YYYY-MM-DD, UTC
	Code  string `json:"code"`
	Count int    `json:"count"`
}

// CodeCount is how often a failure code occurs.
type CodeCount struct {
	Code  string `json:"code"`
	Count int    `json:"count"`
}

// PageLimit clamps a requested page size to 1..500, 50 by default.
func PageLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}

// QuarantineSettled says why a quarantined body is no longer pending:
// ECONFLICT naming its replay or its discard; nil for a pending one.
func QuarantineSettled(q *Quarantined) error {
	switch {
	case !q.DiscardedAt.IsZero():
		return Errorf(ECONFLICT, "quarantined body %s was discarded already (by %s)", q.ID, q.DiscardedBy)
	case !q.ReplayedAt.IsZero():
		return Errorf(ECONFLICT, "quarantined body %s was replayed already (%s)", q.ID, q.ReplayResult)
	}
	return nil
}
