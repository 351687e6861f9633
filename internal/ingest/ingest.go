// Package ingest runs a signed Ralio body through decoding, the store and,
// when it must be refused, the quarantine. The webhook handler and the
// quarantine replay (API and CLI) share it, so a replayed body meets exactly
// the rules a delivered one does.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/tracing"
	"github.com/kycd/kycd/ralio"
)

// Store is what the write path needs of a kycd.Store.
type Store interface {
	kycd.EventLog
	AddQuarantine(ctx context.Context, q *kycd.Quarantined) error
	HoldQuarantine(ctx context.Context, q *kycd.Quarantined, hold kycd.SignatureHold) (int, error)
	QuarantineItem(ctx context.Context, id string) (*kycd.Quarantined, error)
	ResolveQuarantine(ctx context.Context, id, result string, at time.Time) error
	Event(ctx context.Context, id string) (*kycd.EventRecord, error)
	// Begin is for Rebuild, which resets the projection in one transaction.
	Begin(ctx context.Context) (kycd.Tx, error)
}

// Options configure an Ingester. Zero values take the defaults.
type Options struct {
	// Sinks are the sinks notifications are delivered to, each taking
	// the notification types of its events filter.
	Sinks []kycd.SinkRoute
	// Guide returns merchant-facing guidance for a failure code; may be nil.
	Guide func(code string) string
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Notified is called after a projection committed notifications, to
	// wake the dispatcher; may be nil.
	Notified func()
	// Handoff and HandOver, when set, keep the outbox's claims off the
	// path of new deliveries: each projection has the ones that head their
	// sink's order key leased to the local dispatcher as it writes them
	// (Handoff gives the lease when the projection applies its plan), and
	// hands them over with HandOver once it committed.
	Handoff  func() *kycd.Handoff
	HandOver func(ds []*kycd.Delivery, until time.Time)
	Metrics  Metrics
	// MaxBacklog bounds the events acknowledged and not yet projected:
	// beyond it Receive fails with EUNAVAILABLE (503, Ralio retries), so the
	// projection lag cannot grow without limit. DefaultMaxBacklog when 0.
	MaxBacklog int
	// ProjectBatch is the most log entries one projection transaction
	// takes (DefaultProjectBatch when 0).
	ProjectBatch int
	// Gather is how long a commit batch waits for requests being decoded
	// (DefaultGather when 0; negative: never waits).
	Gather time.Duration
	// MaxClockSkew is how far after its receipt an event may be stamped
	// and still be ordered at its timestamp (kycd.OrderingTime;
	// kycd.DefaultMaxClockSkew when 0). An event beyond it is logged
	// (WARN) and counted (Metrics.EventClockSkewed) when projected.
	MaxClockSkew time.Duration
	// Verifier checks the signature of a held body (the signature hold)
	// when it is replayed: with the secrets configured now. Without one,
	// no held body is replayed.
	Verifier interface {
		Verify(body []byte, signature string) error
	}
	// Hold bounds the signature hold (DefaultHold when zero).
	Hold kycd.SignatureHold
	// Tracing makes the append's and the projection batches' spans; none
	// when nil or off.
	Tracing *tracing.Tracing
}

// Defaults of Options.
const (
	DefaultMaxBacklog   = 20000
	DefaultProjectBatch = 2000
	DefaultGather       = 500 * time.Microsecond
	maxAppendBatch      = 1024
)

// Ingester is kycd's write path: an appender that acknowledges each
// event once it is durable in the event log, and a projector that derives
// everything else from the log. Signature checks happen before it: every
// body it sees came from Ralio.
type Ingester struct {
	store  Store
	now    func() time.Time
	app    *appender
	proj   *projector
	health writeHealth
	verify interface {
		Verify(body []byte, signature string) error
	}
	hold *holder

	tracing *tracing.Tracing
}

