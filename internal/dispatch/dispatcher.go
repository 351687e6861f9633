// Package dispatch drains the notification outbox: it claims due deliveries
// under a lease, sends them through their sinks concurrently, records every
// attempt and schedules the next with backoff until the delivery is
// delivered or dead.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/tracing"
)

// Options configure a Dispatcher. Zero values take the defaults noted.
type Options struct {
	Store   kycd.Store
	Sinks   map[string]kycd.Sink // by name, the name stored on each delivery
	Backoff Backoff              // DefaultBackoff
	Logger  *slog.Logger
	Metrics *Metrics // none when nil
	// Tracing makes a span of each attempt, whose traceparent the sinks
	// send; none when nil or off.
	Tracing *tracing.Tracing

	Now  func() time.Time // time.Now
	Rand func() float64   // math/rand/v2.Float64

	Owner   string        // a new UUID: this dispatcher's name on its leases
	Timeout time.Duration // 10 s: one send's limit
	Lease   time.Duration // 4×Timeout: how long a claim holds
	// Concurrency is how many sends run at once per sink (16), and so how
	// many deliveries of a sink one claim takes: every claimed delivery is
	// sent at once, well inside its lease.
	Concurrency int
	Poll        time.Duration // 500 ms between looks at an idle outbox
}

// Dispatcher delivers notifications. Several may run on one store (one per
// replica): leases keep them from working the same delivery at once.
type Dispatcher struct {
	o     Options
	app   *app.Service // where a 410 pauses a sink
	names []string
	wake  map[string]chan struct{} // one per sink

	mu      sync.Mutex
	handed  map[string][]handed // per sink, the deliveries handed over, oldest first
	stopped bool                // Run has ended: what is handed over now is released at once
}

// handed is a delivery a projection leased to this dispatcher, and when
// its lease ends.
type handed struct {
	d     *kycd.Delivery
	until time.Time
}

// maxHanded bounds the handed-over deliveries a sink keeps waiting in
// memory. A sink whose queue is full is left out of the next Handoff, so
// its new deliveries are written unleased and claimed; any handed over
// beyond the bound all the same are released at once.
const maxHanded = 8192

