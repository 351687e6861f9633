package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
)

// orderedSession records, through the write path to sinks, a session's
// rejection, review and verification, in that order of application, and
// returns their notification ids in that order.
func orderedSession(t *testing.T, s kycd.Store, sinks ...string) []string {
	t.Helper()
	in := newPipeline(t, s, sinks...)
	sid := uuid.NewString()
	var ids []string
	for i, st := range []kycd.Status{kycd.StatusRejected, kycd.StatusReview, kycd.StatusVerified} {
		ev := sessionEvent(sid, st, time.Duration(i)*time.Minute)
		res, err := ingestWith(in, ev)
		if err != nil || res.NotificationID == "" {
			t.Fatalf("ingest %s: %+v, %v", st, res, err)
		}
		ids = append(ids, res.NotificationID)
	}
	return ids
}

// claimIDs claims up to 10 due deliveries of sink at at for owner, and
// returns their notification ids.
func claimIDs(t *testing.T, s kycd.Store, owner, sink string, at time.Time) ([]*kycd.Delivery, []string) {
	t.Helper()
	got, err := s.ClaimDeliveries(context.Background(), owner, []string{sink}, at, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		ids = append(ids, d.NotificationID)
	}
	return got, ids
}

// recordOutcome records one attempt of d by owner that leaves it in state,
// due again at next when pending.
func recordOutcome(t *testing.T, s kycd.Store, owner string, d *kycd.Delivery, at time.Time, state string, next time.Time) {
	t.Helper()
	outcome := kycd.AttemptDelivered
	if state != kycd.DeliveryDelivered {
		outcome = kycd.AttemptFailed
	}
	errs, err := s.RecordAttempts(context.Background(), owner, []kycd.AttemptRecord{{DeliveryID: d.ID,
		Attempt: kycd.Attempt{At: at, Outcome: outcome},
		Next:    kycd.DeliveryUpdate{State: state, NextAttemptAt: next}}})
	if err != nil || errs[0] != nil {
		t.Fatalf("record %s of %s: %v, %v", state, d.ID, errs, err)
	}
}

