package kycd

import (
	"context"
	"encoding/json"
	"time"
)

// Tx is one store transaction: small reads and writes that each do just what
// they are told, composed by the application layer (internal/app) around the
// domain's rules, as River's core composes its driver's ExecutorTx. A store
// decides nothing inside it: no method of Tx chooses, filters by a rule or
// builds a domain answer. Each area of kycd adds the operations it needs in
// its own interface below, next to nothing else.
//
// Commit ends the transaction; Rollback after Commit does nothing, so
// callers defer it. Errors carry this package's codes, as Store's do.
type Tx interface {
	AuditTx
	DeliveryTx
	SinkTx
	QuarantineTx
	SubjectTx
	ProjectionResetTx
	TokenTx

	// Commit makes the transaction's writes durable.
	Commit(ctx context.Context) error
	// Rollback undoes the transaction's writes; after Commit it does
	// nothing and returns nil.
	Rollback(ctx context.Context) error
}

// AuditTx writes the audit trail inside a transaction, so an action and its
// entry commit together.
type AuditTx interface {
	// AddAudit appends e to the audit trail and sets its ID.
	AddAudit(ctx context.Context, e *AuditEntry) error
}

// DeliveryTx reads and writes deliveries, their attempts and the actions
// operators took on them.
type DeliveryTx interface {
	// LockDelivery reads the delivery id and holds it until the
	// transaction ends, so that no dispatcher claims it meanwhile.
	// ENOTFOUND for an unknown id.
	LockDelivery(ctx context.Context, id string) (*DeliveryRow, error)
	// DeliveryTo reads the delivery of notification to sink (there is at
	// most one), or ENOTFOUND.
	DeliveryTo(ctx context.Context, notification, sink string) (*DeliveryRow, error)
	// DeliveryIDs lists the ids of the deliveries in state, of sink
	// unless sink is "", in no particular order.
	DeliveryIDs(ctx context.Context, state, sink string) ([]string, error)
	// MatchingDeliveries reads the deliveries q selects (its After,
	// AfterID and Limit aside), oldest first, and holds them until the
	// transaction ends.
	MatchingDeliveries(ctx context.Context, q DeliveryQuery) ([]*DeliveryRow, error)
	// StartRound makes the deliveries ids pending and due at at, in a new
	// round of attempts that begins at at, leased by nobody. Unknown ids
	// are skipped.
	StartRound(ctx context.Context, at time.Time, ids ...string) error
	// SetDeliverySink gives the delivery id to sink.
	SetDeliverySink(ctx context.Context, id, sink string, at time.Time) error
	// SetDeliveryState sets the state of delivery id, leased by nobody.
	SetDeliveryState(ctx context.Context, id, state string, at time.Time) error
	// AddDelivery records a new delivery: row's ID, NotificationID, Sink
	// and State, due at at, created at at, its round begun at at.
	AddDelivery(ctx context.Context, row DeliveryRow, at time.Time) error
	// AddDeliveryAction notes what an operator did to delivery id.
	AddDeliveryAction(ctx context.Context, id string, a DeliveryAction) error
	// LockNotification returns the type of notification id and holds it
	// until the transaction ends, so that two changes of one
	// notification's deliveries take turns. ENOTFOUND for an unknown id.
	LockNotification(ctx context.Context, id string) (typ string, err error)
}

// SinkTx reads and writes the registered sinks.
type SinkTx interface {
	// LockSink reads the registered sink name, without its delivery
	// counts, and holds it until the transaction ends. ENOTFOUND for a
	// sink never registered.
	LockSink(ctx context.Context, name string) (*SinkInfo, error)
	// RegisteredSinks reads every registered sink, without delivery
	// counts, in no particular order, and holds them until the
	// transaction ends.
	RegisteredSinks(ctx context.Context) ([]*SinkInfo, error)
	// PutSink records k (Name, Type, Target, Events, Configured,
	// RegisteredAt), leaving the pause and the resume of a sink of that
	// name as they are.
	PutSink(ctx context.Context, k SinkInfo) error
	// UnconfigureSinks marks every registered sink not configured.
	UnconfigureSinks(ctx context.Context) error
	// SetSinkPause sets when and why the sink name was paused; a zero at
	// clears the pause.
	SetSinkPause(ctx context.Context, name string, at time.Time, reason string) error
	// SetSinkResumed notes that by resumed the sink name at at.
	SetSinkResumed(ctx context.Context, name, by string, at time.Time) error
}

// QuarantineTx reads and writes quarantined bodies.
type QuarantineTx interface {
	// LockQuarantined reads the quarantined body id and holds it until
	// the transaction ends. ENOTFOUND for an unknown id.
	LockQuarantined(ctx context.Context, id string) (*Quarantined, error)
	// SetQuarantineDiscarded notes that by discarded the quarantined body
	// id at at.
	SetQuarantineDiscarded(ctx context.Context, id, by string, at time.Time) error
}