// New returns a Dispatcher for o.
func New(o Options) (*Dispatcher, error) {
	if o.Store == nil || len(o.Sinks) == 0 {
		return nil, errors.New("dispatch: a store and at least one sink are required")
	}
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Owner == "" {
		o.Owner = uuid.NewString()
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 4 * o.Timeout
	}
	if o.Lease <= o.Timeout {
		return nil, fmt.Errorf("dispatch: lease %s must outlast the send timeout %s", o.Lease, o.Timeout)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	d := &Dispatcher{o: o, wake: map[string]chan struct{}{}, handed: map[string][]handed{},
		app: &app.Service{Store: o.Store, Now: o.Now, Logger: o.Logger}}
	for name := range o.Sinks {
		d.names = append(d.names, name)
		d.wake[name] = make(chan struct{}, 1)
		if o.Metrics != nil {
			o.Metrics.Latency.WithLabelValues(name) // a series from the start, at 0
		}
	}
	slices.Sort(d.names)
	return d, nil
}

// Wake makes an idle dispatcher look at the outbox now, e.g. right after an
// ingest committed a notification.
func (d *Dispatcher) Wake() {
	for _, w := range d.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Handoff is the lease a projection of this process gives the new
// deliveries it hands straight to d (kycd.Plan.Handoff): d's name, its
// sinks, and a lease from now.
func (d *Dispatcher) Handoff() *kycd.Handoff {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	sinks := make([]string, 0, len(d.names))
	for _, sink := range d.names {
		if len(d.handed[sink]) < maxHanded {
			sinks = append(sinks, sink)
		}
	}
	if len(sinks) == 0 {
		return nil
	}
	return &kycd.Handoff{Owner: d.o.Owner, Until: d.o.Now().Add(d.o.Lease), Sinks: sinks}
}

// HandOver gives d deliveries a projection leased to it (Handoff) and
// committed: d sends them without a claim, oldest first, and wakes their
// sinks. Those past half their lease before a send begins are released and
// claimed, and so are those beyond maxHanded.
func (d *Dispatcher) HandOver(ds []*kycd.Delivery, until time.Time) {
	if len(ds) == 0 {
		return
	}
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		d.release(context.Background(), ds) // during a stop, which has no context of its own to give
		return
	}
	var over []*kycd.Delivery
	for _, del := range ds {
		if q := d.handed[del.Sink]; len(q) < maxHanded {
			d.handed[del.Sink] = append(q, handed{del, until})
		} else {
			over = append(over, del)
		}
	}
	d.mu.Unlock()
	// Released, they are claimed at once rather than when their lease ends:
	// a burst's last notifications would otherwise wait the whole lease.
	d.release(context.Background(), over)
	d.Wake()
}

// release ends d's lease of handed-over deliveries it will not send, so
// that a claim (another replica's, or the next start's) takes them at once:
// a session's later notifications would wait behind them for the lease.
func (d *Dispatcher) release(ctx context.Context, ds []*kycd.Delivery) {
	if len(ds) == 0 {
		return
	}
	ids := make([]string, len(ds))
	for i, del := range ds {
		ids[i] = del.ID
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.o.Store.ReleaseDeliveries(ctx, d.o.Owner, ids); err != nil {
		// Their leases run out instead.
		d.o.Logger.Warn("dispatch: could not release the deliveries handed over and not sent", "count", len(ids), "err", err)
	}
}

// stop ends the handoff: the deliveries handed over and not sent are
// released, and so is whatever is handed over from now on.
func (d *Dispatcher) stop(ctx context.Context) {
	d.mu.Lock()
	d.stopped = true
	var left []*kycd.Delivery
	for sink, q := range d.handed {
		for _, h := range q {
			left = append(left, h.d)
		}
		delete(d.handed, sink)
	}
	d.mu.Unlock()
	d.release(ctx, left)
}

// takeHanded takes up to limit handed-over deliveries of sink that are
// within the first half of their lease, and says by when their sends must
// begin: while the first half of the shortest of their leases lasts, the
// deadline a claimed batch has too. Those past it are released, for the
// claim that follows to take.
func (d *Dispatcher) takeHanded(ctx context.Context, sink string, limit int) ([]*kycd.Delivery, time.Time) {
	d.mu.Lock()
	now := d.o.Now()
	startBy := now.Add(d.o.Lease / 2)
	q := d.handed[sink]
	var out, stale []*kycd.Delivery
	n := 0
	for ; n < len(q) && len(out) < limit; n++ {
		by := q[n].until.Add(-d.o.Lease / 2)
		if !now.Before(by) {
			stale = append(stale, q[n].d)
			continue
		}
		out = append(out, q[n].d)
		if by.Before(startBy) {
			startBy = by
		}
	}
	d.handed[sink] = q[n:]
	d.mu.Unlock()
	// Released, a stale one is claimed with a lease of its own, at once.
	d.release(ctx, stale)
	return out, startBy
}

// Run dispatches until ctx is cancelled, each sink in a loop of its own so a
// slow sink never holds up another. Sends under way when ctx ends finish
// within their timeout (the soft stop becomes hard after it) and are
// recorded; nothing is claimed after ctx ends, and the deliveries handed
// over and not sent are released. A claim that fails is
// logged and tried again at the next poll, so Run has no error to return.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sink := range d.names {
		wg.Go(func() { d.runSink(ctx, sink) })
	}
	wg.Wait()
	d.stop(ctx)
}

func (d *Dispatcher) runSink(ctx context.Context, sink string) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	limit := d.o.Concurrency
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-d.wake[sink]:
		}
		n, slowest, err := d.dispatchSink(ctx, sink, limit)
		if err != nil && ctx.Err() == nil {
			d.o.Logger.Warn("dispatch: claim failed", "sink", sink, "err", err)
		}
		wait := d.o.Poll
		if n >= limit {
			wait = 0 // a full batch: more may be due
		}
		limit = d.nextLimit(limit, n, slowest)
		timer.Reset(wait)
	}
}

// A sink that answers fast gets larger claims: one claim and one record
// transaction then carry many deliveries instead of Concurrency, which
// under load is most of what the outbox costs the store (docs/benchmarks.md).
const (
	maxClaim = 256                    // the largest claim
	fastSend = 100 * time.Millisecond // what a batch's slowest send must beat for the next claim to grow
)

