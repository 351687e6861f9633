package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

func testOldestPending(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	if got, err := s.OldestPending(ctx); err != nil || len(got) != 0 {
		t.Fatalf("OldestPending of an empty outbox = %v, %v; want none", got, err)
	}
	notifyN(t, s, 2, "a", "b")
	page, err := s.Deliveries(ctx, kycd.DeliveryQuery{Sink: "a"})
	if err != nil || len(page) != 2 {
		t.Fatalf("a's deliveries = %+v, %v", page, err)
	}
	first, second := page[0], page[1]
	got, err := s.OldestPending(ctx)
	if err != nil || len(got) != 2 || !got["a"].Equal(first.CreatedAt) {
		t.Fatalf("OldestPending = %v, %v; want a and b, a's at its first delivery's creation %v", got, err, first.CreatedAt)
	}
	// Delivered: the next one is the oldest. A retry starts a new round.
	now := time.Now().UTC().Truncate(time.Millisecond).Add(time.Hour)
	claimed, err := s.ClaimDeliveries(ctx, "d", []string{"a"}, now, time.Minute, 1)
	if err != nil || len(claimed) != 1 || claimed[0].ID != first.ID {
		t.Fatalf("claim = %+v, %v; want a's first delivery", claimed, err)
	}
	if errs, err := s.RecordAttempts(ctx, "d", []kycd.AttemptRecord{{DeliveryID: first.ID,
		Attempt: kycd.Attempt{At: now, Outcome: kycd.AttemptDelivered},
		Next:    kycd.DeliveryUpdate{State: kycd.DeliveryDelivered, NextAttemptAt: now}}}); err != nil || errs[0] != nil {
		t.Fatalf("record = %v, %v", errs, err)
	}
	if got, _ := s.OldestPending(ctx); !got["a"].Equal(second.CreatedAt) {
		t.Fatalf("OldestPending[a] = %v, want the second delivery's creation %v", got["a"], second.CreatedAt)
	}
	inTx(t, s, func(tx kycd.Tx) error { return tx.StartRound(ctx, now, second.ID) })
	inTx(t, s, func(tx kycd.Tx) error { return tx.StartRound(ctx, now.Add(time.Minute), first.ID) })
	if got, _ := s.OldestPending(ctx); !got["a"].Equal(now) || len(got) != 2 {
		t.Fatalf("OldestPending after retries = %v; want a at the first retry %v", got, now)
	}
}

func testQuarantinePending(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	var ids []string
	for range 3 {
		q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: time.Now().UTC(), Reason: kycd.QuarantineInvalid,
			Problem: []byte(`{"detail":"x"}`), Body: []byte(`{}`)}
		if err := s.AddQuarantine(ctx, q); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, q.ID)
	}
	if n, err := s.QuarantinePending(ctx); err != nil || n != 3 {
		t.Fatalf("QuarantinePending = %d, %v; want 3", n, err)
	}
	if err := s.ResolveQuarantine(ctx, ids[0], kycd.OutcomeApplied, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.QuarantinePending(ctx); err != nil || n != 2 {
		t.Fatalf("QuarantinePending after a replay = %d, %v; want 2", n, err)
	}
	inTx(t, s, func(tx kycd.Tx) error { return tx.SetQuarantineDiscarded(ctx, ids[1], "cli:test", time.Now()) })
	if n, err := s.QuarantinePending(ctx); err != nil || n != 1 {
		t.Fatalf("QuarantinePending after a discard = %d, %v; want 1", n, err)
	}
}

