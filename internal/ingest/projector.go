package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/tracing"
	"github.com/kycd/kycd/ralio"
)

// projector derives sessions, subjects, history and notifications from the
// event log, in batches, asynchronously. Applying an entry twice has no
// second effect: the planner finds it projected, and notification ids
// derive from event ids.
type projector struct {
	log       kycd.EventLog
	opt       kycd.PlanOptions
	batchSize int
	logger    *slog.Logger
	metrics   Metrics
	projected func(entries []*kycd.LogEntry, p *kycd.Plan)
	tracing   *tracing.Tracing     // its batches' spans; none when nil
	handoff   func() *kycd.Handoff // the lease of new deliveries handed to the local dispatcher; none when nil

	wake     chan struct{}
	hurried  chan struct{}
	progress signal

	// behind, when set, is how many events this process acknowledged that
	// are not yet projected; at watermark or more the projector stops
	// yielding to the acknowledgement (see yield).
	behind    func() int
	watermark int
	// appendedAt is when the appender last committed to the log (Unix
	// nanoseconds): the acknowledgement is busy while it is recent.
	appendedAt atomic.Int64

	mu      sync.Mutex
	decoded map[string]*kycd.Event // events the appender decoded, by id

	// sizing is how many entries the next batch claims. A full disk
	// refuses a transaction of a thousand events that one of a hundred
	// still fits in, and once a batch has failed the same one would fail
	// for ever.
	sizing batchSizing
	health projectionHealth
}

// batchSizing sizes the projector's batches: batchSize, halved after
// each batch that failed as unavailable and doubled back after each that
// committed, but kept below the size that failed for ceilingFor after the
// failure, so that a disk with room for 300 events a transaction takes
// batches of 300 or less instead of failing every other one; past
// ceilingFor it grows back (the space may have been freed).
type batchSizing struct {
	mu        sync.Mutex
	limit     int
	ceiling   int // the smallest size refused within ceilingFor; 0: none
	ceilingAt time.Time
}

const ceilingFor = 10 * time.Second

func (b *batchSizing) next(batchSize int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ceiling != 0 && time.Since(b.ceilingAt) >= ceilingFor {
		b.ceiling = 0
	}
	return max(1, min(b.limit, batchSize))
}

func (b *batchSizing) committed(size, batchSize int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	grown := min(batchSize, 2*size)
	if b.ceiling != 0 {
		grown = min(grown, b.ceiling-1)
	}
	b.limit = max(1, grown, size)
}

func (b *batchSizing) refused(size int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ceiling == 0 || size < b.ceiling {
		b.ceiling = size
	}
	b.ceilingAt = time.Now()
	b.limit = max(1, size/2)
}

// projectionHealth remembers since when the projection fails to commit.
type projectionHealth struct {
	mu      sync.Mutex
	failing time.Time // the start of the first failed batch since the latest success; zero when the latest did not fail
}

// record notes the outcome of a batch started at start.
func (h *projectionHealth) record(start time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.failing = time.Time{}
	case h.failing.IsZero():
		h.failing = start
	}
}

// failingSince is the start of the failed batches since the latest
// success; zero when the latest did not fail.
func (h *projectionHealth) failingSince() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failing
}

// maxBatchBytes bounds the bodies one projection batch holds in memory.
const maxBatchBytes = 16 << 20

// maxDecoded bounds the decoded events kept for the projector; beyond it,
// the projector decodes bodies again.
const maxDecoded = 8192

func newProjector(log kycd.EventLog, opt kycd.PlanOptions, batchSize int, logger *slog.Logger, m Metrics, projected func([]*kycd.LogEntry, *kycd.Plan)) *projector {
	p := &projector{
		log: log, opt: opt, batchSize: batchSize, logger: logger, metrics: m, projected: projected,
		wake: make(chan struct{}, 1), hurried: make(chan struct{}, 1), decoded: map[string]*kycd.Event{},
	}
	p.sizing.limit = batchSize
	return p
}

