package kycd

import (
	"strconv"
	"time"
)

// AuditEntry is one line of the audit trail: who did or tried what, to
// what, from where, when, and how it ended. The trail is append-only: no
// API deletes a line; retention (--audit-retention) drops the oldest.
// Detail never holds personal data.
type AuditEntry struct {
	ID      int64     `json:"id"` // sequential, set by AddAudit
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`  // a token's name, or cli:USER
	Action  string    `json:"action"` // one of the Audit… actions
	Target  string    `json:"target"` // e.g. session:<id>, subject:user:<id>, delivery:<id>, token:<name>
	Remote  string    `json:"remote,omitempty"`
	Outcome string    `json:"outcome"` // AuditOK, AuditRefused or AuditFailed
	Detail  string    `json:"detail,omitempty"`
}

// Outcomes of an audited action.
const (
	AuditOK      = "ok"
	AuditRefused = "refused" // the actor's role does not allow it (403)
	AuditFailed  = "failed"  // allowed, but it did not succeed
)

// Audited actions: every change, and every read that returns personal
// data. A refused attempt of any of them is audited too.
const (
	AuditEventRead          = "event.read"        // an event's raw body
	AuditQuarantineRead     = "quarantine.read"   // a refused body
	AuditQuarantineReplay   = "quarantine.replay" //
	AuditQuarantineDiscard  = "quarantine.discard"
	AuditNotificationResend = "notification.resend"
	AuditDeliveryRead       = "delivery.read" // a notification's invitation contact data
	AuditDeliveryRetry      = "delivery.retry"
	AuditDeliveryMove       = "delivery.move"
	AuditDeliveryDrop       = "delivery.drop"
	AuditSinkResume         = "sink.resume"
	AuditSubjectExport      = "subject.export"
	AuditSubjectErase       = "subject.erase"
	AuditTokenCreate        = "token.create"
	AuditTokenRevoke        = "token.revoke"
	AuditTokenList          = "token.list" // audited when refused only
	AuditRead               = "audit.read" // audited when refused only
)

// AuditTarget names the target of an action: kind:id, e.g. delivery:<id>.
// The id is Escaped: whatever a request named, the trail holds no control
// character.
func AuditTarget(kind, id string) string { return kind + ":" + Escaped(id) }

// SubjectTarget names a subject as an audit target: subject:<type>:<id>,
// or subject:<id> when its type is not known.
func SubjectTarget(s SubjectRef) string {
	if s.Type == "" {
		return "subject:" + Escaped(s.ID)
	}
	return "subject:" + Escaped(s.Type) + ":" + Escaped(s.ID)
}

// AuditFilter selects audit entries. Zero fields select all; Target
// matches a whole target, or every target it is a prefix of when it ends
// in ':' (subject: for every subject).
type AuditFilter struct {
	Actor  string
	Action string
	Target string
	Limit  int    // 1 to 500; 50 when 0
	Cursor string // from the previous page's NextCursor
}

// AuditQuery tells a store which audit entries to read: those Actor,
// Action and Target select (zero fields select all), Target as the whole
// target, or, with TargetPrefix, as the beginning of it; newest first (id
// descending), below id BeforeID (0: from the newest), at most Limit rows.
type AuditQuery struct {
	Actor        string
	Action       string
	Target       string
	TargetPrefix bool
	BeforeID     int64
	Limit        int
}

// AuditPage is one page of the audit trail, newest first.
type AuditPage struct {
	Items      []*AuditEntry `json:"items"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

// AuditCursor is the cursor of a page that ends with e.
func AuditCursor(e *AuditEntry) string { return EncodeCursor(e.At, strconv.FormatInt(e.ID, 10)) }

// DecodeAuditCursor returns the id after which (going back in time) the
// next page starts; EINVALID for a cursor that is not one of AuditCursor.
func DecodeAuditCursor(c string) (int64, error) {
	_, id, err := DecodeCursor(c)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n < 1 {
		return 0, Errorf(EINVALID, "cursor %q is not one this API gave out", c)
	}
	return n, nil
}

// DefaultAuditRetention is how long audit entries are kept unless
// configured: two years, longer than the bodies they speak of.
const DefaultAuditRetention = 2 * 365 * 24 * time.Hour
