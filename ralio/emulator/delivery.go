package emulator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
)

// Final states of a webhook, as GET /emulator/v1/deliveries shows them.
const (
	DeliveryPending   = "pending"   // attempts remain
	DeliveryDelivered = "delivered" // answered 2xx
	DeliveryDropped   = "dropped"   // answered 4xx (or 1xx, 3xx): never retried
	DeliveryGaveUp    = "gave_up"   // every attempt failed with 5xx, a timeout or a connection error
)

// maxSending bounds the webhooks in flight at once.
const maxSending = 64

// maxAnswer bounds how much of a receiver's answer an attempt keeps.
const maxAnswer = 512

// delivery is one webhook and the attempts to send it.
type delivery struct {
	eventID    string
	typ        string
	sessionID  string // empty for events about a subject only
	subjectID  string
	generation Generation
	body       []byte
	signature  string
	createdAt  time.Time

	state    string
	attempts []Attempt
	failures int // failed attempts, duplicates not counted

	// due is when the next send is due; zero when none is scheduled.
	due       time.Time
	duplicate bool // the scheduled send is a duplicate of a delivered one
	sending   bool
}

// Attempt is one send of a webhook.
type Attempt struct {
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"`    // the answer's status; 0 when there was none
	Error     string    `json:"error,omitempty"`     // timeout or connection error
	Answer    string    `json:"answer,omitempty"`    // the answer's first 512 bytes
	Duplicate bool      `json:"duplicate,omitempty"` // a re-send of a delivered webhook (--duplicates)
}

// emit signs a new event in the configured generation and schedules its
// first attempt, held for a random time under Reorder. It returns the event
// id. Callers hold e.mu.
func (e *Emulator) emit(typ, sessionID, subjectID string, at time.Time, data dataFunc) string {
	g := e.opt.Generation
	if g == GenerationMixed {
		g = [...]Generation{GenerationA, GenerationB, GenerationC}[e.rng.IntN(3)]
	}
	id := uuid.NewString()
	body := encode(g, id, typ, at, data)
	d := &delivery{
		eventID: id, typ: typ, sessionID: sessionID, subjectID: subjectID, generation: g,
		body: body, signature: ralio.Sign(body, e.opt.Secret), createdAt: e.opt.Now(),
		state: DeliveryPending,
	}
	e.deliveries[id] = d
	e.sent = append(e.sent, d)
	e.schedule(d, e.opt.Now().Add(e.hold()), false)
	return id
}

// hold draws a holding time in [0, Reorder). Callers hold e.mu.
func (e *Emulator) hold() time.Duration {
	if e.opt.Reorder <= 0 {
		return 0
	}
	return time.Duration(e.rng.Int64N(int64(e.opt.Reorder)))
}

// schedule sets d's next send. Callers hold e.mu.
func (e *Emulator) schedule(d *delivery, due time.Time, duplicate bool) {
	d.due, d.duplicate = due, duplicate
	e.scheduled[d] = struct{}{}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run sends webhooks as they fall due until ctx is cancelled, then waits
// for the sends under way (cancelled with ctx) and returns nil.
func (e *Emulator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxSending)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := e.launchDue(ctx, &wg, sem)
		wait := time.Hour // nothing scheduled: sleep until woken
		if !next.IsZero() {
			wait = max(next.Sub(e.opt.Now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-timer.C:
		}
	}
}

// DeliverDue sends every webhook due by the clock, waits for the answers
// and returns how many sends it made. It is Run's step for tests that move
// a fake clock themselves; do not call it while Run runs.
func (e *Emulator) DeliverDue(ctx context.Context) int {
	var wg sync.WaitGroup
	e.mu.Lock()
	n := 0
	for d := range e.scheduled {
		if !d.sending && !d.due.After(e.opt.Now()) {
			n++
		}
	}
	e.mu.Unlock()
	e.launchDue(ctx, &wg, make(chan struct{}, maxSending))
	wg.Wait()
	return n
}

// launchDue starts a send for every scheduled webhook that is due and
// returns when the next one falls due (zero if none is scheduled).
func (e *Emulator) launchDue(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opt.Now()
	var next time.Time
	for d := range e.scheduled {
		if d.due.After(now) {
			if next.IsZero() || d.due.Before(next) {
				next = d.due
			}
			continue
		}
		delete(e.scheduled, d)
		d.sending = true
		e.sending++
		duplicate := d.duplicate
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
			}
			e.attempt(ctx, d, duplicate)
		})
	}
	return next
}

// result is what one send got back.
type result struct {
	status int
	answer string
	err    error
}