// New starts an Ingester on store: the appender runs at once (stop it with
// Close); the projector runs in Run, or on demand in Drain.
func New(ctx context.Context, store Store, o Options) (*Ingester, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = DefaultMaxBacklog
	}
	if o.ProjectBatch <= 0 {
		o.ProjectBatch = DefaultProjectBatch
	}
	if o.Gather == 0 {
		o.Gather = DefaultGather
	}
	if o.Hold.MaxCount <= 0 {
		o.Hold.MaxCount = DefaultHold.MaxCount
	}
	if o.Hold.MaxBytes <= 0 {
		o.Hold.MaxBytes = DefaultHold.MaxBytes
	}
	in := &Ingester{store: store, now: o.Now, verify: o.Verifier, tracing: o.Tracing}
	in.hold = newHolder(store, o.Hold, o.Now, o.Logger)
	in.proj = newProjector(store, kycd.PlanOptions{Sinks: o.Sinks, Guide: o.Guide, MaxClockSkew: o.MaxClockSkew}, o.ProjectBatch, o.Logger, o.Metrics,
		func(entries []*kycd.LogEntry, p *kycd.Plan) {
			in.app.projected(entries)
			if len(p.HandedOff) > 0 && o.HandOver != nil {
				o.HandOver(p.HandedOff, p.Handoff.Until)
			}
			if len(p.Notifications) > 0 && o.Notified != nil {
				o.Notified()
			}
		})
	in.proj.tracing = o.Tracing
	in.proj.handoff = o.Handoff
	in.app = newAppender(store, maxAppendBatch, o.MaxBacklog, o.Gather, o.Metrics.AppendBatch, o.Now)
	in.app.before, in.app.failed = in.proj.remember, in.proj.forget
	in.app.appended = func([]*kycd.LogEntry) { in.proj.appended() }
	in.proj.behind, in.proj.watermark = in.app.backlog, max(o.MaxBacklog/2, 1)
	if err := in.app.load(ctx); err != nil {
		return nil, err
	}
	// The appender outlives ctx, which bounds the load only; each batch it
	// commits has a timeout of its own, since a batch carries many requests
	// and none of their contexts may cut it short.
	in.app.start() //nolint:contextcheck // see above: the appender's commits are not ctx's
	return in, nil
}

// Close stops the appender after the batch it is committing, so every
// request answered stays answered truthfully. Later calls of Receive fail
// with EUNAVAILABLE.
func (in *Ingester) Close() {
	in.app.close()
	in.hold.close()
}

// Run projects the log until ctx ends, whenever events are appended and
// every second in case another process appended some.
func (in *Ingester) Run(ctx context.Context) {
	in.proj.run(ctx, time.Second, func(ctx context.Context) {
		if err := in.app.sweep(ctx); err != nil && ctx.Err() == nil {
			in.proj.logger.Warn("could not check which events other replicas projected", "err", err)
		}
	})
}

// Drain projects until the log has nothing left to project.
func (in *Ingester) Drain(ctx context.Context) (int, error) { return in.proj.drain(ctx) }

// Backlog is how many events this process acknowledged that are not yet
// projected.
func (in *Ingester) Backlog() int { return in.app.backlog() }

// Lag is how long the oldest event acknowledged and not yet projected has
// waited.
func (in *Ingester) Lag() time.Duration {
	if t, ok := in.app.oldest(); ok {
		return in.now().Sub(t)
	}
	return 0
}

// CaughtUp waits, at most bound, until every event acknowledged before the
// call (by any process on the store) is projected, and reports whether it
// is.
func (in *Ingester) CaughtUp(ctx context.Context, bound time.Duration) (bool, error) {
	return CaughtUp(ctx, in.store, bound, func() <-chan struct{} {
		in.proj.hurry()
		return in.proj.progress.wait()
	})
}

