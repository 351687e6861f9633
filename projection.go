package kycd

import (
	"context"
	"fmt"
	"time"
)

// LogEntry is one signed, valid Ralio body as the event log keeps it. The
// log is the acknowledgement: a webhook is answered 200 once its entry is
// committed, and everything else (sessions, history, notifications) is
// derived from the log by the projector, asynchronously and idempotently.
type LogEntry struct {
	Seq        int64 // set by AppendLog; increases in commit order on one replica
	EventID    string
	ReceivedAt time.Time
	Body       []byte // nil once purged by retention
	BodyHash   string // see Event.BodyHash

	// Event is the decoded body. The appender hands it to the projector in
	// memory; entries read back from a store have it nil and are decoded
	// again.
	Event *Event
}

// KnownEvent is what deduplication needs of an event already projected.
type KnownEvent struct {
	Seq      int64
	BodyHash string
}

// EventLog is the durable, append-only log of received events. Errors carry
// the codes of this package: EUNAVAILABLE when the store cannot be reached
// or a commit failed, ENOTFOUND for an unknown entry.
type EventLog interface {
	// AppendLog commits entries in one transaction with power-loss
	// durability and sets their Seq. It either commits all or none.
	AppendLog(ctx context.Context, entries []*LogEntry) error
	// KnownEvents returns the events among ids that are projected, or,
	// where several processes append to one log (PostgreSQL replicas),
	// appended and not yet projected; by id. It is a read: the hot path must
	// not write a random-key index.
	KnownEvents(ctx context.Context, ids []string) (map[string]KnownEvent, error)
	// UnprojectedLog returns up to limit entries with Seq <= through that
	// are not yet projected, oldest first, without bodies.
	UnprojectedLog(ctx context.Context, through int64, limit int) ([]*LogEntry, error)
	// LogHead returns the Seq of the newest committed entry (0 when empty).
	LogHead(ctx context.Context) (int64, error)
	// LogBody returns an entry's body, nil once purged; ENOTFOUND for an
	// unknown seq.
	LogBody(ctx context.Context, seq int64) ([]byte, error)
	// BeginProjection starts the one transaction in which a batch of the
	// log is projected. Only one projection transaction runs at a time
	// across every process on the store; another caller waits for it.
	BeginProjection(ctx context.Context) (ProjectionTx, error)
}

// ProjectionTx is one projection transaction: the projector claims entries,
// reads the rows they touch, plans, and has the store apply the plan. The
// store decides nothing: it reads and writes what it is told.
type ProjectionTx interface {
	// ClaimLog returns up to limit unprojected entries, oldest first, with
	// their bodies; no other projection sees them until this one ends. It
	// stops early once their bodies pass maxBytes (taking one entry at
	// least), so a backlog of large bodies does not fill the memory.
	ClaimLog(ctx context.Context, limit int, maxBytes int64) ([]*LogEntry, error)
	// Current reads the projected rows that keys name. Absent rows are
	// absent from the maps.
	Current(ctx context.Context, keys PlanKeys) (*Projection, error)
	// Apply writes the plan and marks p.Projected projected. A session or
	// level whose version is no longer the one read fails with ECONFLICT
	// (another projector got there first: roll back and plan again).
	Apply(ctx context.Context, p *Plan) error
	// LogBody returns an entry's body within the transaction.
	LogBody(ctx context.Context, seq int64) ([]byte, error)
	Commit(ctx context.Context) error
	// Rollback ends the transaction without effect; after Commit it does
	// nothing.
	Rollback(ctx context.Context) error
}

// PlanKeys names the projected rows a batch touches.
type PlanKeys struct {
	EventIDs   []string
	SessionIDs []string
	Subjects   []SubjectRef // subjects whose level a batch may change
}

// Projection is the current state of the rows a batch touches.
type Projection struct {
	Events   map[string]KnownEvent
	Sessions map[string]*SessionState
	Levels   map[SubjectRef]*LevelState
}