// remember keeps the decoded events of entries about to be appended, so
// that the projection of the entries needs not decode them again. It must
// happen before the commit: a projection may claim an entry the moment it
// is committed.
func (p *projector) remember(entries []*kycd.LogEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range entries {
		if e.Event != nil && len(p.decoded) < maxDecoded {
			// Without its body: the projection takes the body from the log
			// when it needs one, and a kept body would stay in memory,
			// outside the webhook's byte budget, until it is projected.
			ev := *e.Event
			ev.Body = nil
			p.decoded[e.EventID] = &ev
		}
	}
}

// forget drops what remember kept of entries that were not appended after
// all, or are projected.
func (p *projector) forget(entries []*kycd.LogEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range entries {
		if ev, ok := p.decoded[e.EventID]; ok && ev.BodyHash == e.BodyHash {
			delete(p.decoded, e.EventID)
		}
	}
}

func (p *projector) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// The projection yields to the acknowledgement. While webhooks keep
// being appended, the projector starts a batch at most every maxDefer,
// unless the backlog reaches its watermark (half of --max-backlog) or a
// reader waits for its writes (hurry). So in a burst the projection (and
// the dispatch it wakes) runs behind, within the backlog's bound, and
// leaves the cores to the requests; under a sustained load it projects
// fewer, larger batches, which write each page of an index once for many
// events: fewer bytes and less CPU per event (see docs/benchmarks.md).
// Once the appends pause for quiet, it catches up at once.
const (
	maxDefer   = time.Second
	quiet      = 50 * time.Millisecond
	yieldCheck = 20 * time.Millisecond
)

// appended notes a commit to the log and offers its entries.
func (p *projector) appended() {
	p.appendedAt.Store(time.Now().UnixNano())
	p.kick()
}

// hurry makes the projector start its next batch now.
func (p *projector) hurry() {
	select {
	case p.hurried <- struct{}{}:
	default:
	}
	p.kick()
}