// nextLimit is how many deliveries a sink's next claim takes: twice as
// many after a full batch whose sends were all fast, back to Concurrency
// after a slow one. Sends still run at most Concurrency at a time.
func (d *Dispatcher) nextLimit(limit, n int, slowest time.Duration) int {
	switch {
	case slowest >= fastSend:
		return d.o.Concurrency
	case n >= limit:
		return min(2*limit, max(maxClaim, d.o.Concurrency))
	}
	return limit
}

// DispatchOnce claims, for every sink, up to Concurrency due deliveries,
// sends them all at once, records the attempts, and reports how many it
// claimed; with ctx already ended it claims nothing and says so (ctx's
// error), rather than reporting an idle round.
func (d *Dispatcher) DispatchOnce(ctx context.Context) (int, error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	total := 0
	for _, sink := range d.names {
		wg.Go(func() {
			n, _, err := d.dispatchSink(ctx, sink, d.o.Concurrency)
			mu.Lock()
			defer mu.Unlock()
			total += n
			errs = append(errs, err)
		})
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// dispatchSink sends up to limit deliveries of one sink: those handed
// over first, else those it claims; it reports how many it claimed and how long the slowest send took.
// Once ctx has ended it claims nothing and returns ctx's error.
func (d *Dispatcher) dispatchSink(ctx context.Context, sink string, limit int) (int, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	// The handed-over ones first, then a claim for the rest of the batch:
	// retries and other replicas' leases that ran out are never starved.
	batch, startBy := d.takeHanded(ctx, sink, limit)
	var err error
	if len(batch) < limit {
		var claimed []*kycd.Delivery
		claimed, err = d.o.Store.ClaimDeliveries(ctx, d.o.Owner, []string{sink}, d.o.Now(), d.o.Lease, limit-len(batch))
		batch = append(batch, claimed...)
	}
	return len(batch), d.send(ctx, batch, startBy), err
}

// send delivers one claimed batch concurrently, then records every attempt
// in one store call (one transaction instead of one each). Sends outlive ctx
// by at most their timeout, so a stop never cuts a send whose answer is on
// its way.
func (d *Dispatcher) send(ctx context.Context, claimed []*kycd.Delivery, startBy time.Time) (slowest time.Duration) {
	if len(claimed) == 0 {
		return 0
	}
	sendCtx := context.WithoutCancel(ctx)
	recs := make([]kycd.AttemptRecord, len(claimed))
	sendErrs := make([]error, len(claimed))
	sent := make([]bool, len(claimed))
	// At most Concurrency sends at a time; and none begun past startBy
	// (half the shortest lease of the batch), so every send ends within its
	// lease: a delivery left unsent keeps its lease until it runs out and
	// is claimed again.
	slots := make(chan struct{}, d.o.Concurrency)
	var wg sync.WaitGroup
	for i, del := range claimed {
		slots <- struct{}{}
		if d.o.Now().After(startBy) {
			<-slots
			break
		}
		sent[i] = true
		wg.Go(func() {
			defer func() { <-slots }()
			recs[i], sendErrs[i] = d.attempt(sendCtx, del)
		})
	}
	wg.Wait()
	var batch []*kycd.Delivery
	for i, del := range claimed {
		if !sent[i] {
			continue
		}
		batch = append(batch, del)
		recs[len(batch)-1], sendErrs[len(batch)-1] = recs[i], sendErrs[i]
		slowest = max(slowest, time.Duration(recs[i].Attempt.DurationMS)*time.Millisecond)
	}
	recs, sendErrs = recs[:len(batch)], sendErrs[:len(batch)]

	errs, err := d.o.Store.RecordAttempts(sendCtx, d.o.Owner, recs)
	paused := map[string]string{} // sink → what its endpoint answered
	for i, del := range batch {
		a, up := recs[i].Attempt, recs[i].Next
		log := d.o.Logger.With("delivery_id", del.ID, "notification_id", del.NotificationID, "sink", del.Sink,
			"attempt", del.AttemptCount+1, "outcome", a.Outcome)
		if d.o.Metrics != nil {
			d.o.Metrics.Attempts.WithLabelValues(del.Sink, a.Outcome).Inc()
		}
		rerr := err
		if rerr == nil && i < len(errs) {
			rerr = errs[i]
		}
		if se, ok := errors.AsType[*kycd.SinkError](sendErrs[i]); ok && se.Pause {
			paused[del.Sink] = a.Error
		}
		switch {
		case rerr != nil:
			// The lease runs out and the delivery is sent again: at least once.
			log.Warn("dispatch: could not record the attempt", "err", rerr)
		case sendErrs[i] == nil:
			if d.o.Metrics != nil {
				// Once recorded: from then on it is delivered for the API too.
				d.o.Metrics.Latency.WithLabelValues(del.Sink).Observe(d.o.Now().Sub(del.CreatedAt).Seconds())
			}
			log.Debug("notification delivered") // one per event: DEBUG, off the hot path (issue 14)
		case up.State == kycd.DeliveryDead:
			log.Warn("notification dead", "err", a.Error)
		default:
			log.Warn("notification not delivered; will retry", "err", a.Error, "next", up.NextAttemptAt)
		}
	}
	for sink, reason := range paused {
		if err := d.app.PauseSink(sendCtx, sink, reason); err != nil {
			// The next 410 pauses it again; until then its deliveries are
			// retried with backoff, as pending ones are.
			d.o.Logger.Warn("dispatch: could not pause the sink", "sink", sink, "err", err)
			continue
		}
		d.o.Logger.Warn("sink paused: its endpoint answered 410 Gone; its deliveries wait until an operator resumes it "+
			"(kycd sinks resume NAME, or POST /api/v1/sinks/NAME/resume)", "sink", sink, "reason", reason)
	}
	return slowest
}

// attempt sends one delivery and says what to record of it.
func (d *Dispatcher) attempt(ctx context.Context, del *kycd.Delivery) (kycd.AttemptRecord, error) {
	ctx, traced := d.traceAttempt(ctx, del)
	start := d.o.Now()
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	err := d.o.Sinks[del.Sink].Send(ctx, kycd.Message{ID: del.NotificationID, Type: del.NotificationType, Payload: del.Payload, Round: del.Round()})
	cancel()
	end := d.o.Now()
	if d.o.Metrics != nil {
		d.o.Metrics.Duration.WithLabelValues(del.Sink).Observe(end.Sub(start).Seconds())
	}
	rec := kycd.AttemptRecord{
		DeliveryID: del.ID,
		Attempt:    kycd.Attempt{At: start, DurationMS: end.Sub(start).Milliseconds(), Outcome: kycd.AttemptDelivered},
		Next:       kycd.DeliveryUpdate{State: kycd.DeliveryDelivered, NextAttemptAt: end},
	}
	if err != nil {
		var se *kycd.SinkError
		if errors.As(err, &se) {
			rec.Attempt.StatusCode = se.StatusCode
			// The answer may quote the notification back: its personal
			// data is struck before it is kept, so that no erasure or
			// purge has to find it here.
			body := kycd.StripPersonal(se.Body, kycd.PersonalValues(del.Payload), "[personal data]")
			rec.Attempt.ResponseBody = kycd.RedactText(kycd.ValidPrefix(body, kycd.ResponseBodyLimit))
		}
		rec.Next = d.o.Backoff.Next(del.RoundAttempts+1, del.RoundStartedAt, end, d.o.Rand(), err)
		if se != nil && se.Pause {
			// Nothing is lost: the delivery waits, due, for the sink's
			// resume, which starts a new round.
			rec.Next = kycd.DeliveryUpdate{State: kycd.DeliveryPending, NextAttemptAt: end}
		}
		// Errors are kept and shown: no URL in them may carry a secret.
		rec.Attempt.Error = kycd.RedactText(err.Error())
		rec.Next.Error = rec.Attempt.Error
		rec.Attempt.Outcome = kycd.AttemptFailed
		if se != nil && se.Permanent {
			rec.Attempt.Outcome = kycd.AttemptRejected
		}
	}
	traced(rec, err)
	return rec, err
}
