package ingest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kycd/kycd"
)

// appendTimeout bounds one batch's commit to the log.
const appendTimeout = 15 * time.Second

// appender acknowledges events: it commits every waiting request to the
// event log in one transaction (group commit) and answers each once that
// commit is durable. Deduplication happens here, before the write, without
// writing an index: an event id is a duplicate if it is pending (appended
// by this process, not yet known to be projected) or projected (a read of
// the store's event id index).
type appender struct {
	log        kycd.EventLog
	maxBatch   int
	maxBacklog int
	gather     time.Duration // how long a batch waits for requests on their way
	now        func() time.Time
	observe    func(n int)
	// before is called with the entries of a batch before their commit,
	// failed after a failed one, appended after a successful one.
	before, failed, appended func(entries []*kycd.LogEntry)

	reqs     chan *appendReq
	arriving atomic.Int64 // requests decoded or being decoded, not yet queued
	quit     chan struct{}
	done     chan struct{}
	closed   atomic.Bool

	mu      sync.Mutex
	pending map[string]pendingEntry // by event id

	// last is the result of the latest commit to the log; nil until one
	// was tried. Readiness follows it (Ingester.Writable).
	last atomic.Pointer[commitResult]
}

// commitResult is the outcome of one write to the log: a commit, or a
// write probe.
type commitResult struct {
	at  time.Time
	err error
}

type pendingEntry struct {
	seq        int64
	hash       string
	receivedAt time.Time
}

type appendReq struct {
	ctx   context.Context
	entry *kycd.LogEntry
	done  chan appendResult // buffered: the writer never blocks on it
}

type appendResult struct {
	duplicate   bool
	originalSeq int64 // for a conflict: the entry stored first under the id
	err         error
}

func newAppender(log kycd.EventLog, maxBatch, maxBacklog int, gather time.Duration, observe func(int), now func() time.Time) *appender {
	a := &appender{
		log: log, maxBatch: maxBatch, maxBacklog: maxBacklog, gather: gather, observe: observe, now: now,
		reqs: make(chan *appendReq), quit: make(chan struct{}), done: make(chan struct{}),
		pending: map[string]pendingEntry{},
	}
	return a
}

// start starts the writer.
func (a *appender) start() { go a.writeLoop() }

// load fills the pending set with the entries the log holds unprojected,
// as after a restart.
func (a *appender) load(ctx context.Context) error {
	entries, err := a.log.UnprojectedLog(ctx, maxSeq, noLimit)
	if err != nil {
		return fmt.Errorf("ingest: load the unprojected log: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range entries {
		a.pending[e.EventID] = pendingEntry{seq: e.Seq, hash: e.BodyHash, receivedAt: e.ReceivedAt}
	}
	return nil
}

// maxSeq and noLimit ask UnprojectedLog for everything.
const (
	maxSeq  = int64(^uint64(0) >> 1)
	noLimit = 1 << 30
)

// arrival announces a request that will be appended soon, so that the
// batch being formed waits for it instead of committing without it. Call
// the returned func once the request is queued or given up.
func (a *appender) arrival() func() {
	a.arriving.Add(1)
	var once sync.Once
	return func() { once.Do(func() { a.arriving.Add(-1) }) }
}

// append commits e to the log, or finds it a duplicate (same id and body
// hash as an entry appended or projected before). Another body under a
// known id fails with ECONFLICT; a failure to commit or an overfull
// backlog with EUNAVAILABLE.
func (a *appender) append(ctx context.Context, e *kycd.LogEntry, arrived func()) (appendResult, error) {
	if arrived != nil {
		defer arrived()
	}
	if a.closed.Load() {
		return appendResult{}, kycd.Errorf(kycd.EUNAVAILABLE, "kycd is shutting down")
	}
	if n := a.backlog(); n >= a.maxBacklog {
		return appendResult{}, kycd.Errorf(kycd.EUNAVAILABLE, "kycd is %d events behind on projecting; retry later", n)
	}
	req := &appendReq{ctx: ctx, entry: e, done: make(chan appendResult, 1)}
	select {
	case a.reqs <- req:
		if arrived != nil {
			arrived()
		}
	case <-a.quit:
		return appendResult{}, kycd.Errorf(kycd.EUNAVAILABLE, "kycd is shutting down")
	case <-ctx.Done():
		return appendResult{}, &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "gave up waiting for the event log", Err: ctx.Err()}
	}
	select {
	case r := <-req.done:
		return r, r.err
	case <-ctx.Done():
		// The batch may still commit it; a retry then finds a duplicate.
		return appendResult{}, &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "gave up waiting for the commit", Err: ctx.Err()}
	}
}

// backlog is how many appended entries are not known to be projected.
func (a *appender) backlog() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// oldest returns the receive time of the oldest pending entry.
func (a *appender) oldest() (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var t time.Time
	for _, p := range a.pending {
		if t.IsZero() || p.receivedAt.Before(t) {
			t = p.receivedAt
		}
	}
	return t, !t.IsZero()
}

// projected forgets pending entries that a projection took.
func (a *appender) projected(entries []*kycd.LogEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range entries {
		if p, ok := a.pending[e.EventID]; ok && p.seq == e.Seq {
			delete(a.pending, e.EventID)
		}
	}
}

