package kycd

import (
	"encoding/json"
	"time"
)

// SubjectExport is everything kycd holds about one subject, as one
// document: what a person's right of access asks for.
type SubjectExport struct {
	ExportedAt time.Time  `json:"exportedAt"`
	Subject    SubjectRef `json:"subject"`
	Level      string     `json:"level,omitempty"`
	LevelAt    time.Time  `json:"levelAt,omitzero"`
	// Sessions with their checks, reasons and history, newest first.
	Sessions []*Session `json:"sessions"`
	// Events with their raw bodies while retained (and not erased),
	// oldest first.
	Events []*EventRecord `json:"events"`
	// Notifications about the subject, each with its deliveries and
	// their attempts, oldest first.
	Notifications []*NotificationRecord `json:"notifications"`
	// Quarantine holds the refused bodies that name the subject or one
	// of its sessions, with the bodies, oldest first.
	Quarantine []*QuarantineRecord `json:"quarantine"`
}

// NotificationRecord is a stored notification with its deliveries.
type NotificationRecord struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	CreatedAt    time.Time       `json:"createdAt"`
	Notification json.RawMessage `json:"notification"` // the payload the sinks are sent
	// Deliveries, one per sink, with their attempts and the operators'
	// actions, without the payload (it is Notification).
	Deliveries []*Delivery `json:"deliveries"`
}

// QuarantineRecord is a quarantined body with the bodies as text (a
// refused body need not be JSON). Bytes that are not UTF-8 read as U+FFFD.
type QuarantineRecord struct {
	*Quarantined
	Body         *string `json:"body,omitempty"`
	OriginalBody *string `json:"originalBody,omitempty"`
}

// NewQuarantineRecord shows q with its bodies as text.
func NewQuarantineRecord(q *Quarantined) *QuarantineRecord {
	text := func(b []byte) *string {
		if b == nil {
			return nil
		}
		s := string(ValidUTF8(b))
		return &s
	}
	return &QuarantineRecord{Quarantined: q, Body: text(q.Body), OriginalBody: text(q.OriginalBody)}
}