// testOrderedRetries: a sink that fails a session's first notification
// three times gets that session's notifications in the order they were
// applied, each only once the one before it was delivered; another
// session's notification to the same sink goes at once.
func testOrderedRetries(t *testing.T, s kycd.Store) {
	slow := orderedSession(t, s, "crm")
	other := orderedSession(t, s, "crm")
	at := time.Now().UTC().Add(time.Second)
	var received []string
	failures := 0
	for round := 0; round < 20 && len(received) < 6; round++ {
		claimed, ids := claimIDs(t, s, "d", "crm", at)
		if round == 0 && !slices.Contains(ids, other[0]) {
			t.Fatalf("first claim = %v: the other session's notification %s is held up by the first's", ids, other[0])
		}
		for _, d := range claimed {
			if d.NotificationID == slow[0] && failures < 3 {
				failures++
				recordOutcome(t, s, "d", d, at, kycd.DeliveryPending, at.Add(time.Minute)) // backoff
				continue
			}
			received = append(received, d.NotificationID)
			recordOutcome(t, s, "d", d, at, kycd.DeliveryDelivered, at)
		}
		at = at.Add(2 * time.Minute)
	}
	if failures != 3 {
		t.Fatalf("the first notification failed %d times, want 3", failures)
	}
	for _, want := range [][]string{slow, other} {
		var got []string
		for _, id := range received {
			if slices.Contains(want, id) {
				got = append(got, id)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("a session's notifications arrived as %v, want %v (the order applied)", got, want)
		}
	}
}

// testOrderedHeadOnly: of a session's pending deliveries only the first is
// claimable, while it is leased, due later or not; the sink's order is its
// own (another sink gets its first at once too).
func testOrderedHeadOnly(t *testing.T, s kycd.Store) {
	ids := orderedSession(t, s, "a", "b")
	at := time.Now().UTC().Add(time.Second)
	if _, got := claimIDs(t, s, "d", "a", at); !slices.Equal(got, ids[:1]) {
		t.Fatalf("claim of a = %v, want only the first %v", got, ids[:1])
	}
	if _, got := claimIDs(t, s, "other", "a", at); len(got) != 0 {
		t.Fatalf("claim of a by another owner while the first is leased = %v, want none", got)
	}
	if _, got := claimIDs(t, s, "d", "b", at); !slices.Equal(got, ids[:1]) {
		t.Fatalf("claim of b = %v, want its own first %v", got, ids[:1])
	}
	// Its lease runs out: the same first one again, never the second.
	if _, got := claimIDs(t, s, "other", "a", at.Add(2*time.Minute)); !slices.Equal(got, ids[:1]) {
		t.Fatalf("claim of a after the lease ran out = %v, want the first again %v", got, ids[:1])
	}
}

// testOrderedDeadReleases: a delivery that dies releases the next one of
// its session; retried by hand, it takes its place again before the later
// ones still pending.
func testOrderedDeadReleases(t *testing.T, s kycd.Store) {
	ids := orderedSession(t, s, "crm")
	at := time.Now().UTC().Add(time.Second)
	first, _ := claimIDs(t, s, "d", "crm", at)
	recordOutcome(t, s, "d", first[0], at, kycd.DeliveryDead, at)
	second, got := claimIDs(t, s, "d", "crm", at)
	if !slices.Equal(got, ids[1:2]) {
		t.Fatalf("claim after the first died = %v, want the second %v", got, ids[1:2])
	}
	recordOutcome(t, s, "d", second[0], at, kycd.DeliveryPending, at.Add(time.Hour))
	// Retried by hand, the dead first is the head again: the third waits
	// for it as well as for the second (due in an hour).
	if err := (&app.Service{Store: s, Now: func() time.Time { return at }}).RetryDelivery(context.Background(), app.Actor{Name: "test"}, first[0].ID); err != nil {
		t.Fatal(err)
	}
	retried, got := claimIDs(t, s, "d", "crm", at.Add(time.Second))
	if !slices.Equal(got, ids[:1]) {
		t.Fatalf("claim after the retry of the dead first = %v, want the first %v", got, ids[:1])
	}
	recordOutcome(t, s, "d", retried[0], at, kycd.DeliveryDelivered, at)
	later := at.Add(2 * time.Hour)
	for _, want := range ids[1:] {
		claimed, got := claimIDs(t, s, "d", "crm", later)
		if !slices.Equal(got, []string{want}) {
			t.Fatalf("claim = %v, want %s next", got, want)
		}
		recordOutcome(t, s, "d", claimed[0], later, kycd.DeliveryDelivered, later)
	}
}

// testOrderedDropReleases: dropping a session's stuck first delivery
// releases the next.
func testOrderedDropReleases(t *testing.T, s kycd.Store) {
	ids := orderedSession(t, s, "crm")
	at := time.Now().UTC().Add(time.Second)
	first, _ := claimIDs(t, s, "d", "crm", at)
	recordOutcome(t, s, "d", first[0], at, kycd.DeliveryPending, at.Add(time.Hour))
	if _, got := claimIDs(t, s, "d", "crm", at.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("claim while the first waits for its retry = %v, want none", got)
	}
	svc := &app.Service{Store: s, Now: func() time.Time { return at.Add(time.Minute) }}
	if _, err := svc.DropDelivery(context.Background(), app.Actor{Name: "test"}, first[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, got := claimIDs(t, s, "d", "crm", at.Add(time.Minute)); !slices.Equal(got, ids[1:2]) {
		t.Fatalf("claim after the first was dropped = %v, want the second %v", got, ids[1:2])
	}
}

// testOrderNone: a sink of order none has every due delivery claimed at
// once, and lists its order.
func testOrderNone(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	svc := &app.Service{Store: s}
	if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "fast", Type: "log", Order: kycd.OrderNone}, {Name: "crm", Type: "log", Order: kycd.OrderSession}}); err != nil {
		t.Fatal(err)
	}
	ids := orderedSession(t, s, "fast", "crm")
	at := time.Now().UTC().Add(time.Second)
	if _, got := claimIDs(t, s, "d", "fast", at); len(got) != 3 {
		t.Fatalf("claim of the order=none sink = %v, want all 3 of %v", got, ids)
	}
	if _, got := claimIDs(t, s, "d", "crm", at); !slices.Equal(got, ids[:1]) {
		t.Fatalf("claim of the ordered sink = %v, want the first %v", got, ids[:1])
	}
	sinks, err := svc.ListSinks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	orders := map[string]string{}
	for _, k := range sinks {
		orders[k.Name] = k.Order
	}
	if orders["fast"] != kycd.OrderNone || orders["crm"] != kycd.OrderSession {
		t.Fatalf("sink orders = %v, want fast none and crm session", orders)
	}
	// Registered again without an order of its own: the default.
	if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "fast", Type: "log", Order: kycd.OrderSession}}); err != nil {
		t.Fatal(err)
	}
	if sinks, _ := svc.ListSinks(ctx); sinks[0].Name != "crm" || sinks[1].Order != kycd.OrderSession {
		t.Fatalf("after registering fast as session: %+v", sinks[1])
	}
}