// testDeliveryTx: the delivery operations read and write just what they
// say, and a new round of attempts is the same write whoever starts it.
func testDeliveryTx(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	ev := notifyOnce(t, s, "crm", "bus")
	id := kycd.NotificationID(ev.ID)
	now := time.Now().UTC().Truncate(time.Millisecond)
	claimed, err := s.ClaimDeliveries(ctx, "d", []string{"crm"}, now, time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	crm := claimed[0].ID
	var bus string
	inTx(t, s, func(tx kycd.Tx) error {
		if typ, err := tx.LockNotification(ctx, id); err != nil || typ != kycd.NotifySessionRejected {
			t.Errorf("LockNotification = %q, %v; want %s", typ, err, kycd.NotifySessionRejected)
		}
		if _, err := tx.LockNotification(ctx, uuid.NewString()); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("LockNotification of an unknown id = %v, want ENOTFOUND", err)
		}
		d, err := tx.LockDelivery(ctx, crm)
		if err != nil {
			return err
		}
		if d.ID != crm || d.NotificationID != id || d.Sink != "crm" || d.State != kycd.DeliveryPending ||
			!d.LeaseUntil.Equal(now.Add(time.Minute)) || !d.Leased(now) || d.Leased(now.Add(time.Minute)) {
			t.Errorf("LockDelivery = %+v, want crm's, pending, leased until %v", d, now.Add(time.Minute))
		}
		if _, err := tx.LockDelivery(ctx, uuid.NewString()); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("LockDelivery of an unknown id = %v, want ENOTFOUND", err)
		}
		b, err := tx.DeliveryTo(ctx, id, "bus")
		if err != nil {
			return err
		}
		bus = b.ID
		if !b.LeaseUntil.IsZero() || b.Leased(now) {
			t.Errorf("bus's delivery = %+v, want no lease", b)
		}
		if _, err := tx.DeliveryTo(ctx, id, "nowhere"); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("DeliveryTo a sink without one = %v, want ENOTFOUND", err)
		}
		ids, err := tx.DeliveryIDs(ctx, kycd.DeliveryPending, "")
		if err != nil {
			return err
		}
		if slices.Sort(ids); len(ids) != 2 || !slices.Contains(ids, crm) || !slices.Contains(ids, bus) {
			t.Errorf("pending deliveries = %v, want crm's and bus's", ids)
		}
		if ids, err := tx.DeliveryIDs(ctx, kycd.DeliveryPending, "bus"); err != nil || !slices.Equal(ids, []string{bus}) {
			t.Errorf("bus's pending deliveries = %v, %v; want %s", ids, err, bus)
		}
		return nil
	})

	// A new round ends the lease and makes crm's delivery due at once; bus's
	// goes to another sink and is given up, noted twice.
	at := now.Add(time.Second)
	inTx(t, s, func(tx kycd.Tx) error {
		if err := tx.StartRound(ctx, at, crm, uuid.NewString()); err != nil {
			return err
		}
		if err := tx.SetDeliverySink(ctx, bus, "backup", at); err != nil {
			return err
		}
		if err := tx.SetDeliveryState(ctx, bus, kycd.DeliveryDropped, at); err != nil {
			return err
		}
		if err := tx.AddDeliveryAction(ctx, bus, kycd.DeliveryAction{At: at, Actor: "cli:ana", Action: kycd.ActionMove, From: "bus", To: "backup"}); err != nil {
			return err
		}
		return tx.AddDeliveryAction(ctx, bus, kycd.DeliveryAction{At: at.Add(time.Millisecond), Actor: "api:admin", Action: kycd.ActionDrop, From: "backup"})
	})
	again, err := s.ClaimDeliveries(ctx, "other", []string{"crm"}, at, time.Minute, 10)
	if err != nil || len(again) != 1 || again[0].ID != crm || again[0].RoundAttempts != 0 || !again[0].RoundStartedAt.Equal(at) {
		t.Fatalf("claim after the new round = %+v, %v; want crm's delivery, its lease ended, a round from %v", again, err, at)
	}
	d, err := s.Delivery(ctx, bus)
	want := []kycd.DeliveryAction{{At: at, Actor: "cli:ana", Action: kycd.ActionMove, From: "bus", To: "backup"},
		{At: at.Add(time.Millisecond), Actor: "api:admin", Action: kycd.ActionDrop, From: "backup"}}
	if err != nil || d.Sink != "backup" || d.State != kycd.DeliveryDropped || !slices.Equal(d.Actions, want) {
		t.Fatalf("bus's delivery = %+v, %v; want backup's, dropped, with its two actions", d, err)
	}

	// A new delivery of the notification, as a resend makes one.
	fresh := uuid.NewString()
	inTx(t, s, func(tx kycd.Tx) error {
		return tx.AddDelivery(ctx, kycd.DeliveryRow{ID: fresh, NotificationID: id, Sink: "log", State: kycd.DeliveryPending}, at)
	})
	due, err := s.ClaimDeliveries(ctx, "d", []string{"log"}, at, time.Minute, 10)
	if err != nil || len(due) != 1 || due[0].ID != fresh || due[0].NotificationID != id || !due[0].CreatedAt.Equal(at) || len(due[0].Payload) == 0 {
		t.Fatalf("claim of log = %+v, %v; want the new delivery, with the notification's payload", due, err)
	}
}

