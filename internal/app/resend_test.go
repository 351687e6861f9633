package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/storetest"
)

func TestResend(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, s kycd.Store) {
		ctx := context.Background()
		svc, clock := service(s)
		ev := storetest.NotifyOnce(t, s, "crm")
		id := kycd.NotificationID(ev.ID)
		clock.now = time.Now().UTC().Truncate(time.Millisecond)
		now := clock.now
		if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "crm", Type: "http"}, {Name: "bus", Type: "nats"},
			{Name: "levels", Type: "http", Events: []string{"kyc.level.*"}}}); err != nil {
			t.Fatal(err)
		}
		// crm's delivery is delivered; a resend goes to crm and bus (levels
		// does not take the type).
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
		clock.now = at
		got, err := svc.ResendNotification(ctx, ana, id, "")
		if err != nil {
			t.Fatal(err)
		}
		// In the sinks' order, by name.
		if len(got) != 2 || got[0].Sink != "bus" || !got[0].Created || got[0].DeliveryID == "" || got[1] != (kycd.Resent{Sink: "crm", DeliveryID: crm}) {
			t.Fatalf("ResendNotification = %+v; want a new delivery for bus, then crm's delivery again", got)
		}
		wantAudit(t, s, kycd.AuditNotificationResend, kycd.AuditTarget("notification", id), ana.Name, kycd.AuditOK, "sink ")
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

		clock.now = at.Add(time.Hour)
		for _, tt := range []struct {
			name, id, sink, code string
		}{
			{"unknown notification", uuid.NewString(), "crm", kycd.ENOTFOUND},
			{"sink not configured", id, "gone", kycd.EINVALID},
			{"sink does not take the type", id, "levels", kycd.EINVALID},
		} {
			if _, err := svc.ResendNotification(ctx, admin, tt.id, tt.sink); kycd.ErrorCode(err) != tt.code {
				t.Errorf("%s: ResendNotification = %v, want %s", tt.name, err, tt.code)
			}
			wantAudit(t, s, kycd.AuditNotificationResend, kycd.AuditTarget("notification", tt.id), admin.Name, kycd.AuditFailed, "")
		}
		// A sink no longer configured takes no resend; crm's delivery stays
		// as the first resend left it.
		if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "bus", Type: "nats"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ResendNotification(ctx, admin, id, "crm"); kycd.ErrorCode(err) != kycd.EINVALID {
			t.Fatalf("resend to a sink no longer configured = %v, want EINVALID", err)
		}
		if d, err := s.Delivery(ctx, crm); err != nil || !d.UpdatedAt.Equal(at) {
			t.Fatalf("crm's delivery after a refused resend = %+v, %v; want it untouched since %v", d, err, at)
		}
		got, err = svc.ResendNotification(ctx, admin, id, "bus")
		if err != nil || len(got) != 1 || got[0].Sink != "bus" || got[0].Created {
			t.Fatalf("resend to bus alone = %+v, %v; want bus's delivery again", got, err)
		}
		wantAudit(t, s, kycd.AuditNotificationResend, kycd.AuditTarget("notification", id), admin.Name, kycd.AuditOK, "sink bus")
	})
}
