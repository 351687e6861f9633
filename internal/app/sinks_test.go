package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/storetest"
)

func sinkNamed(t *testing.T, s kycd.Store, name string) *kycd.SinkInfo {
	t.Helper()
	sinks, err := (&app.Service{Store: s}).ListSinks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range sinks {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("Sinks = %+v, without %s", sinks, name)
	return nil
}

func TestRegisterSinks(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, s kycd.Store) {
		ctx := context.Background()
		svc, clock := service(s)
		storetest.Notify(t, s, 2, "crm", "old")
		now := clock.now
		crm := kycd.SinkInfo{Name: "crm", Type: "http", Target: "https://merchant.example/kyc?token=xxxxx", Events: []string{"kyc.session.*", "kyb.level.updated"}}
		if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{crm, {Name: "log", Type: "log"}}); err != nil {
			t.Fatal(err)
		}
		got := sinkNamed(t, s, "crm")
		if !got.Configured || got.Type != "http" || got.Target != crm.Target || !slices.Equal(got.Events, crm.Events) || got.Pending != 2 || !got.RegisteredAt.Equal(now) {
			t.Fatalf("registered sink = %+v, want %+v, configured, with its 2 pending deliveries", got, crm)
		}
		if old := sinkNamed(t, s, "old"); old.Configured || old.Pending != 2 || old.Orphaned() != 2 {
			t.Fatalf("sink known only by its deliveries = %+v, want not configured, 2 orphaned", old)
		}
		if log := sinkNamed(t, s, "log"); !log.Configured || log.Pending != 0 || len(log.Events) != 0 {
			t.Fatalf("sink log = %+v, want configured, for every type, nothing pending", log)
		}
		orphans, err := svc.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true})
		if err != nil || len(orphans.Items) != 2 {
			t.Fatalf("orphaned deliveries = %+v, %v; want old's 2", orphans, err)
		}
		for _, d := range orphans.Items {
			if d.Sink != "old" || !d.Orphaned {
				t.Fatalf("orphaned delivery %+v, want old's, flagged", d)
			}
		}
		// The next start has only old: crm's deliveries are the orphans
		// now, and old's are not; a pause survives the registration.
		if err := svc.PauseSink(ctx, "crm", "status 410: gone"); err != nil {
			t.Fatal(err)
		}
		clock.now = now.Add(time.Minute)
		if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "old", Type: "nats", Target: "nats://127.0.0.1:4222?subject=kyc"}, crm}); err != nil {
			t.Fatal(err)
		}
		if got := sinkNamed(t, s, "crm"); !got.PausedAt.Equal(now) || !got.RegisteredAt.Equal(clock.now) {
			t.Fatalf("crm registered again = %+v, want its pause kept", got)
		}
		if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "old", Type: "nats", Target: "nats://127.0.0.1:4222?subject=kyc"}}); err != nil {
			t.Fatal(err)
		}
		if got := sinkNamed(t, s, "crm"); got.Configured || got.Orphaned() != 2 || got.Target != crm.Target {
			t.Fatalf("crm after a start without it = %+v, want not configured, its 2 deliveries orphaned, its last target kept", got)
		}
		if page, _ := svc.Deliveries(ctx, kycd.DeliveryFilter{Sink: "old"}); len(page.Items) != 2 || page.Items[0].Orphaned {
			t.Fatalf("old's deliveries after it was registered = %+v, want not orphaned", page.Items)
		}
	})
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, s kycd.Store) {
		ctx := context.Background()
		svc, clock := service(s)
		var woken []string
		svc.Wake = func(sinks ...string) { woken = append(woken, sinks...) }
		storetest.Notify(t, s, 2, "crm", "other")
		now := clock.now
		if err := svc.PauseSink(ctx, "crm", "status 410: gone"); err != nil {
			t.Fatal(err)
		}
		clock.now = now.Add(time.Second)
		if err := svc.PauseSink(ctx, "crm", "status 410: again"); err != nil {
			t.Fatal(err)
		}
		if k := sinkNamed(t, s, "crm"); !k.PausedAt.Equal(now) || k.PauseReason != "status 410: gone" || !k.Configured {
			t.Fatalf("paused sink = %+v, want paused at the first pause, configured (a dispatcher sends to it)", k)
		}
		later := now.Add(time.Hour)
		clock.now = later
		claimed, err := s.ClaimDeliveries(ctx, "d", []string{"crm", "other"}, later, time.Minute, 10)
		if err != nil || len(claimed) != 2 || slices.ContainsFunc(claimed, func(d *kycd.Delivery) bool { return d.Sink == "crm" }) {
			t.Fatalf("claim = %+v, %v; want other's 2 only", claimed, err)
		}
		page, _ := svc.Deliveries(ctx, kycd.DeliveryFilter{Sink: "crm"})
		if len(page.Items) != 2 || !page.Items[0].SinkPaused {
			t.Fatalf("the paused sink's deliveries = %+v, want flagged", page.Items)
		}
		if _, err := svc.ResumeSink(ctx, ana, "nowhere"); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Fatalf("resume of an unknown sink = %v, want ENOTFOUND", err)
		}
		wantAudit(t, s, kycd.AuditSinkResume, kycd.AuditTarget("sink", "nowhere"), ana.Name, kycd.AuditFailed, "")
		n, err := svc.ResumeSink(ctx, ana, "crm")
		if err != nil || n != 2 {
			t.Fatalf("ResumeSink = %d, %v; want its 2 pending deliveries due", n, err)
		}
		wantAudit(t, s, kycd.AuditSinkResume, kycd.AuditTarget("sink", "crm"), ana.Name, kycd.AuditOK, "2 pending deliveries due")
		if k := sinkNamed(t, s, "crm"); !k.PausedAt.IsZero() || k.PauseReason != "" || k.ResumedBy != "cli:ana" || !k.ResumedAt.Equal(later) {
			t.Fatalf("resumed sink = %+v, want not paused, the resume noted", k)
		}
		if n, err := svc.ResumeSink(ctx, ana, "crm"); err != nil || n != 0 {
			t.Fatalf("resume of a sink not paused = %d, %v; want 0, no error", n, err)
		}
		claimed, err = s.ClaimDeliveries(ctx, "d", []string{"crm"}, later, time.Minute, 10)
		if err != nil || len(claimed) != 2 || claimed[0].RoundAttempts != 0 || !claimed[0].RoundStartedAt.Equal(later) {
			t.Fatalf("claim after the resume = %+v, %v; want crm's 2 in a new round", claimed, err)
		}
		if !slices.Contains(woken, "crm") {
			t.Errorf("woken sinks = %v, want crm", woken)
		}
		// A sink never registered that answers 410 is recorded, paused.
		if err := svc.PauseSink(ctx, "new", "status 410: gone"); err != nil {
			t.Fatal(err)
		}
		if k := sinkNamed(t, s, "new"); !k.Configured || !k.PausedAt.Equal(later) {
			t.Fatalf("a sink paused before it was registered = %+v, want configured, paused", k)
		}
	})
}