// SubjectTx reads and writes what kycd keeps about a subject, for export,
// erasure and retention. Which rows belong to a subject and what of them is
// personal data is decided above (internal/app, with Needles,
// SubjectNotificationIDs, EraseChecks and ErasePayload); these only read
// the rows they are pointed to and write what they are given, a set at a
// time, however many rows there are.
type SubjectTx interface {
	// ExcludeProjections makes projections wait until the transaction
	// ends, so that none reads a row before it changes and writes the row
	// back after.
	ExcludeProjections(ctx context.Context) error
	// SubjectLevel returns the level of a subject's own row and when it was
	// set (both zero when none was); ENOTFOUND when the subject has no row
	// (it may still have sessions).
	SubjectLevel(ctx context.Context, subject SubjectRef) (level string, at time.Time, err error)
	// SubjectSessions returns the sessions of a subject with their checks
	// and history, newest status first (then by id).
	SubjectSessions(ctx context.Context, subject SubjectRef) ([]*Session, error)
	// SubjectEvents returns the events that name subject or belong to one
	// of sessionIDs, by seq. The events have no index by subject, so this
	// is a scan.
	SubjectEvents(ctx context.Context, subject SubjectRef, sessionIDs []string) ([]EventKey, error)
	// NotificationPayloads returns the payloads of the notifications among
	// ids that are stored, by id.
	NotificationPayloads(ctx context.Context, ids []string) (map[string]json.RawMessage, error)
	// QuarantineNaming returns, by id, the ids of the quarantine items
	// whose event id is one of eventIDs, whose body or original body
	// contains one of needles, or that an erasure of a subject whose id is
	// one of needles emptied. It is one statement whatever the number of
	// ids and needles, a scan of the quarantine (which the retention
	// bounds).
	QuarantineNaming(ctx context.Context, eventIDs []string, needles [][]byte) ([]string, error)
	// LogBodiesBefore returns up to limit log entries received before
	// before that still hold their body and come after seq after, by seq.
	LogBodiesBefore(ctx context.Context, before time.Time, after int64, limit int) ([]EventKey, error)
	// SessionsWithStatusEvent returns the sessions whose status event is one
	// of eventIDs, with their checks.
	SessionsWithStatusEvent(ctx context.Context, eventIDs []string) ([]*Session, error)

	// SetSessionChecks replaces a session's checks and gives it a new
	// version, so that a projection that read the row before cannot write
	// the old checks back.
	SetSessionChecks(ctx context.Context, id string, checks []Check) error
	// SetNotificationPayload replaces a notification's payload (which its
	// deliveries send).
	SetNotificationPayload(ctx context.Context, id string, payload json.RawMessage) error
	// ClearQuarantineBodies empties the bodies of the items among ids that
	// still have one, marks those not replayed yet as replayed at at with
	// result, records subjectID as whom they were emptied for (so that
	// QuarantineNaming still finds them), and reports how many it emptied.
	ClearQuarantineBodies(ctx context.Context, ids []string, at time.Time, result, subjectID string) (int, error)
	// DeleteQuarantineBefore deletes the quarantine items received before
	// before and reports how many.
	DeleteQuarantineBefore(ctx context.Context, before time.Time) (int, error)
	// DeleteHeldBefore deletes the bodies of the signature hold
	// (QuarantineSignature) received before before and reports how many.
	DeleteHeldBefore(ctx context.Context, before time.Time) (int, error)
	// ClearLogBodies removes the raw bodies of the log entries of seqs that
	// still have one and reports how many. On SQLite the log is a file of
	// its own: the bodies go at once, whatever becomes of the transaction.
	ClearLogBodies(ctx context.Context, seqs []int64) (int, error)
}

// ProjectionResetTx empties the projection for a rebuild. What a rebuild
// derives again, and in which order the derived rows go, is decided above
// the stores (ingest.ResetProjection); these operations do just what they
// are told. Runs name log entries by seq: an operation on runs touches the
// entries from each run's From through its Through.
type ProjectionResetTx interface {
	// LockProjection waits for a projection in progress and keeps new ones
	// from beginning until the transaction ends.
	LockProjection(ctx context.Context) error
	// ProjectedLogRuns returns the projected log entries, oldest first, as
	// runs of consecutive projected entries that all have their body or
	// all lack it.
	ProjectedLogRuns(ctx context.Context) ([]LogRun, error)
	// DeleteRunSessions deletes the sessions that the events rows of the
	// entries in runs belong to.
	DeleteRunSessions(ctx context.Context, runs []LogRun) error
	// DeleteRunSubjects deletes the subjects that the events rows of the
	// entries in runs whose type is one of types are about.
	DeleteRunSubjects(ctx context.Context, runs []LogRun, types []string) error
	// DeleteRunEvents deletes the events rows of the entries in runs.
	DeleteRunEvents(ctx context.Context, runs []LogRun) error
	// UnprojectLog makes the entries in runs unprojected, so that the
	// projector claims them again. A store that keeps a watermark rather
	// than a mark per entry moves it back to before the first run: the
	// entries between runs are claimed again too.
	UnprojectLog(ctx context.Context, runs []LogRun) error
}

// LogRun is a run of consecutive log entries, From through Through.
type LogRun struct {
	From, Through int64
	Entries       int64 // how many entries the run holds (seqs may have gaps)
	HasBody       bool  // every entry of the run has its body; or none has
	// Beyond: projected entries the log does not hold, past its newest
	// (a log file older than the projection's, see LogCoverage). Entries
	// counts the events rows; a rebuild removes what they derived.
	Beyond bool
}

// TokenTx creates and revokes API tokens.
type TokenTx interface {
	// CreateToken records a new API token. ECONFLICT when a token of that
	// name exists.
	CreateToken(ctx context.Context, t *Token) error
	// RevokeToken deletes a token: it works no more. ENOTFOUND for an
	// unknown name.
	RevokeToken(ctx context.Context, name string) error
}