// sweep forgets pending entries that another process projected (another
// replica on PostgreSQL).
func (a *appender) sweep(ctx context.Context) error {
	a.mu.Lock()
	var through int64
	for _, p := range a.pending {
		through = max(through, p.seq)
	}
	n := len(a.pending)
	a.mu.Unlock()
	if n == 0 {
		return nil
	}
	still, err := a.log.UnprojectedLog(ctx, through, noLimit)
	if err != nil {
		return err
	}
	keep := make(map[int64]bool, len(still))
	for _, e := range still {
		keep[e.Seq] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, p := range a.pending {
		if p.seq <= through && !keep[p.seq] {
			delete(a.pending, id)
		}
	}
	return nil
}

// close stops the writer after the batch it is committing.
func (a *appender) close() {
	if a.closed.Swap(true) {
		return
	}
	close(a.quit)
	<-a.done
}

// writeLoop is the one writer of the log: it takes every queued request,
// waits a moment for those on their way, and commits them together.
func (a *appender) writeLoop() {
	defer close(a.done)
	batch := make([]*appendReq, 0, a.maxBatch)
	for {
		select {
		case r := <-a.reqs:
			batch = append(batch[:0], r)
		case <-a.quit:
			return
		}
		batch = a.fill(batch)
		a.commit(batch)
		clear(batch)
	}
}

// fill adds every queued request to batch, and keeps adding while other
// requests are being decoded, for at most gather: the fsync of a commit is
// most of its cost, so a request that misses a batch by a few microseconds
// would wait a whole commit longer.
func (a *appender) fill(batch []*appendReq) []*appendReq {
	var deadline *time.Timer
	defer func() {
		if deadline != nil {
			deadline.Stop()
		}
	}()
	for len(batch) < a.maxBatch {
		select {
		case r := <-a.reqs:
			batch = append(batch, r)
			continue
		default:
		}
		if a.gather <= 0 || a.arriving.Load() == 0 {
			return batch
		}
		if deadline == nil {
			deadline = time.NewTimer(a.gather)
		}
		select {
		case r := <-a.reqs:
			batch = append(batch, r)
		case <-deadline.C:
			return batch
		case <-a.quit:
			return batch
		}
	}
	return batch
}

// commit decides which requests of batch are new, appends those in one
// transaction, and answers every request.
func (a *appender) commit(batch []*appendReq) {
	if a.observe != nil {
		a.observe(len(batch))
	}
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	results := make([]appendResult, len(batch))
	decided := make([]bool, len(batch))
	first := make(map[string]int, len(batch)) // event id → index of its first new request
	var lookup []string

	// Pending first, then the projected index: an entry leaves the pending
	// set only after its projection committed, so one that is in neither
	// was never appended.
	a.mu.Lock()
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i].err, decided[i] = &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "gave up waiting for the event log", Err: err}, true
			continue
		}
		if p, ok := a.pending[r.entry.EventID]; ok {
			results[i], decided[i] = same(p.hash, p.seq, r.entry), true
			continue
		}
		lookup = append(lookup, r.entry.EventID)
	}
	a.mu.Unlock()
	var known map[string]kycd.KnownEvent
	var err error
	if len(lookup) > 0 {
		known, err = a.log.KnownEvents(ctx, lookup)
	}
	var entries []*kycd.LogEntry
	for i, r := range batch {
		switch {
		case decided[i]:
			continue
		case err != nil:
			results[i].err = kycd.Unrecorded(fmt.Errorf("ingest: look up event ids: %w", err))
			continue
		}
		id := r.entry.EventID
		if k, ok := known[id]; ok {
			results[i], decided[i] = same(k.BodyHash, k.Seq, r.entry), true
		} else if j, ok := first[id]; ok {
			results[i] = same(batch[j].entry.BodyHash, 0, r.entry)
		} else {
			first[id] = i
			entries = append(entries, r.entry)
		}
	}
	if err == nil && len(entries) > 0 {
		if a.before != nil {
			a.before(entries)
		}
		if err = a.log.AppendLog(ctx, entries); err != nil && a.failed != nil {
			a.failed(entries)
		}
		a.last.Store(&commitResult{at: a.now(), err: err})
		if err == nil {
			a.mu.Lock()
			for _, e := range entries {
				a.pending[e.EventID] = pendingEntry{seq: e.Seq, hash: e.BodyHash, receivedAt: e.ReceivedAt}
			}
			a.mu.Unlock()
		}
	}
	for i, r := range batch {
		if !decided[i] {
			if err != nil {
				results[i] = appendResult{err: kycd.Unrecorded(fmt.Errorf("ingest: append: %w", err))}
			} else if j, ok := first[r.entry.EventID]; ok && j != i && results[i].originalSeq == 0 && results[i].err != nil {
				results[i].originalSeq = batch[j].entry.Seq
			}
		}
		r.done <- results[i]
	}
	if err == nil && len(entries) > 0 && a.appended != nil {
		a.appended(entries)
	}
}

// same compares e with the entry stored under its id: a duplicate, or a
// conflict (ECONFLICT) naming the stored entry.
func same(hash string, seq int64, e *kycd.LogEntry) appendResult {
	if kycd.SameBody(hash, e.BodyHash, e.Body) {
		return appendResult{duplicate: true}
	}
	return appendResult{originalSeq: seq, err: kycd.Errorf(kycd.ECONFLICT, "event %s was received before with a different body", e.EventID)}
}