// testLostLease: RecordAttempts skips, with ECONFLICT, the record of a
// delivery whose lease another dispatcher took meanwhile, and records the
// others of the batch.
func testLostLease(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyN(t, s, 3, "a")
	now := time.Now().UTC().Truncate(time.Millisecond)
	claimed, err := s.ClaimDeliveries(ctx, "first", []string{"a"}, now, time.Minute, 10)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim = %+v, %v; want 3", claimed, err)
	}
	// The first dispatcher's lease runs out and another claims them all.
	later := now.Add(2 * time.Minute)
	if taken, err := s.ClaimDeliveries(ctx, "second", []string{"a"}, later, time.Minute, 10); err != nil || len(taken) != 3 {
		t.Fatalf("second claim = %+v, %v; want the 3 whose lease ran out", taken, err)
	}
	for i, d := range claimed {
		owner := "second"
		if i == 1 {
			owner = "first" // recorded by the dispatcher that lost it
		}
		errs, err := s.RecordAttempts(ctx, owner, []kycd.AttemptRecord{{DeliveryID: d.ID,
			Attempt: kycd.Attempt{At: later, Outcome: kycd.AttemptDelivered},
			Next:    kycd.DeliveryUpdate{State: kycd.DeliveryDelivered, NextAttemptAt: later}}})
		if err != nil || len(errs) != 1 {
			t.Fatalf("RecordAttempts by %s = %v, %v", owner, errs, err)
		}
		if (i == 1) != (kycd.ErrorCode(errs[0]) == kycd.ECONFLICT) || (i != 1 && errs[0] != nil) {
			t.Fatalf("RecordAttempts of delivery %d by %s = %v; want ECONFLICT for the lost lease only", i, owner, errs[0])
		}
	}
	// In one batch: the lost one skipped, the others recorded.
	notifyN(t, s, 3, "b")
	batch, err := s.ClaimDeliveries(ctx, "first", []string{"b"}, later, time.Minute, 10)
	if err != nil || len(batch) != 3 {
		t.Fatalf("claim of b = %+v, %v; want 3", batch, err)
	}
	taken, err := s.ClaimDeliveries(ctx, "second", []string{"b"}, later.Add(2*time.Minute), time.Minute, 1)
	if err != nil || len(taken) != 1 {
		t.Fatalf("second claim of b = %+v, %v; want 1", taken, err)
	}
	lost := taken[0].ID
	var recs []kycd.AttemptRecord
	for _, d := range batch {
		recs = append(recs, kycd.AttemptRecord{DeliveryID: d.ID,
			Attempt: kycd.Attempt{At: later, DurationMS: 5, Outcome: kycd.AttemptFailed, StatusCode: 503, Error: "status 503"},
			Next:    kycd.DeliveryUpdate{State: kycd.DeliveryPending, NextAttemptAt: later.Add(time.Hour), Error: "status 503"}})
	}
	errs, err := s.RecordAttempts(ctx, "first", recs)
	if err != nil || len(errs) != 3 {
		t.Fatalf("RecordAttempts of the batch = %v, %v; want one result each, no failure of the whole call", errs, err)
	}
	for i, d := range batch {
		got, err := s.Delivery(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID == lost {
			if kycd.ErrorCode(errs[i]) != kycd.ECONFLICT || got.AttemptCount != 0 || len(got.Attempts) != 0 {
				t.Errorf("the lost delivery: error %v, %+v; want ECONFLICT, no attempt recorded", errs[i], got)
			}
			continue
		}
		if errs[i] != nil || got.AttemptCount != 1 || len(got.Attempts) != 1 || got.LastError != "status 503" || !got.NextAttemptAt.Equal(later.Add(time.Hour)) {
			t.Errorf("delivery %d: error %v, %+v; want its attempt recorded", i, errs[i], got)
		}
	}
}