// attempt sends d once and records what happened.
func (e *Emulator) attempt(ctx context.Context, d *delivery, duplicate bool) {
	at := e.opt.Now()
	var res result
	if ctx.Err() == nil {
		res = e.post(ctx, d)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d.sending = false
	e.sending--
	defer func() {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}()
	if ctx.Err() != nil {
		// Stopped, not answered: the send is still owed.
		e.schedule(d, at, duplicate)
		return
	}
	a := Attempt{At: at.UTC(), Status: res.status, Answer: res.answer, Duplicate: duplicate}
	if res.err != nil {
		a.Error = res.err.Error()
	}
	d.attempts = append(d.attempts, a)
	log := e.log.With("event_id", d.eventID, "type", d.typ, "attempt", len(d.attempts))
	if duplicate {
		log.Info("webhook sent again (duplicate)", "status", res.status, "err", res.err)
		return
	}
	now := e.opt.Now()
	switch {
	case res.err == nil && res.status/100 == 2:
		d.state = DeliveryDelivered
		log.Info("webhook delivered", "status", res.status)
		if e.opt.Duplicates > 0 && e.rng.Float64() < e.opt.Duplicates {
			e.schedule(d, now.Add(e.hold()), true)
		}
	case res.err == nil && res.status < 500:
		d.state = DeliveryDropped
		log.Warn("webhook dropped: the receiver refused it, and Ralio never retries that", "status", res.status)
	default:
		d.failures++
		if d.failures >= e.opt.MaxAttempts {
			d.state = DeliveryGaveUp
			log.Warn("webhook given up: no attempt left", "status", res.status, "err", res.err)
			return
		}
		wait := e.opt.Backoff(d.failures)
		log.Info("webhook failed; retrying", "status", res.status, "err", res.err, "retry_in", wait)
		e.schedule(d, now.Add(wait), false)
	}
}

// post sends d's body once, signed, the way Ralio does.
func (e *Emulator) post(ctx context.Context, d *delivery) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.opt.WebhookURL, bytes.NewReader(d.body))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Ralio-Webhooks (kycd emulator)")
	req.Header.Set(ralio.SignatureHeader, d.signature)
	resp, err := e.client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	// The rest is read so the connection can be reused; the answer is what
	// was read above, whatever the rest does.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return result{status: resp.StatusCode, answer: string(bytes.TrimSpace(answer))}
}

// Redeliver starts a new round of attempts for the webhook eventID, with
// the same body and signature, due at once: what a provider's "resend"
// button does, and how a test makes a webhook arrive late. It reports
// false if no webhook has that id.
func (e *Emulator) Redeliver(eventID string) (DeliveryView, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.deliveries[eventID]
	if d == nil {
		return DeliveryView{}, false
	}
	d.state, d.failures = DeliveryPending, 0
	if !d.sending {
		e.schedule(d, e.opt.Now(), false)
	}
	return e.view(d), true
}

// DeliveryView is a webhook and its attempts, as GET /emulator/v1/deliveries
// shows it.
type DeliveryView struct {
	EventID    string    `json:"eventId"`
	Type       string    `json:"type"`
	SessionID  string    `json:"sessionId,omitempty"`
	SubjectID  string    `json:"subjectId,omitempty"`
	Generation string    `json:"generation"`
	CreatedAt  time.Time `json:"createdAt"`
	// State is pending, delivered, dropped or gave_up.
	State    string    `json:"state"`
	Attempts []Attempt `json:"attempts"`
	// NextAttemptAt is when the next send is due (a retry, or a duplicate
	// of a delivered webhook); absent when none is scheduled.
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	// Sending is true while an attempt waits for its answer.
	Sending bool `json:"sending,omitempty"`
}

// Deliveries lists the webhooks sent so far, in the order they were
// emitted, filtered by event id, session id and state when those are not
// empty. idle reports that nothing at all is scheduled or being sent.
func (e *Emulator) Deliveries(eventID, sessionID, state string) (views []DeliveryView, idle bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	views = []DeliveryView{}
	for _, d := range e.sent {
		if eventID != "" && d.eventID != eventID || sessionID != "" && d.sessionID != sessionID || state != "" && d.state != state {
			continue
		}
		views = append(views, e.view(d))
	}
	return views, len(e.scheduled) == 0 && e.sending == 0
}

// view is d as the control API shows it. Callers hold e.mu.
func (e *Emulator) view(d *delivery) DeliveryView {
	v := DeliveryView{
		EventID: d.eventID, Type: d.typ, SessionID: d.sessionID, SubjectID: d.subjectID,
		Generation: string(d.generation), CreatedAt: d.createdAt.UTC(), State: d.state,
		Attempts: append([]Attempt{}, d.attempts...), Sending: d.sending,
	}
	if _, ok := e.scheduled[d]; ok {
		due := d.due.UTC()
		v.NextAttemptAt = &due
	}
	return v
}