// testHandoff: a projection with a handoff leases the new deliveries that
// head their key to the local dispatcher and hands them over: another
// owner claims none of them while the lease lasts, and none of the later
// ones behind them; a sink the dispatcher does not send to is not handed
// anything; once the lease runs out, a claim takes the same head again.
func testHandoff(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	until := time.Now().UTC().Add(time.Minute)
	var handed []*kycd.Delivery
	in, err := ingest.New(ctx, s, ingest.Options{Sinks: kycd.Routes("crm", "ops"),
		Handoff:  func() *kycd.Handoff { return &kycd.Handoff{Owner: "local", Until: until, Sinks: []string{"crm"}} },
		HandOver: func(ds []*kycd.Delivery, _ time.Time) { handed = append(handed, ds...) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	sid := uuid.NewString()
	var ids []string
	for i, st := range []kycd.Status{kycd.StatusRejected, kycd.StatusReview, kycd.StatusVerified} {
		res, err := ingestWith(in, sessionEvent(sid, st, time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.NotificationID)
	}
	if len(handed) != 1 || handed[0].NotificationID != ids[0] || handed[0].Sink != "crm" || len(handed[0].Payload) == 0 {
		t.Fatalf("handed over %+v, want the first notification's delivery to crm alone, with its payload", handed)
	}
	at := time.Now().UTC().Add(time.Second)
	if _, got := claimIDs(t, s, "other", "crm", at); len(got) != 0 {
		t.Fatalf("another owner's claim of crm while the handed-off head is leased = %v, want none", got)
	}
	if _, got := claimIDs(t, s, "other", "ops", at); !slices.Equal(got, ids[:1]) {
		t.Fatalf("claim of ops (not handed off) = %v, want its first %v", got, ids[:1])
	}
	stored, err := s.Delivery(ctx, handed[0].ID)
	if err != nil || string(stored.Payload) != string(handed[0].Payload) || stored.NotificationType != handed[0].NotificationType {
		t.Fatalf("stored delivery %+v, %v; want what was handed over", stored, err)
	}
	// The lease runs out (the local dispatcher died): the same head again.
	expired, got := claimIDs(t, s, "other", "crm", until.Add(time.Second))
	if !slices.Equal(got, ids[:1]) || expired[0].ID != handed[0].ID {
		t.Fatalf("claim after the handoff's lease ran out = %v, want the handed-off first %v", got, ids[:1])
	}
	errs, err := s.RecordAttempts(ctx, "local", []kycd.AttemptRecord{{DeliveryID: handed[0].ID,
		Attempt: kycd.Attempt{At: at, Outcome: kycd.AttemptDelivered}, Next: kycd.DeliveryUpdate{State: kycd.DeliveryDelivered, NextAttemptAt: at}}})
	if err != nil || kycd.ErrorCode(errs[0]) != kycd.ECONFLICT {
		t.Fatalf("record by the owner that lost the lease = %v, %v; want ECONFLICT", errs, err)
	}
}
