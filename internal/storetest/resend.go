package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// only is a route that names the given sinks whatever the type, and
// records the type it was asked about.
func only(got *string, sinks ...string) func(string) ([]string, error) {
	return func(typ string) ([]string, error) {
		*got = typ
		return sinks, nil
	}
}

func testResend(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	ev := notifyOnce(t, s, "crm")
	id := kycd.NotificationID(ev.ID)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "crm", Type: "http"}, {Name: "bus", Type: "nats"}}, now); err != nil {
		t.Fatal(err)
	}
	// crm's delivery is delivered; a resend to crm and bus at once.
	claimed, err := s.ClaimDeliveries(ctx, "d", []string{"crm"}, now, time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	crm := claimed[0].ID
	if errs, err := s.RecordAttempts(ctx, "d", []kycd.AttemptRecord{{DeliveryID: crm,
		Attempt: kycd.Attempt{At: now, Outcome: kycd.AttemptDelivered},
		Next:    kycd.DeliveryUpdate{State: kycd.DeliveryDelivered, NextAttemptAt: now}}}); err != nil || errs[0] != nil {
		t.Fatalf("record = %v, %v", errs, err)
	}

	at := now.Add(time.Hour)
	var typ string
	got, err := s.ResendNotification(ctx, id, only(&typ, "crm", "bus"), at)
	if err != nil {
		t.Fatal(err)
	}
	if typ != kycd.NotifySessionRejected {
		t.Errorf("route was asked about %q, want the notification's type %s", typ, kycd.NotifySessionRejected)
	}
	if len(got) != 2 || got[0] != (kycd.Resent{Sink: "crm", DeliveryID: crm}) || got[1].Sink != "bus" || !got[1].Created || got[1].DeliveryID == "" {
		t.Fatalf("ResendNotification = %+v; want crm's delivery again, then a new one for bus", got)
	}
	due, err := s.ClaimDeliveries(ctx, "d", []string{"crm", "bus"}, at, time.Minute, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("claim after the resend = %+v, %v; want both", due, err)
	}
	for _, d := range due {
		if d.NotificationID != id || d.RoundAttempts != 0 || !d.RoundStartedAt.Equal(at) || len(d.Payload) == 0 {
			t.Errorf("resent delivery = %+v; want the notification with its payload, in a new round from %v", d, at)
		}
		if d.Sink == "crm" && (d.ID != crm || d.AttemptCount != 1) {
			t.Errorf("crm's resent delivery = %+v; want the delivery it had, its attempt kept", d)
		}
	}

	for _, tt := range []struct {
		name, id string
		route    func(string) ([]string, error)
		code     string
	}{
		{"unknown notification", uuid.NewString(), only(&typ, "crm"), kycd.ENOTFOUND},
		{"sink not configured", id, only(&typ, "gone"), kycd.EINVALID},
		{"route refuses", id, func(string) ([]string, error) { return nil, kycd.Errorf(kycd.EINVALID, "no sink takes it") }, kycd.EINVALID},
	} {
		if _, err := s.ResendNotification(ctx, tt.id, tt.route, at); kycd.ErrorCode(err) != tt.code {
			t.Errorf("%s: ResendNotification = %v, want %s", tt.name, err, tt.code)
		}
	}
	// A refusal changes nothing: bus and crm were taken above, "gone" only
	// named after them.
	if _, err := s.ResendNotification(ctx, id, only(&typ, "crm", "gone"), at.Add(time.Hour)); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("resend to crm and an unconfigured sink = %v, want EINVALID", err)
	}
	if d, err := s.Delivery(ctx, crm); err != nil || !d.NextAttemptAt.Equal(at) {
		t.Fatalf("crm's delivery after a refused resend = %+v, %v; want it untouched (due at %v)", d, err, at)
	}
	sentinel := errors.New("route failed")
	if _, err := s.ResendNotification(ctx, id, func(string) ([]string, error) { return nil, sentinel }, at); !errors.Is(err, sentinel) {
		t.Errorf("a route's error = %v, want it returned", err)
	}
}

func testOldestPending(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	if got, err := s.OldestPending(ctx); err != nil || len(got) != 0 {
		t.Fatalf("OldestPending of an empty outbox = %v, %v; want none", got, err)
	}
	notifyN(t, s, 2, "a", "b")
	page, err := s.Deliveries(ctx, kycd.DeliveryFilter{Sink: "a"})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("a's deliveries = %+v, %v", page, err)
	}
	first, second := page.Items[0], page.Items[1]
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
	if err := s.RetryDelivery(ctx, second.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryDelivery(ctx, first.ID, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
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
	if err := s.DiscardQuarantine(ctx, ids[1], "cli:test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.QuarantinePending(ctx); err != nil || n != 1 {
		t.Fatalf("QuarantinePending after a discard = %d, %v; want 1", n, err)
	}
}
