package kycd

import (
	"encoding/json"
	"time"
)

// Outcomes of an ingested event, as recorded with it.
const (
	OutcomeApplied   = "applied"   // it changed a session or subject, or notified
	OutcomeStale     = "stale"     // older than the state it would change; kept in history only
	OutcomeUnhandled = "unhandled" // an event type kycd does not act on, stored
	OutcomeDuplicate = "duplicate" // the same event again: no effect (never stored as an outcome)
)

// Event is one Ralio event as kycd records it: its envelope, its raw body,
// and the effect it asks for. Exactly one of Status, Level, Expiration is set
// for events kycd acts on; none for unhandled types.
type Event struct {
	ID         string    // Ralio's event id (UUID), unique
	Type       string    // canonical Ralio event type
	Timestamp  time.Time // Ralio's timestamp to the microsecond (EventTime); orders events
	ReceivedAt time.Time // to the microsecond (EventTime)
	Body       []byte    // raw body as received and signed
	BodyHash   string    // hex SHA-256 of the compacted body; tells a duplicate from a conflict

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

// EventTimePrecision is how finely kycd keeps an event's times (Ralio's
// timestamp, the invitation's expiry, the time of receipt): microseconds,
// what PostgreSQL's timestamptz holds. Events are ordered by their time
// (Supersedes), so every store must keep the time the planner compared:
// a time with nanoseconds would order one way in memory and on SQLite and
// another once PostgreSQL had cut it; and a session's history, written
// from the event in memory, must read the same once rebuilt from the log.
const EventTimePrecision = time.Microsecond

// EventTime is t in UTC, truncated to EventTimePrecision: what kycd records
// of an event's time.
func EventTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(EventTimePrecision)
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

// IngestResult says what Store.Ingest did with an event.
type IngestResult struct {
	Duplicate      bool   // the same event was stored before; nothing changed
	Outcome        string // OutcomeApplied, OutcomeStale or OutcomeUnhandled
	NotificationID string // set when the event produced a notification
}

// EventFilter selects events to list. Zero fields select all.
type EventFilter struct {
	Type   string
	Limit  int    // 1 to 500; 50 when 0
	Cursor string // from the previous page's NextCursor
}

// EventQuery tells a store which events to read: of type Type (all when
// ""), last received first (by the log's commit order, seq descending),
// below seq BelowSeq (0: from the last), at most Limit rows.
type EventQuery struct {
	Type     string
	BelowSeq int64
	Limit    int
}

// EventPage is one page of events, last received first, without bodies.
type EventPage struct {
	Events     []EventRecord `json:"events"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

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
