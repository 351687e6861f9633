package kycd

import (
	"context"
	"strings"
)

// What a search by id finds: the kinds of record kycd keeps under a UUID,
// in the order a search answers them.
const (
	FoundSession      = "session"
	FoundSubject      = "subject"
	FoundEvent        = "event"
	FoundNotification = "notification"
	FoundDelivery     = "delivery"
	FoundQuarantined  = "quarantine"
)

// FoundKinds are the kinds a search answers, in its order.
var FoundKinds = []string{FoundSession, FoundSubject, FoundEvent, FoundNotification, FoundDelivery, FoundQuarantined}

// MinIDPrefix is the shortest id prefix a search takes: 8 hexadecimal
// digits (the first group of a UUID), 4 billion values, few enough matches
// to list. A shorter one matches too much to be an answer.
const MinIDPrefix = 8

// Found is one record a search by id found: its kind and id and, for the
// reader to tell hits apart, what it is (Type) and how it stands (Status),
// never anything of a body. Href is its page on the dashboard, API where
// the API reads it (for events and quarantined bodies, what a viewer may
// read; the body is at the admin's route).
type Found struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Type is a subject's type, an event's, a notification's or a
	// delivery's notification type.
	Type string `json:"type,omitempty"`
	// Status is a session's status, a delivery's state or a quarantined
	// body's reason.
	Status string `json:"status,omitempty"`
	// SessionID is the session of an event or a notification.
	SessionID string `json:"sessionId,omitempty"`
	// Subject is whom a session, or an event or notification without a
	// session, concerns.
	Subject SubjectRef `json:"subject,omitzero"`
	// Sink is a delivery's sink.
	Sink string `json:"sink,omitempty"`
	Href string `json:"href"`
	API  string `json:"api"`
}

// IDRange selects the records whose id begins with a prefix: From <= id <
// To in byte order (IDPrefixRange), at most Limit of each kind.
type IDRange struct {
	From, To string
	Limit    int
}

// IDFinder reads the records of every kind whose id is in a range.
type IDFinder interface {
	// FindIDs reads, for each kind of FoundKinds, the records whose id
	// (a subject's: its id, under each type it is known by) is in r, by
	// id, at most r.Limit of each, with Kind, ID, Type, Status,
	// SessionID, Subject and Sink as Found says, without Href and API.
	FindIDs(ctx context.Context, r IDRange) ([]Found, error)
}

// IDPrefix reads what a person typed to find a record as the beginning of
// a canonical UUID (ParseID): a whole UUID in any spelling uuid.Parse
// reads, or its first MinIDPrefix or more hexadecimal digits, dashes where
// a UUID has them or left out. whole reports a whole id. EINVALID, saying
// what a search takes, for anything else: a search finds ids, never names
// or e-mail addresses.
func IDPrefix(q string) (prefix string, whole bool, err error) {
	q = strings.TrimSpace(q)
	if id, err := ParseID(q); err == nil {
		return id, true, nil
	}
	hex := strings.ToLower(strings.ReplaceAll(q, "-", ""))
	bad := len(hex) > 32 || strings.Trim(hex, "0123456789abcdef") != ""
	if !bad && len(hex) >= MinIDPrefix {
		var b strings.Builder
		for i, c := range hex {
			if i == 8 || i == 12 || i == 16 || i == 20 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
		}
		// Dashes, when typed, must stand where a UUID has them.
		if p := b.String(); !strings.Contains(q, "-") || strings.HasPrefix(p, strings.ToLower(strings.TrimRight(q, "-"))) {
			return p, false, nil
		}
	}
	// The answer does not quote q: it may be an e-mail address or a name.
	return "", false, Errorf(EINVALID, "q is not an id: give a whole id (a UUID) or its first %d or more hexadecimal digits; the search finds ids only, not names or e-mail addresses", MinIDPrefix)
}

// IDPrefixRange is the range of the ids that begin with prefix (an ASCII
// prefix of IDPrefix): from the prefix to the prefix with its last byte
// one higher, so a store reads it as a range of its id index.
func IDPrefixRange(prefix string, limit int) IDRange {
	last := prefix[len(prefix)-1] + 1
	return IDRange{From: prefix, To: prefix[:len(prefix)-1] + string(rune(last)), Limit: limit}
}
