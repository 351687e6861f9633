package ralio

import (
	"encoding/json"
	"time"
)

// Event types that Ralio sends about KYC and KYB. Dotted names seen on
// Ralio's overview pages (kyc.session_failed, …) are normalised to these.
const (
	TypeSessionFailed        = "kyc_session_failed"
	TypeSessionVerified      = "kyc_session_verified"
	TypeSessionManualReview  = "kyc_session_manual_review"
	TypeSessionExpired       = "kyc_session_expired"
	TypeRelatedPartyInvited  = "related_party.kyc_session_created"
	TypeKYCStateUpdated      = "kyc_state_updated"
	TypeKYBStateUpdated      = "kyb_state_updated"
	TypeKYCExpirationWarning = "kyc_expiration_warning"
)

// EventTypes are the event types above, the ones kycd knows.
var EventTypes = []string{TypeSessionFailed, TypeSessionVerified, TypeSessionManualReview, TypeSessionExpired,
	TypeRelatedPartyInvited, TypeKYCStateUpdated, TypeKYBStateUpdated, TypeKYCExpirationWarning}

// Subject types: who a session or a level belongs to.
const (
	SubjectUser         = "user"
	SubjectRelatedParty = "related-party"
	SubjectBusiness     = "business"
)

// Check states, whatever encoding Ralio used (string or 1/2).
const (
	CheckValidated = "Validated"
	CheckRefused   = "Refused"
)

// Levels of a subject's KYC or a business's KYB.
const (
	LevelRegular = "REGULAR"
	LevelLight   = "LIGHT"
)

// Event is one Ralio webhook delivery, decoded from any envelope generation
// into one shape. Fields that do not apply to the event's type are zero.
type Event struct {
	// ID is the event id (id or eventId), a UUID in canonical lower case.
	ID string
	// Type is the canonical event type (event or eventType, dotted names
	// normalised). It may be a type this package does not know.
	Type string
	// Timestamp is Ralio's timestamp of the event, converted to UTC, to
	// the nanosecond as sent (a receiver that keeps less, as kycd keeps
	// microseconds, cuts it where it records the event).
	Timestamp time.Time
	// Known reports whether Type is one of the Type constants; for unknown
	// types only the envelope is decoded and validated.
	Known bool

	// SessionID is the KYC session the event is about (session events and
	// related-party invitations).
	SessionID string
	// Subject is whom the event is about: a user, a related party or a
	// business.
	Subject Subject
	// Checks are the session's checks with their reasons, in Ralio's order.
	Checks []Check

	// Level is REGULAR or LIGHT on kyc_state_updated and kyb_state_updated.
	Level string
	// KYCID is kycId on kyc_state_updated and kyc_expiration_warning.
	KYCID int64
	// KYBID is kybId on kyb_state_updated.
	KYBID int64

	// Invitation is set on related_party.kyc_session_created.
	Invitation *Invitation
	// Expiration is set on kyc_expiration_warning.
	Expiration *Expiration

	// Data is the event's data object exactly as received.
	Data json.RawMessage
}

// Subject identifies whom an event is about.
type Subject struct {
	Type string // SubjectUser, SubjectRelatedParty or SubjectBusiness
	ID   string // UUID in canonical lower case
}

// Check is one verification check of a session.
type Check struct {
	Type    string // e.g. document-verification, face-matching, liveness
	State   string // CheckValidated, CheckRefused, or another state string as sent
	Reasons []Reason
	Data    json.RawMessage // the check's data object as received, or nil
}

// Reason explains why a check did not pass.
type Reason struct {
	Type     string
	Code     string // e.g. EXPIRED_DOCUMENT, NO_MATCH, KYC.DOC.DETERIORATED
	Message  string
	Category string // optional (generation B)
}

// Invitation is the payload of related_party.kyc_session_created. It holds
// personal data: never log it.
type Invitation struct {
	BusinessUserID  int64
	BusinessName    string
	RoleType        string // e.g. UBO
	FirstName       string
	LastName        string
	Email           string
	PhoneNumber     string
	VerificationURL string
	Provider        string
	ExpiresAt       time.Time
}

// Expiration is the payload of kyc_expiration_warning.
type Expiration struct {
	Date          string // YYYY-MM-DD
	DaysRemaining int
	Action        string
}
