package dispatch_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/dispatch"
	"github.com/kycd/kycd/internal/ingest"
)

// flakySink fails each message of fail as often as fail says, then
// accepts it; it notes what it accepted, in order.
type flakySink struct {
	mu       sync.Mutex
	fail     map[string]int
	accepted []string
}

func (s *flakySink) Send(_ context.Context, m kycd.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail[m.ID] > 0 {
		s.fail[m.ID]--
		return errors.New("unavailable")
	}
	s.accepted = append(s.accepted, m.ID)
	return nil
}

// sessionEvents records, one ingest each, a session's rejection, review
// and verification to sink, and returns their notification ids in the
// order applied. With handoff, the ingest hands its head deliveries to d.
func (f *fixture) sessionEvents(t *testing.T, in *ingest.Ingester) []string {
	t.Helper()
	sid, sub := uuid.NewString(), kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}
	var ids []string
	for i, st := range []kycd.Status{kycd.StatusRejected, kycd.StatusReview, kycd.StatusVerified} {
		ev := &kycd.Event{
			ID: uuid.NewString(), Type: "kyc_session_failed", Timestamp: f.clock.Now().Add(time.Duration(i) * time.Minute), ReceivedAt: f.clock.Now(),
			Body: []byte(`{}`), BodyHash: uuid.NewString(), SessionID: sid, Subject: sub, Status: st,
		}
		ctx := context.Background()
		res, err := in.Append(ctx, ev)
		if err == nil {
			err = in.Project(ctx, &res)
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, kycd.NotificationID(ev.ID))
	}
	return ids
}

