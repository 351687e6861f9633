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
	// SubjectTypes lists the subject types under which id is known (by a
	// level, an expiration warning or a session), in no order; none for
	// an id kycd does not know.
	SubjectTypes(ctx context.Context, id string) ([]string, error)
	// Subject returns the subject ref names with its level and sessions,
	// newest status first, and whether a row records it (Recorded).
	Subject(ctx context.Context, ref SubjectRef) (*Subject, error)
	// Sessions reads the sessions q selects, as q says.
	Sessions(ctx context.Context, q SessionQuery) ([]SessionListItem, error)
	// Events reads the events q selects, without bodies, as q says.
	Events(ctx context.Context, q EventQuery) ([]EventRecord, error)
	// EventSeq returns the log seq of the event id, or ENOTFOUND.
	EventSeq(ctx context.Context, id string) (int64, error)
	// FirstEventSeqSince returns the least seq of the events received at
	// or after t, or ENOTFOUND when none is.
	FirstEventSeqSince(ctx context.Context, t time.Time) (int64, error)
	// SessionCounts counts sessions by status (statuses without sessions
	// are absent).
	SessionCounts(ctx context.Context) (map[Status]int, error)
	// FailureCodes counts the reason codes of the checks of the sessions
	// rejected since since, most frequent first, then by code (byte
	// order), at most limit.
	FailureCodes(ctx context.Context, since time.Time, limit int) ([]CodeCount, error)
	// FailureCodesByDay counts the reason codes among codes of the
	// sessions rejected since since by the UTC day they were rejected, by
	// day then code.
	FailureCodesByDay(ctx context.Context, since time.Time, codes []string) ([]DayCodeCount, error)
	// Event returns a stored event with its body while retained, or
	// ENOTFOUND.
	Event(ctx context.Context, id string) (*EventRecord, error)
	// IDFinder is the search by id.
	IDFinder
	// StalledSessions reads the sessions f selects (in REVIEW since before
	// f.ReviewBefore, or NOT_STARTED with an invitation expired by
	// f.ExpiredBy), oldest status first, after f.After, at most f.Limit,
	// without their Reason.
	StalledSessions(ctx context.Context, f StalledFilter) ([]StalledSession, error)

	// AddQuarantine keeps a refused body. It must succeed before the refusal
	// is answered, since Ralio never sends a refused event again.
	AddQuarantine(ctx context.Context, q *Quarantined) error
	// HoldQuarantine keeps q (a QuarantineSignature body) in the signature
	// hold and, in the same transaction, deletes the oldest held bodies
	// beyond the caps of hold; it reports how many it deleted.
	HoldQuarantine(ctx context.Context, q *Quarantined, hold SignatureHold) (int, error)
	// QuarantineItem returns one quarantined body, or ENOTFOUND.
	QuarantineItem(ctx context.Context, id string) (*Quarantined, error)
	// Quarantine lists quarantined bodies, newest first; pending ones only
	// unless all is set.
	Quarantine(ctx context.Context, all bool, limit int) ([]*Quarantined, error)
	// ResolveQuarantine records the result of a successful replay.
	ResolveQuarantine(ctx context.Context, id, result string, at time.Time) error
	// QuarantinePending counts the quarantined bodies that wait for a
	// replay (those Quarantine lists without all).
	QuarantinePending(ctx context.Context) (int, error)

	// ClaimDeliveries leases up to limit pending deliveries that are due at
	// now, for the given sinks (by name) that are not paused, to owner
	// until now+lease. A leased delivery is not claimed again until its
	// lease expires, so one dispatcher at a time works it; a crashed
	// dispatcher's deliveries come back when their leases run out.
	ClaimDeliveries(ctx context.Context, owner string, sinks []string, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// RecordAttempts appends each attempt to its delivery, claimed by
	// owner, and sets the delivery's new state, ending the lease; all in one
	// transaction. The i-th error is ECONFLICT when that delivery's lease
	// was lost to another owner (its record is skipped); the last result
	// is a failure of the whole call.
	RecordAttempts(ctx context.Context, owner string, recs []AttemptRecord) ([]error, error)
	// ReleaseDeliveries ends owner's lease of the pending deliveries ids
	// (a dispatcher stopping with deliveries handed to it and not sent), so
	// that a claim takes them at once rather than when the lease runs out.
	ReleaseDeliveries(ctx context.Context, owner string, ids []string) error
	// Deliveries reads the deliveries q selects, oldest first (by
	// creation, then id), with their notifications, without their
	// attempts and actions, and without the Orphaned and SinkPaused flags
	// (FlagSinks sets those).
	Deliveries(ctx context.Context, q DeliveryQuery) ([]*Delivery, error)
	// Delivery returns a delivery with its attempts, the actions operators
	// took on it and its notification, or ENOTFOUND.
	Delivery(ctx context.Context, id string) (*Delivery, error)
	// DeliverySummary counts the deliveries q selects (its After, AfterID
	// and Limit aside) by sink and last error, the largest group first,
	// then by sink and error.
	DeliverySummary(ctx context.Context, q DeliveryQuery) ([]DeliveryGroup, error)
	// Notifications returns the notifications among ids that exist,
	// oldest first, each with its deliveries and their attempts and
	// actions. Unknown ids are left out.
	Notifications(ctx context.Context, ids []string) ([]*SentNotification, error)
	// OutboxDepth counts deliveries by state: the states it finds.
	OutboxDepth(ctx context.Context) (map[string]int, error)
	// OldestPending returns, per sink, when the round of attempts of its
	// oldest pending delivery began (the delivery's creation, or the last
	// retry, move, resume or resend that started a new round): how far
	// behind that sink's deliveries are. Sinks without a pending delivery
	// are absent.
	OldestPending(ctx context.Context) (map[string]time.Time, error)

	// RegisteredSinks reads every registered sink, without delivery
	// counts.
	RegisteredSinks(ctx context.Context) ([]*SinkInfo, error)
	// WaitingDeliveries counts the pending and dead deliveries of each
	// sink that has any (ListSinks merges them into the registered sinks).
	WaitingDeliveries(ctx context.Context) ([]SinkCount, error)

	// Setting returns a stored setting, or ENOTFOUND.
	Setting(ctx context.Context, key string) (string, error)
	// InitSetting stores value under key unless the key has a value already,
	// and returns the value in force and whether this call stored it.
	InitSetting(ctx context.Context, key, value string) (current string, created bool, err error)
	// SwapSetting replaces the value of key with value if it is still old;
	// ECONFLICT if it is not (another process changed it first).
	SwapSetting(ctx context.Context, key, old, value string) error

	// PurgeAudit drops the audit entries older than before (the audit
	// trail's own retention, longer than the bodies') and reports how
	// many.
	PurgeAudit(ctx context.Context, before time.Time) (int64, error)

	// PutToken records the token t.Name with t's role and hash, replacing
	// those of an existing token of that name (which keeps its creation
	// time): how --admin-token sets the admin token.
	PutToken(ctx context.Context, t *Token) error
	// Tokens lists the tokens by name, with their hashes.
	Tokens(ctx context.Context) ([]*Token, error)
	// TokenByHash returns the token whose hash is hash, or ENOTFOUND.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// TouchToken notes that a token was used at at (it keeps the latest
	// time). Callers write it at most once per TokenTouchInterval.
	TouchToken(ctx context.Context, name string, at time.Time) error

	// AddAudit appends an entry to the audit trail and sets its ID.
	AddAudit(ctx context.Context, e *AuditEntry) error
	// Audit reads the audit entries q selects, as q says.
	Audit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error)

	// SaveReconciliation records a reconciliation run, replacing the
	// record of the same id.
	SaveReconciliation(ctx context.Context, r *Reconciliation) error
	// Reconciliations returns the last limit runs, newest first (by start
	// time, then id).
	Reconciliations(ctx context.Context, limit int) ([]*Reconciliation, error)

	// Begin starts a transaction of small reads and writes (Tx), the way
	// the application layer changes anything: it reads rows, applies the
	// domain's rule and writes, all in one transaction.
	Begin(ctx context.Context) (Tx, error)

	// Ping reports whether the store can serve requests (EUNAVAILABLE if not).
	Ping(ctx context.Context) error
	// Close releases the store; later calls fail with EUNAVAILABLE.
	Close() error
}