// SessionState is a session's projected row: its status, the checks of the
// event that set it, and its whole history (a session has few events, so
// they live together in one row and one page).
type SessionState struct {
	ID            string
	Subject       SubjectRef
	Status        Status
	StatusAt      time.Time // the status event's ordering time (OrderingTime)
	StatusEventID string
	ExpiresAt     time.Time // of the invitation the status event carried (zero: none); the watchdog finds invitations past it
	Checks        []Check
	History       []HistoryEntry // by (ordering time, event id)
	// Version is the row's version as read (0: no row yet). Apply writes
	// Version+1 only where the row still has Version.
	Version int64
}

// LevelState is a subject's projected level.
type LevelState struct {
	Subject SubjectRef
	Level   string
	At      time.Time
	EventID string
	Version int64 // as for SessionState
}

// EventRow is a projected event: what dedupe, the read API and a rebuild
// need. The body stays in the log, found by Seq.
type EventRow struct {
	Seq        int64
	ID         string
	Type       string
	Timestamp  time.Time
	ReceivedAt time.Time
	BodyHash   string
	Outcome    string
	SessionID  string
	Subject    SubjectRef
	// ClockSkew is set when the event is stamped more than the maximum
	// clock skew after its receipt (kycd.OrderingTime). It is not stored:
	// the projector counts and logs it.
	ClockSkew bool
}

// Outgoing is a notification with the sinks it goes to, one pending
// delivery each.
type Outgoing struct {
	Notification *Notification
	CreatedAt    time.Time
	Sinks        []string
}

// Plan is everything a batch of log entries changes, decided by PlanBatch.
type Plan struct {
	Projected     []int64 // every entry of the batch, whatever became of it
	Events        []*EventRow
	Sessions      []*SessionState // new rows; Version is the one read
	Levels        []*LevelState
	Subjects      []SubjectRef // subjects to record without a level
	Notifications []*Outgoing
	// Conflicts are entries whose event id was projected before with
	// another body. The projector turns them into Quarantine items.
	Conflicts  []Conflict
	Quarantine []*Quarantined

	// Handoff, when set, has Apply lease the new deliveries to its sinks
	// that head their sink's order key (no earlier one of the key pending
	// there, or the sink of order none) to the local dispatcher as it
	// writes them, so that no claim runs for them; Apply lists those in
	// HandedOff, with their notifications, for the projector to hand over
	// once the transaction commits.
	Handoff   *Handoff
	HandedOff []*Delivery
}

// Handoff is the lease a projection gives the new deliveries it hands to
// the dispatcher of its own process.
type Handoff struct {
	Owner string    // the dispatcher's name on its leases
	Until time.Time // the lease's end
	Sinks []string  // the sinks that dispatcher sends to
}

// Conflict is a log entry that reuses a projected event id with another
// body.
type Conflict struct {
	Entry       *LogEntry
	OriginalSeq int64 // the entry stored first under the id
}

// LogCoverage is what a store whose projection and log are apart (SQLite's
// two files) can tell cheaply about whether they belong together: a pair
// of files copied at different moments, or from different databases, is
// not, and its projection would skip what the log receives next.
type LogCoverage struct {
	Watermark int64 // the projection covers the log up to it
	LogHead   int64 // the log's newest entry
	// Beyond counts the projected events whose entry is past the log's
	// newest: the log file is older than the projection's.
	Beyond int64
	// Mismatch describes a projected event that the log holds another
	// event in place of ("" when the last one checked agrees).
	Mismatch string
}

// CoverageChecker is a store that can compare its projection with its log.
type CoverageChecker interface {
	LogCoverage(ctx context.Context) (LogCoverage, error)
}

// Problem says what is wrong with the pair, "" when nothing is: a
// projection ahead of its log, or an event the log does not hold where
// the projection has it.
func (c LogCoverage) Problem() string {
	switch {
	case c.Watermark > c.LogHead || c.Beyond > 0:
		return fmt.Sprintf("the projection is ahead of its event log: it covers the log up to entry %d and holds %d events past the log's newest entry, %d",
			c.Watermark, c.Beyond, c.LogHead)
	case c.Mismatch != "":
		return "the projection and its event log disagree: " + c.Mismatch
	}
	return ""
}
