package kycd

import "time"

// Subject types.
const (
	SubjectUser         = "user"
	SubjectRelatedParty = "related-party"
	SubjectBusiness     = "business"
)

// CheckSubjectType is nil for a subject type kycd knows, and for "" (any
// type); EINVALID otherwise.
func CheckSubjectType(typ string) error {
	switch typ {
	case "", SubjectUser, SubjectRelatedParty, SubjectBusiness:
		return nil
	}
	return Errorf(EINVALID, "type %q: want user, related-party or business", typ)
}

// SubjectRef identifies whom a session or level belongs to.
type SubjectRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// IsZero reports whether no subject is set.
func (s SubjectRef) IsZero() bool { return s.ID == "" }

// Subject is a user, related party or business with its level and sessions.
type Subject struct {
	Type     string           `json:"type"`
	ID       string           `json:"id"`
	Level    string           `json:"level,omitempty"`
	LevelAt  time.Time        `json:"levelAt,omitzero"`
	Sessions []SessionSummary `json:"sessions"`
	// Recorded says that kycd keeps a row for the subject (for a level or
	// an expiration warning); a subject with neither that row nor a
	// session is not known.
	Recorded bool `json:"-"`
}

// SessionSummary is a session as listed under its subject.
type SessionSummary struct {
	ID       string    `json:"sessionId"`
	Status   Status    `json:"status"`
	StatusAt time.Time `json:"statusAt"`
}