// Schema is how a database's schema stands against the migrations that a
// build of kycd carries: what a command that must not migrate checks
// before it reads.
type Schema struct {
	Version int64 // the highest migration applied; 0 when none is
	Latest  int64 // the highest migration this build carries
	// Versions are the numbers of the migrations this build carries, in
	// order; numbers were taken as work began, so some are missing.
	Versions []int64
	// Pending counts the migrations of this build not applied yet. A
	// database migrated by a newer build has none pending (its extra
	// migrations are that build's).
	Pending int
	// Newer is set when the database holds migrations above Latest: a
	// newer build migrated it, and this one does not know its schema.
	Newer bool
}

// Current reports whether every migration of this build is applied.
func (s Schema) Current() bool { return s.Pending == 0 }

// Migrated is one migration that MigrateTo applied or rolled back.
type Migrated struct {
	Version int64  `json:"version"` // the migration's number
	Name    string `json:"name"`    // its file, e.g. 00009_signature_hold.sql
	Down    bool   `json:"down"`    // rolled back rather than applied
}

// Serving is implemented by the stores: it tells a command that rewrites
// the database in place (kycd rebuild) from the serve processes using it.
// Both locks last until release is called or the process ends, however it
// ends; neither waits.
type Serving interface {
	// HoldServing marks the database as served. Several serve processes
	// may hold it at once (replicas); ECONFLICT while ExcludeServing is
	// held.
	HoldServing(ctx context.Context) (release func() error, err error)
	// ExcludeServing keeps serve from holding the database; ECONFLICT
	// while a serve, or another ExcludeServing, holds it.
	ExcludeServing(ctx context.Context) (release func() error, err error)
}