// run projects until ctx ends: whenever entries are offered, and every
// interval in case another process appended some.
func (p *projector) run(ctx context.Context, interval time.Duration, idle func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		n, full, err := p.fullBatch(ctx)
		if err != nil && ctx.Err() == nil {
			p.logger.Error("projection failed; retrying", "err", err)
		}
		switch {
		case err == nil && full:
			continue // a full batch: more is waiting
		case err == nil && n > 0:
			p.yield(ctx, start)
			continue
		}
		if idle != nil {
			idle(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}

// yield waits, after a batch that began at start, while the
// acknowledgement is busy (ackBusy), at most until start+maxDefer; a
// reader that hurries the projector and the end of ctx end it at once.
func (p *projector) yield(ctx context.Context, start time.Time) {
	for p.ackBusy() {
		d := time.Until(start.Add(maxDefer))
		if d <= 0 {
			return
		}
		t := time.NewTimer(min(d, yieldCheck))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.hurried:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ackBusy reports whether the projector should leave the cores to the
// acknowledgement: events were appended within quiet, and the backlog is
// under the watermark.
func (p *projector) ackBusy() bool {
	if p.behind == nil || time.Since(time.Unix(0, p.appendedAt.Load())) >= quiet {
		return false
	}
	return p.behind() < p.watermark
}

// drain projects batches until the log has nothing unprojected and reports
// how many entries it projected.
func (p *projector) drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := p.batch(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// batch projects one batch of the log (see fullBatch).
func (p *projector) batch(ctx context.Context) (int, error) {
	n, _, err := p.fullBatch(ctx)
	return n, err
}

// fullBatch projects one batch of the log and reports whether it took as
// many entries as it could claim (more may be waiting). It plans again
// when another projector changed a row it read, and returns transient
// failures (store unavailable) for a later try, which claims half as many
// entries. Any other failure means an entry cannot be stored as planned,
// and would stop every later entry too: the batch is halved until that
// one entry is found, and it goes to the quarantine.
func (p *projector) fullBatch(ctx context.Context) (n int, full bool, err error) {
	start := time.Now()
	defer func() {
		if ctx.Err() == nil {
			p.health.record(start, err)
		}
	}()
	first := p.sizing.next(p.batchSize)
	limit, conflicts := first, 0
	for {
		n, err := p.tryBatch(ctx, limit)
		switch code := kycd.ErrorCode(err); {
		case err == nil:
			if n > 0 {
				p.sizing.committed(first, p.batchSize)
			}
			return n, n == limit, nil
		case code == kycd.ECONFLICT && conflicts < 10:
			conflicts++
			continue
		case code == kycd.EUNAVAILABLE || code == kycd.ECONFLICT || ctx.Err() != nil:
			if code == kycd.EUNAVAILABLE {
				p.sizing.refused(first)
			}
			return 0, false, err
		case limit > 1:
			limit = (limit + 1) / 2
			continue
		}
		n, err = p.quarantineUnstorable(ctx, err)
		return n, false, err
	}
}

// quarantineUnstorable keeps the oldest unprojected entry, which failed
// alone, in the quarantine instead of projecting it.
func (p *projector) quarantineUnstorable(ctx context.Context, cause error) (int, error) {
	tx, err := p.log.BeginProjection(ctx)
	if err != nil {
		return 0, fmt.Errorf("ingest: quarantine an unstorable entry: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	entries, err := tx.ClaimLog(ctx, 1, maxBatchBytes)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	e := entries[0]
	refusal := &kycd.Error{Code: kycd.EINTERNAL, Message: "the event could not be stored as parsed; its body is kept here", Err: cause}
	q, err := quarantineItem(quarantineID(e.Seq), e.ReceivedAt, kycd.QuarantineUnstorable, e.EventID, e.Body, nil, refusal)
	if err != nil {
		return 0, err
	}
	if err := tx.Apply(ctx, &kycd.Plan{Projected: []int64{e.Seq}, Quarantine: []*kycd.Quarantined{q}}); err != nil {
		return 0, fmt.Errorf("ingest: quarantine an unstorable entry: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("ingest: quarantine an unstorable entry: %w", err)
	}
	p.forget(entries)
	// Loud on purpose: an acknowledged event did not take effect.
	p.logger.Error("an acknowledged event could not be stored; it is kept in quarantine for an operator",
		"event_id", e.EventID, "quarantine_id", q.ID, "err", cause)
	p.metrics.count("unknown", kycd.QuarantineUnstorable)
	if p.projected != nil {
		p.projected(entries, &kycd.Plan{})
	}
	p.progress.broadcast()
	return 1, nil
}

func (p *projector) tryBatch(ctx context.Context, limit int) (_ int, err error) {
	start := time.Now()
	tx, err := p.log.BeginProjection(ctx)
	if err != nil {
		return 0, fmt.Errorf("ingest: project: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	entries, err := tx.ClaimLog(ctx, limit, maxBatchBytes)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	ctx, traced := traceBatch(ctx, p.tracing, entries)
	defer func() { traced(err) }()
	valid := make([]*kycd.LogEntry, 0, len(entries))
	var refused []*kycd.Quarantined
	var refusedSeqs []int64
	var bodiless []*kycd.LogEntry
	for _, e := range entries {
		ev, err := p.event(e)
		if err != nil {
			if e.Body == nil {
				bodiless = append(bodiless, e)
				continue
			}
			q, qerr := quarantineItem(quarantineID(e.Seq), e.ReceivedAt, kycd.QuarantineInvalid, e.EventID, e.Body, nil, err)
			if qerr != nil {
				return 0, qerr
			}
			refused = append(refused, q)
			refusedSeqs = append(refusedSeqs, e.Seq)
			continue
		}
		e.Event = ev
		valid = append(valid, e)
	}
	keys := kycd.Keys(valid)
	for _, e := range bodiless {
		keys.EventIDs = append(keys.EventIDs, e.EventID)
	}
	cur, err := tx.Current(ctx, keys)
	if err != nil {
		return 0, fmt.Errorf("ingest: project: read current rows: %w", err)
	}
	// An entry without its body is one an erasure (or the retention) took
	// the body of. Projected already (a rebuild claims it again), it has
	// nothing left to do; never projected, it cannot be, and goes to the
	// quarantine as a refusal without a body.
	for _, e := range bodiless {
		if k, ok := cur.Events[e.EventID]; ok && k.Seq == e.Seq {
			refusedSeqs = append(refusedSeqs, e.Seq)
			continue
		}
		q, err := quarantineItem(quarantineID(e.Seq), e.ReceivedAt, kycd.QuarantineInvalid, e.EventID, []byte{}, nil,
			kycd.Errorf(kycd.EINVALID, "the body of event %s was purged before it was projected", e.EventID))
		if err != nil {
			return 0, err
		}
		refused = append(refused, q)
		refusedSeqs = append(refusedSeqs, e.Seq)
	}
	plan := kycd.PlanBatch(valid, cur, p.opt)
	plan.Projected = append(plan.Projected, refusedSeqs...)
	plan.Quarantine = refused
	if p.handoff != nil {
		plan.Handoff = p.handoff()
	}
	for _, c := range plan.Conflicts {
		original, err := tx.LogBody(ctx, c.OriginalSeq)
		if err != nil && kycd.ErrorCode(err) != kycd.ENOTFOUND {
			return 0, fmt.Errorf("ingest: project: original body: %w", err)
		}
		refusal := kycd.Errorf(kycd.ECONFLICT, "event %s was received before with a different body", c.Entry.EventID)
		q, err := quarantineItem(quarantineID(c.Entry.Seq), c.Entry.ReceivedAt, kycd.QuarantineConflict, c.Entry.EventID, c.Entry.Body, original, refusal)
		if err != nil {
			return 0, err
		}
		plan.Quarantine = append(plan.Quarantine, q)
	}
	if err := tx.Apply(ctx, plan); err != nil {
		return 0, fmt.Errorf("ingest: project: apply: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("ingest: project: commit: %w", err)
	}
	p.forget(entries)
	if len(plan.Quarantine) > 0 {
		p.logger.Error("events refused while projecting; kept in quarantine", "count", len(plan.Quarantine))
	}
	p.metrics.observeBatch(len(entries), time.Since(start))
	for _, ev := range plan.Events {
		p.metrics.count(ev.Type, ev.Outcome)
		if ev.ClockSkew {
			p.clockSkewed(ev)
		}
	}
	if p.projected != nil {
		p.projected(entries, plan)
	}
	p.progress.broadcast()
	return len(entries), nil
}

// clockSkewed reports an event stamped too far after its receipt: ids and
// times only, no personal data.
func (p *projector) clockSkewed(ev *kycd.EventRow) {
	p.metrics.clockSkewed()
	at, _ := kycd.OrderingTime(ev.Timestamp, ev.ReceivedAt, p.opt.MaxClockSkew)
	p.logger.Warn("event stamped after its receipt by more than --max-clock-skew; ordered at receipt plus the skew, not at its timestamp",
		"event_id", ev.ID, "type", ev.Type, "outcome", ev.Outcome,
		"timestamp", ev.Timestamp.Format(time.RFC3339Nano), "received_at", ev.ReceivedAt.Format(time.RFC3339Nano),
		"ordered_at", at.Format(time.RFC3339Nano))
}

// event returns the decoded event of an entry: the one the appender
// decoded, or the body decoded again.
func (p *projector) event(e *kycd.LogEntry) (*kycd.Event, error) {
	p.mu.Lock()
	ev, ok := p.decoded[e.EventID]
	p.mu.Unlock()
	if ok && ev.BodyHash == e.BodyHash {
		return ev, nil
	}
	if e.Body == nil {
		return nil, kycd.Errorf(kycd.EINVALID, "the body of event %s was purged before it was projected", e.EventID)
	}
	re, err := ralio.Parse(e.Body)
	if err != nil {
		var ve *ralio.ValidationError
		if errors.As(err, &ve) {
			return nil, &kycd.Error{Code: kycd.EINVALID, Message: "the body is not a valid Ralio event", Err: ve}
		}
		return nil, err
	}
	ev = toEvent(&re, e.Body, e.ReceivedAt)
	ev.BodyHash = e.BodyHash
	return ev, nil
}

var quarantineNamespace = uuid.MustParse("9b7f3c1e-2d4a-4e8b-a6c5-0f1e2d3c4b5a")

// signal wakes everyone waiting for the next broadcast.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next broadcast.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
