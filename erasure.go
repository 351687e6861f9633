package kycd

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
)

// NotifySubjectErased tells the merchant's systems that kycd erased a
// subject's personal data, so that they can erase theirs.
const NotifySubjectErased = "kyc.subject.erased"

// ErasureReceipt says what an erasure did: whose personal data, when, and
// how many records of each kind it changed. What is not personal data, and
// what recognising a late duplicate needs, stays: ids, body hashes,
// statuses, timestamps, reason codes.
type ErasureReceipt struct {
	Subject  SubjectRef    `json:"subject"`
	ErasedAt time.Time     `json:"erasedAt"`
	Erased   ErasureCounts `json:"erased"`
	// NotificationID is the kyc.subject.erased notification sent to the
	// sinks that take it ("" when none does).
	NotificationID string `json:"notificationId,omitempty"`
	// Warning says what the erasure could not finish, when the data is
	// erased but a copy may outlive it for a while (SQLite's write-ahead
	// log still holding overwritten pages); "" when there is none.
	Warning string `json:"warning,omitempty"`
}

// ErasureCounts are the records an erasure changed, by kind. A record
// erased before is not counted again.
type ErasureCounts struct {
	EventBodies   int `json:"eventBodies"`   // raw bodies removed from the event log
	Sessions      int `json:"sessions"`      // sessions whose reason messages were removed
	Notifications int `json:"notifications"` // payloads without contact data, URLs and messages (their deliveries send these)
	Quarantine    int `json:"quarantine"`    // refused bodies removed
}

// ErasedReplayResult marks a quarantine item whose bodies an erasure
// removed (it cannot be replayed any more).
const ErasedReplayResult = "erased"

// EventKey names a stored event the way both the log and the projection
// know it: by its seq in the log and its id.
type EventKey struct {
	Seq int64
	ID  string
}

// SubjectNotificationIDs are the ids of every notification that may name a
// subject, given its events and, for each of its sessions, the events of
// its history: one per event (NotificationID) and one per session and
// event that may have set its status (StalledNotificationID). Notification
// ids are derived, never random, so no index of notifications by subject
// is needed.
func SubjectNotificationIDs(eventIDs []string, history map[string][]string) []string {
	var ids []string
	for _, e := range eventIDs {
		ids = append(ids, NotificationID(e))
	}
	for session, events := range history {
		for _, e := range events {
			ids = append(ids, NotificationID(e), StalledNotificationID(session, e))
		}
	}
	return compactStrings(ids)
}

// Needles are the byte strings whose presence in a refused body means it
// names the subject or one of its sessions: each id as stored (lower
// case) and, for UUIDs, in upper case too.
func Needles(subject SubjectRef, sessionIDs []string) [][]byte {
	var out [][]byte
	for _, id := range append([]string{subject.ID}, sessionIDs...) {
		if id == "" {
			continue
		}
		out = append(out, []byte(id))
		if u := strings.ToUpper(id); u != id {
			out = append(out, []byte(u))
		}
	}
	return out
}

// erasedNamespace makes the ids of kyc.subject.erased notifications.
var erasedNamespace = uuid.MustParse("2f8e6b1d-4c7a-4e3f-9d2b-8a1c5e7f3b60")

// ErasedNotificationID is the id of the kyc.subject.erased notification of
// one erasure: derived from the subject and the erasure's time, so that an
// erasure's notification is written once however often its plan is
// applied.
func ErasedNotificationID(subject SubjectRef, at time.Time) string {
	return uuid.NewSHA1(erasedNamespace, []byte(subject.Type+"|"+subject.ID+"|"+at.UTC().Format(time.RFC3339Nano))).String()
}

// NewErasedNotification is the kyc.subject.erased notification of an
// erasure at at: the subject only. No event caused it, so it has no
// sourceEventId.
func NewErasedNotification(subject SubjectRef, at time.Time) *Notification {
	return &Notification{
		ID:         ErasedNotificationID(subject, at),
		Type:       NotifySubjectErased,
		OccurredAt: at.UTC(),
		Subject:    subject,
	}
}

// CopyDropper is a store that keeps, for a while, copies of pages it
// overwrote (SQLite's write-ahead logs). Erasure and the retention purge
// call DropCopies after they commit, so that what they removed is gone
// from the files too.
type CopyDropper interface {
	// DropCopies writes the copies back and empties the logs that hold
	// them; an error, or a reader that keeps some frames, says that
	// copies may remain (the next erasure or purge tries again).
	DropCopies(ctx context.Context) error
}
