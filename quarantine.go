package kycd

import (
	"encoding/json"
	"time"
)

// Quarantine reasons.
const (
	QuarantineInvalid  = "invalid"  // answered 400
	QuarantineConflict = "conflict" // answered 409: a known event id with another body
	// QuarantineUnstorable is an event acknowledged (200) that the store
	// then refused for good while projecting it: kept so that it neither
	// blocks every later event nor is lost.
	QuarantineUnstorable = "unstorable"
	// QuarantineSignature is a body whose signature failed (answered 401),
	// kept in the bounded signature hold with the signature it came with.
	// Nothing acts on it unless a replay finds that it verifies under a
	// secret configured then.
	QuarantineSignature = "signature"
)

// SignatureHold bounds the signature hold: at most MaxCount bodies and
// MaxBytes of body bytes; beyond either, the oldest held bodies go first.
type SignatureHold struct {
	MaxCount int
	MaxBytes int64
}

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
	// Signature is the X-Signature a held body (QuarantineSignature) came
	// with, so that its replay checks it again.
	Signature    string    `json:"-"`
	ReplayedAt   time.Time `json:"replayedAt,omitzero"`
	ReplayResult string    `json:"replayResult,omitempty"`
	// DiscardedAt and DiscardedBy say that an operator gave the body up:
	// it is kept (until the retention purges it) but no longer pending.
	DiscardedAt time.Time `json:"discardedAt,omitzero"`
	DiscardedBy string    `json:"discardedBy,omitempty"`
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