// CaughtUp waits, at most bound, until log has projected every entry
// committed before the call; progress (may be nil) wakes it early.
func CaughtUp(ctx context.Context, log kycd.EventLog, bound time.Duration, progress func() <-chan struct{}) (bool, error) {
	head, err := log.LogHead(ctx)
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(bound)
	for {
		var woken <-chan struct{}
		if progress != nil {
			woken = progress()
		}
		left, err := log.UnprojectedLog(ctx, head, 1)
		if err != nil {
			return false, err
		}
		wait := time.Until(deadline)
		if len(left) == 0 || wait <= 0 {
			return len(left) == 0, nil
		}
		t := time.NewTimer(min(wait, 20*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-woken:
		case <-t.C:
		}
		t.Stop()
	}
}

// Result is what became of one body.
type Result struct {
	EventID      string
	EventType    string
	Known        bool   // the event type is one kycd understands
	Duplicate    bool   // the same event was recorded before; nothing changed
	Seq          int64  // the log entry, when the body was appended now
	Outcome      string // once projected: applied, stale, unhandled; duplicate
	QuarantineID string // set when the body was refused and kept
}

// Receive decodes body and appends it to the event log; it returns once the
// entry is durable. It fails with EINVALID (wrapping a *ralio.ValidationError)
// or ECONFLICT after keeping the body in quarantine, and with EUNAVAILABLE
// when the log could not record it, the backlog is full, or, for a refused
// body, the quarantine could not keep it: then nothing is lost as long as
// the caller answers so that Ralio retries.
func (in *Ingester) Receive(ctx context.Context, body []byte) (Result, error) {
	return in.receive(ctx, body, true)
}

func (in *Ingester) receive(ctx context.Context, body []byte, quarantine bool) (Result, error) {
	arrived := in.app.arrival()
	defer arrived()
	now := in.now()
	re, err := ralio.Parse(body)
	if err != nil {
		var ve *ralio.ValidationError
		if !errors.As(err, &ve) {
			return Result{}, &kycd.Error{Code: kycd.EINTERNAL, Message: "could not decode the event", Err: err}
		}
		// Parse returns what it could decode; a valid id indexes the quarantine.
		res := Result{EventID: re.ID}
		refusal := &kycd.Error{Code: kycd.EINVALID, Message: "the body is not a valid Ralio event", Err: ve}
		if quarantine {
			if res.QuarantineID, err = in.quarantine(ctx, now, kycd.QuarantineInvalid, res.EventID, body, nil, refusal); err != nil {
				return res, err
			}
		}
		return res, refusal
	}
	ev := toEvent(&re, body, now)
	ctx, traced := traceAppend(ctx, in.tracing, ev.ID)
	res, err := in.append(ctx, ev, Result{EventID: ev.ID, EventType: ev.Type, Known: re.Known}, quarantine, arrived)
	traced(res, err)
	return res, err
}

// Append appends an event decoded elsewhere (its Body and BodyHash set) as
// Receive does a body.
func (in *Ingester) Append(ctx context.Context, ev *kycd.Event) (Result, error) {
	return in.append(ctx, ev, Result{EventID: ev.ID, EventType: ev.Type, Known: kycd.NotificationType(ev) != ""}, true, nil)
}

func (in *Ingester) append(ctx context.Context, ev *kycd.Event, res Result, quarantine bool, arrived func()) (Result, error) {
	e := &kycd.LogEntry{EventID: ev.ID, ReceivedAt: ev.ReceivedAt, Body: ev.Body, BodyHash: ev.BodyHash, Event: ev}
	r, err := in.app.append(ctx, e, arrived)
	res.Duplicate, res.Seq = r.duplicate, e.Seq
	if res.Duplicate {
		res.Outcome = kycd.OutcomeDuplicate
	}
	if kycd.ErrorCode(err) == kycd.ECONFLICT && quarantine {
		var original []byte
		if r.originalSeq != 0 {
			original, _ = in.store.LogBody(ctx, r.originalSeq)
		}
		if res.QuarantineID, err = in.quarantine(ctx, ev.ReceivedAt, kycd.QuarantineConflict, ev.ID, ev.Body, original, err); err != nil {
			return res, err
		}
		return res, kycd.Errorf(kycd.ECONFLICT, "event %s was received before with a different body", ev.ID)
	}
	return res, err
}

// Project waits until the event of res is projected, projecting in this
// process if need be, and sets res.Outcome.
func (in *Ingester) Project(ctx context.Context, res *Result) error {
	if res.Duplicate || res.Seq == 0 {
		return nil
	}
	if _, err := in.proj.drain(ctx); err != nil {
		return err
	}
	rec, err := in.store.Event(ctx, res.EventID)
	if err != nil {
		return err
	}
	res.Outcome = rec.Outcome
	return nil
}

// Replay runs a quarantined body through ingest again, e.g. after a fix,
// waits for its projection, and marks it replayed when it is now accepted.
// A body refused again stays in quarantine as it was; a discarded one is
// ECONFLICT.
func (in *Ingester) Replay(ctx context.Context, id string) (Result, error) {
	q, err := in.store.QuarantineItem(ctx, id)
	if err != nil {
		return Result{}, err
	}
	// A body an operator gave up stays given up.
	if !q.DiscardedAt.IsZero() {
		return Result{}, kycd.QuarantineSettled(q)
	}
	// A held body is Ralio's only if it verifies under a secret configured
	// now; until then nothing acts on it.
	if err := in.checkHeld(q); err != nil {
		return Result{}, kycd.Errorf(kycd.ECONFLICT, "quarantined body %s was refused for its signature, and %s", q.ID, kycd.ErrorMessage(err))
	}
	res, err := in.receive(ctx, q.Body, false)
	if err != nil {
		return res, err
	}
	if err := in.Project(ctx, &res); err != nil {
		return res, err
	}
	if err := in.store.ResolveQuarantine(ctx, id, res.Outcome, in.now()); err != nil {
		return res, err
	}
	return res, nil
}
