package kycd

import (
	"context"
	"time"
)

// Store keeps events, their projections, the quarantine and the notification
// outbox. Implementations (sqlite, postgres) pass one conformance suite.
// Errors carry the codes of this package: ENOTFOUND, ECONFLICT, EUNAVAILABLE;
// anything else is EINTERNAL.
type Store interface {
	// EventLog is where webhooks are acknowledged and what the projector
	// derives everything else from.
	EventLog

	// Session returns a session with its checks and history, or ENOTFOUND.
	Session(ctx context.Context, id string) (*Session, error)
	// Subject returns a subject with its level and sessions, or ENOTFOUND.
	// When the same id is known under several subject types, the first by
	// type name is returned unless typ names one.
	Subject(ctx context.Context, id, typ string) (*Subject, error)
	// Sessions lists sessions, newest status first, a page at a time. A
	// cursor that is not one of its own is EINVALID.
	Sessions(ctx context.Context, f SessionFilter) (*SessionPage, error)
	// Events lists events, last received first, a page at a time, without
	// bodies. A cursor that is not one of its own is EINVALID.
	Events(ctx context.Context, f EventFilter) (*EventPage, error)
	// Stats counts sessions by status and the failure codes of sessions
	// rejected since since (at most limit codes).
	Stats(ctx context.Context, since time.Time, limit int) (*Stats, error)
	// Event returns a stored event, or ENOTFOUND.
	Event(ctx context.Context, id string) (*EventRecord, error)
	// StalledSessions lists the sessions f selects (in REVIEW since before
	// f.ReviewBefore, or NOT_STARTED with an invitation expired by
	// f.ExpiredBy), oldest status first, a page at a time, each with its
	// StalledReason. A cursor that is not one of its own is EINVALID.
	StalledSessions(ctx context.Context, f StalledFilter) (*StalledPage, error)

	// AddQuarantine keeps a refused body. It must succeed before the refusal
	// is answered, since Ralio never sends a refused event again.
	AddQuarantine(ctx context.Context, q *Quarantined) error
	// QuarantineItem returns one quarantined body, or ENOTFOUND.
	QuarantineItem(ctx context.Context, id string) (*Quarantined, error)
	// Quarantine lists quarantined bodies, newest first; pending ones only
	// unless all is set.
	Quarantine(ctx context.Context, all bool, limit int) ([]*Quarantined, error)
	// ResolveQuarantine records the result of a successful replay.
	ResolveQuarantine(ctx context.Context, id, result string, at time.Time) error

	// ClaimDeliveries leases up to limit pending deliveries that are due at
	// now, for the given sinks, to owner until now+lease. A leased delivery
	// is not claimed again until its lease expires, so one dispatcher at a
	// time works it; a crashed dispatcher's deliveries come back when their
	// leases run out.
	ClaimDeliveries(ctx context.Context, owner string, sinks []string, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// RecordAttempts appends each attempt to its delivery, claimed by
	// owner, and sets the delivery's new state, ending the lease; all in one
	// transaction. The i-th error is ECONFLICT when that delivery's lease
	// was lost to another owner (its record is skipped); the last result
	// is a failure of the whole call.
	RecordAttempts(ctx context.Context, owner string, recs []AttemptRecord) ([]error, error)
	// Deliveries lists deliveries in a state ("" for all), oldest first.
	Deliveries(ctx context.Context, state string, limit int) ([]*Delivery, error)
	// Delivery returns a delivery with its attempts and notification, or
	// ENOTFOUND.
	Delivery(ctx context.Context, id string) (*Delivery, error)
	// RetryDelivery makes a delivery due at now in a new round of attempts,
	// whatever its state. ENOTFOUND for an unknown id.
	RetryDelivery(ctx context.Context, id string, now time.Time) error
	// RetryDeadDeliveries does RetryDelivery for every dead delivery and
	// reports how many.
	RetryDeadDeliveries(ctx context.Context, now time.Time) (int, error)
	// OutboxDepth counts deliveries by state.
	OutboxDepth(ctx context.Context) (map[string]int, error)

	// Setting returns a stored setting, or ENOTFOUND.
	Setting(ctx context.Context, key string) (string, error)
	// InitSetting stores value under key unless the key has a value already,
	// and returns the value in force and whether this call stored it.
	InitSetting(ctx context.Context, key, value string) (current string, created bool, err error)

	// Purge drops what is older than before: raw event bodies, quarantined
	// bodies, and the personal data (invitation) of notifications; it
	// reports how many rows it changed. Event ids stay, so a late duplicate
	// is still recognised.
	Purge(ctx context.Context, before time.Time) (int64, error)

	// SaveReconciliation records a reconciliation run, replacing the
	// record of the same id.
	SaveReconciliation(ctx context.Context, r *Reconciliation) error
	// Reconciliations returns the last limit runs, newest first.
	Reconciliations(ctx context.Context, limit int) ([]*Reconciliation, error)

	// Ping reports whether the store can serve requests (EUNAVAILABLE if not).
	Ping(ctx context.Context) error
	// Close releases the store; later calls fail with EUNAVAILABLE.
	Close() error
}