func (f *fixture) ingester(t *testing.T, o ingest.Options) *ingest.Ingester {
	t.Helper()
	o.Sinks = kycd.Routes(f.sink)
	in, err := ingest.New(context.Background(), f.store, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return in
}

// A sink that fails a session's first notification three times gets the
// session's three notifications in the order applied; another session's
// go out meanwhile. With order=none, the later ones go at once.
func TestSessionOrderKeptThroughRetries(t *testing.T) {
	for _, order := range []string{kycd.OrderSession, kycd.OrderNone} {
		t.Run(order, func(t *testing.T) {
			f := newFixture(t)
			if err := (&app.Service{Store: f.store}).RegisterSinks(context.Background(), []kycd.SinkInfo{{Name: f.sink, Type: "http", Order: order}}); err != nil {
				t.Fatal(err)
			}
			in := f.ingester(t, ingest.Options{})
			slow, other := f.sessionEvents(t, in), f.sessionEvents(t, in)
			sink := &flakySink{fail: map[string]int{slow[0]: 3}}
			d, err := dispatch.New(dispatch.Options{Store: f.store, Sinks: map[string]kycd.Sink{f.sink: sink}, Now: f.clock.Now,
				Rand: func() float64 { return 0 }, Backoff: dispatch.Backoff{Base: time.Second, Cap: time.Minute, MaxAttempts: 10, MaxAge: time.Hour}})
			if err != nil {
				t.Fatal(err)
			}
			dispatchOnce(t, d)
			if got := sink.accepted; !slices.Equal(got, other[:1]) && order == kycd.OrderSession {
				t.Fatalf("first round accepted %v, want the other session's first %v alone", got, other[:1])
			}
			for range 20 {
				f.clock.Add(time.Minute)
				dispatchOnce(t, d)
			}
			var got []string
			for _, id := range sink.accepted {
				if slices.Contains(slow, id) {
					got = append(got, id)
				}
			}
			inOrder := slices.Equal(got, slow)
			if order == kycd.OrderSession && !inOrder {
				t.Fatalf("the session's notifications arrived as %v, want %v", got, slow)
			}
			if order == kycd.OrderNone && (inOrder || len(got) != 3) {
				t.Fatalf("with order=none the session's notifications arrived as %v, want all 3, the failing first last", got)
			}
		})
	}
}

// countedClaims counts the deliveries a store's claims returned.
type countedClaims struct {
	kycd.Store
	mu      sync.Mutex
	claimed int
}

func (s *countedClaims) ClaimDeliveries(ctx context.Context, owner string, sinks []string, now time.Time, lease time.Duration, limit int) ([]*kycd.Delivery, error) {
	out, err := s.Store.ClaimDeliveries(ctx, owner, sinks, now, lease, limit)
	s.mu.Lock()
	s.claimed += len(out)
	s.mu.Unlock()
	return out, err
}

// The projection hands its new head deliveries to the dispatcher leased:
// they are sent and recorded without any claim taking them; a delivery
// behind a head still comes through a claim once the head is delivered.
func TestHandedOffSentWithoutClaim(t *testing.T) {
	f := newFixture(t)
	sink := &flakySink{}
	store := &countedClaims{Store: f.store}
	d, err := dispatch.New(dispatch.Options{Store: store, Sinks: map[string]kycd.Sink{f.sink: sink}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	in := f.ingester(t, ingest.Options{Handoff: d.Handoff, HandOver: d.HandOver})
	ids := f.sessionEvents(t, in)
	dispatchOnce(t, d)
	if !slices.Equal(sink.accepted, ids[:1]) || store.claimed != 0 {
		t.Fatalf("sent %v with %d claimed; want the handed-off first %v, none claimed", sink.accepted, store.claimed, ids[:1])
	}
	for range 2 {
		dispatchOnce(t, d)
	}
	if !slices.Equal(sink.accepted, ids) || store.claimed != 2 {
		t.Fatalf("sent %v with %d claimed; want %v, the two behind the first claimed", sink.accepted, store.claimed, ids)
	}
	got, err := (&app.Service{Store: f.store}).Deliveries(context.Background(), kycd.DeliveryFilter{State: kycd.DeliveryDelivered, Limit: 10})
	if err != nil || len(got.Items) != 3 {
		t.Fatalf("delivered = %+v, %v; want the 3 recorded", got, err)
	}
}

// A handed-off delivery whose lease is past its first half is not sent from
// memory (the send could outlast the lease, and another replica send the
// next one meanwhile): it is released and claimed under a lease of its own.
// A dispatcher that stops releases what was handed to it and not sent, so
// that the next start sends it at once, not once the lease ran out.
func TestHandoffReleased(t *testing.T) {
	f := newFixture(t)
	sink := &flakySink{}
	store := &countedClaims{Store: f.store}
	d, err := dispatch.New(dispatch.Options{Store: store, Sinks: map[string]kycd.Sink{f.sink: sink}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	short := func() *kycd.Handoff { h := d.Handoff(); h.Until = f.clock.Now().Add(5 * time.Second); return h }
	in := f.ingester(t, ingest.Options{Handoff: short, HandOver: d.HandOver})
	stale := f.sessionEvents(t, in)[:1]
	dispatchOnce(t, d)
	if !slices.Equal(sink.accepted, stale) || store.claimed != 1 {
		t.Fatalf("sent %v with %d claimed; want the stale handoff %v, released and claimed", sink.accepted, store.claimed, stale)
	}

	// Stopped with a handoff not sent: the next dispatcher claims it now.
	stopping, err := dispatch.New(dispatch.Options{Store: f.store, Sinks: map[string]kycd.Sink{f.sink: &flakySink{}}, Now: f.clock.Now,
		Poll: time.Hour, Owner: "stopping"})
	if err != nil {
		t.Fatal(err)
	}
	in2 := f.ingester(t, ingest.Options{Handoff: stopping.Handoff})
	other := f.sessionEvents(t, in2)[:1]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stopping.HandOver([]*kycd.Delivery{{ID: mustDeliveryOf(t, f, other[0]), Sink: f.sink}}, f.clock.Now().Add(time.Minute))
	stopping.Run(ctx)
	before := len(sink.accepted)
	dispatchOnce(t, d)
	if got := sink.accepted[before:]; !slices.Contains(got, other[0]) {
		t.Fatalf("after the other dispatcher stopped, sent %v; want its handoff %v at once", got, other)
	}
}

// mustDeliveryOf is the id of the one delivery of notification id.
func mustDeliveryOf(t *testing.T, f *fixture, id string) string {
	t.Helper()
	page, err := (&app.Service{Store: f.store}).Deliveries(context.Background(), kycd.DeliveryFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range page.Items {
		if d.NotificationID == id {
			return d.ID
		}
	}
	t.Fatalf("no delivery of %s", id)
	return ""
}

// A sink whose queue of handed-over deliveries is full is left out of the
// next handoff, and a delivery handed over beyond the bound all the same is
// released at once: a burst's last notifications are claimed now, not when
// a lease nobody works runs out (bench/run saw them arrive 40 s late).
func TestHandoffBeyondTheQueueReleased(t *testing.T) {
	f := newFixture(t)
	full, err := dispatch.New(dispatch.Options{Store: f.store, Sinks: map[string]kycd.Sink{f.sink: &flakySink{}}, Now: f.clock.Now,
		Poll: time.Hour, Owner: "full"})
	if err != nil {
		t.Fatal(err)
	}
	// A delivery leased to full by a projection, not yet handed over.
	in := f.ingester(t, ingest.Options{Handoff: full.Handoff})
	last := f.sessionEvents(t, in)[:1]
	queued := make([]*kycd.Delivery, dispatch.MaxHanded)
	for i := range queued {
		queued[i] = &kycd.Delivery{ID: uuid.NewString(), Sink: f.sink}
	}
	full.HandOver(queued, f.clock.Now().Add(time.Minute))
	if h := full.Handoff(); h != nil {
		t.Fatalf("Handoff with the sink's queue full = %+v, want none", h)
	}
	full.HandOver([]*kycd.Delivery{{ID: mustDeliveryOf(t, f, last[0]), Sink: f.sink}}, f.clock.Now().Add(time.Minute))

	sink := &flakySink{}
	other, err := dispatch.New(dispatch.Options{Store: f.store, Sinks: map[string]kycd.Sink{f.sink: sink}, Now: f.clock.Now, Owner: "other"})
	if err != nil {
		t.Fatal(err)
	}
	dispatchOnce(t, other)
	if !slices.Contains(sink.accepted, last[0]) {
		t.Fatalf("another dispatcher sent %v; want the delivery handed over beyond the full queue, released: %v", sink.accepted, last)
	}
}
