package app_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/internal/storetest"
)

// onBothStores runs fn on a new SQLite store and on a new PostgreSQL one
// (skipped without KYCD_TEST_POSTGRES): the use cases' rules hold on
// both, since neither store decides them.
func onBothStores(t *testing.T, fn func(t *testing.T, s kycd.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, sqlitetest.Open(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, postgrestest.Open(t, postgrestest.URL(t)))
	})
}

// clock is a settable Service.Now.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// service is a Service over s at the clock's time, and the clock, set to
// now.
func service(s kycd.Store) (*app.Service, *clock) {
	c := &clock{now: time.Now().UTC().Truncate(time.Millisecond)}
	return &app.Service{Store: s, Now: c.Now, Logger: slog.New(slog.DiscardHandler)}, c
}

// lastAudit is the newest audit entry of action on target.
func lastAudit(t *testing.T, s kycd.Store, action, target string) *kycd.AuditEntry {
	t.Helper()
	page, err := (&app.Service{Store: s}).Audit(context.Background(), kycd.AuditFilter{Action: action, Target: target, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) == 0 {
		t.Fatalf("no audit entry %s of %s", action, target)
	}
	return page.Items[0]
}

func wantAudit(t *testing.T, s kycd.Store, action, target, actor, outcome, detail string) {
	t.Helper()
	e := lastAudit(t, s, action, target)
	if e.Actor != actor || e.Outcome != outcome || (detail != "" && e.Detail != detail) {
		t.Errorf("audit entry %s of %s = %+v; want by %s, %s, detail %q", action, target, e, actor, outcome, detail)
	}
}

var (
	ana   = app.Actor{Name: "cli:ana"}
	admin = app.Actor{Name: "admin", Remote: "192.0.2.1"}
)

func TestMoveAndDrop(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, s kycd.Store) {
		ctx := context.Background()
		svc, clock := service(s)
		storetest.Notify(t, s, 1, "gone")
		ev := storetest.NotifyOnce(t, s, "gone", "crm") // a notification with a delivery to crm already
		if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "crm", Type: "http"}, {Name: "backup", Type: "http"}}); err != nil {
			t.Fatal(err)
		}
		page, err := svc.Deliveries(ctx, kycd.DeliveryFilter{Sink: "gone"})
		if err != nil || len(page.Items) != 2 {
			t.Fatalf("gone's deliveries = %+v, %v", page, err)
		}
		var lone, twin *kycd.Delivery // twin's notification has a crm delivery too
		for _, d := range page.Items {
			if d.NotificationID == kycd.NotificationID(ev.ID) {
				twin = d
			} else {
				lone = d
			}
		}
		for _, tt := range []struct {
			id, sink, code string
		}{
			{uuid.NewString(), "crm", kycd.ENOTFOUND},
			{lone.ID, "", kycd.EINVALID},
			{lone.ID, "nowhere", kycd.EINVALID},
			{lone.ID, "gone", kycd.ECONFLICT},      // its own sink
			{twin.ID, "crm", kycd.ECONFLICT},       // crm has this notification already
			{uuid.NewString(), "", kycd.ENOTFOUND}, // not found comes first
		} {
			if err := svc.MoveDelivery(ctx, ana, tt.id, tt.sink); kycd.ErrorCode(err) != tt.code {
				t.Errorf("MoveDelivery(%s, %q) = %v, want %s", tt.id, tt.sink, err, tt.code)
			}
			wantAudit(t, s, kycd.AuditDeliveryMove, kycd.AuditTarget("delivery", tt.id), ana.Name, kycd.AuditFailed, "")
		}
		if e := lastAudit(t, s, kycd.AuditDeliveryMove, kycd.AuditTarget("delivery", twin.ID)); e.Detail != kycd.ECONFLICT+": notification "+twin.NotificationID+" has a delivery to crm already; drop this one instead" {
			t.Errorf("a refused move's entry = %+v, want its code and message", e)
		}
		clock.now = clock.now.Add(time.Minute)
		at := clock.now
		if d, err := svc.Delivery(ctx, lone.ID); err != nil || !d.Orphaned || d.SinkPaused {
			t.Fatalf("delivery of a sink not configured = %+v, %v; want it orphaned", d, err)
		}
		if err := svc.MoveDelivery(ctx, ana, lone.ID, "crm"); err != nil {
			t.Fatal(err)
		}
		wantAudit(t, s, kycd.AuditDeliveryMove, kycd.AuditTarget("delivery", lone.ID), ana.Name, kycd.AuditOK, "to sink crm")
		d, err := svc.Delivery(ctx, lone.ID)
		if err != nil || d.Sink != "crm" || d.State != kycd.DeliveryPending || d.Orphaned || !d.NextAttemptAt.Equal(at) ||
			len(d.Actions) != 1 || d.Actions[0] != (kycd.DeliveryAction{At: at, Actor: "cli:ana", Action: kycd.ActionMove, From: "gone", To: "crm"}) {
			t.Fatalf("moved delivery = %+v, %v; want crm's, pending, due at %v, the move noted", d, err, at)
		}
		claimed, err := s.ClaimDeliveries(ctx, "d", []string{"crm"}, at, time.Minute, 10)
		if err != nil || !slices.ContainsFunc(claimed, func(c *kycd.Delivery) bool { return c.ID == lone.ID && c.RoundAttempts == 0 }) {
			t.Fatalf("crm's claim = %+v, %v; want the moved delivery, in a new round", claimed, err)
		}
		if _, err := svc.DropDelivery(ctx, ana, lone.ID); kycd.ErrorCode(err) != kycd.ECONFLICT {
			t.Fatalf("drop of a delivery being sent = %v, want ECONFLICT", err)
		}
		clock.now = at.Add(time.Second)
		dropped, err := svc.DropDelivery(ctx, admin, twin.ID)
		if err != nil || dropped.State != kycd.DeliveryDropped || dropped.Sink != "gone" {
			t.Fatalf("DropDelivery = %+v, %v; want gone's, dropped", dropped, err)
		}
		wantAudit(t, s, kycd.AuditDeliveryDrop, kycd.AuditTarget("delivery", twin.ID), admin.Name, kycd.AuditOK, "")
		if e := lastAudit(t, s, kycd.AuditDeliveryDrop, kycd.AuditTarget("delivery", twin.ID)); e.Remote != admin.Remote {
			t.Errorf("drop's entry = %+v, want the remote %s", e, admin.Remote)
		}
		d, err = svc.Delivery(ctx, twin.ID)
		if err != nil || d.State != kycd.DeliveryDropped || d.Orphaned || len(d.Actions) != 1 || d.Actions[0].Action != kycd.ActionDrop || d.Actions[0].Actor != "admin" || d.Actions[0].From != "gone" {
			t.Fatalf("dropped delivery = %+v, %v; want dropped, the drop noted", d, err)
		}
		_, derr := svc.DropDelivery(ctx, admin, twin.ID)
		for _, err := range []error{derr, svc.MoveDelivery(ctx, admin, twin.ID, "backup")} {
			if kycd.ErrorCode(err) != kycd.ECONFLICT {
				t.Errorf("a change of a dropped delivery = %v, want ECONFLICT", err)
			}
		}
		if _, err := svc.DropDelivery(ctx, admin, uuid.NewString()); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("drop of an unknown delivery = %v, want ENOTFOUND", err)
		}
		if depth, err := s.OutboxDepth(ctx); err != nil || depth[kycd.DeliveryDropped] != 1 {
			t.Fatalf("OutboxDepth = %v, %v; want 1 dropped", depth, err)
		}
		if orphans, _ := svc.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true}); len(orphans.Items) != 0 {
			t.Fatalf("orphans after the move and the drop = %+v, want none", orphans.Items)
		}
	})
}

func TestRetry(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, s kycd.Store) {
		ctx := context.Background()
		svc, clock := service(s)
		var woken []string
		svc.Wake = func(sinks ...string) { woken = append(woken, sinks...) }
		storetest.Notify(t, s, 3, "a")
		clock.now = time.Now().UTC().Truncate(time.Millisecond)
		now := clock.now
		claimed, err := s.ClaimDeliveries(ctx, "d", []string{"a"}, now, time.Minute, 10)
		if err != nil || len(claimed) != 3 {
			t.Fatalf("claim = %+v, %v", claimed, err)
		}
		// Two die, one is delivered.
		var recs []kycd.AttemptRecord
		for i, d := range claimed {
			next := kycd.DeliveryUpdate{State: kycd.DeliveryDead, Error: "status 400"}
			if i == 2 {
				next = kycd.DeliveryUpdate{State: kycd.DeliveryDelivered}
			}
			recs = append(recs, kycd.AttemptRecord{DeliveryID: d.ID, Attempt: kycd.Attempt{At: now, Outcome: kycd.AttemptRejected}, Next: next})
		}
		if errs, err := s.RecordAttempts(ctx, "d", recs); err != nil || errs[0] != nil || errs[1] != nil || errs[2] != nil {
			t.Fatalf("record = %v, %v", errs, err)
		}
		clock.now = now.Add(time.Hour)
		n, err := svc.RetryDeadDeliveries(ctx, ana)
		if err != nil || n != 2 {
			t.Fatalf("RetryDeadDeliveries = %d, %v; want the 2 dead", n, err)
		}
		wantAudit(t, s, kycd.AuditDeliveryRetry, app.DeadTarget, ana.Name, kycd.AuditOK, "2 dead deliveries")
		again, err := s.ClaimDeliveries(ctx, "d", []string{"a"}, clock.now, time.Minute, 10)
		if err != nil || len(again) != 2 || again[0].RoundAttempts != 0 || again[0].AttemptCount != 1 || !again[0].RoundStartedAt.Equal(clock.now) {
			t.Fatalf("claim after the retry = %+v, %v; want the 2, in a new round", again, err)
		}
		// A retry of one takes any state, a delivered one too.
		clock.now = clock.now.Add(time.Hour)
		if err := svc.RetryDelivery(ctx, admin, claimed[2].ID); err != nil {
			t.Fatal(err)
		}
		wantAudit(t, s, kycd.AuditDeliveryRetry, kycd.AuditTarget("delivery", claimed[2].ID), admin.Name, kycd.AuditOK, "")
		if d, err := s.Delivery(ctx, claimed[2].ID); err != nil || d.State != kycd.DeliveryPending || !d.NextAttemptAt.Equal(clock.now) {
			t.Fatalf("retried delivery = %+v, %v; want pending, due now", d, err)
		}
		if !slices.Contains(woken, "a") {
			t.Errorf("woken sinks = %v, want a", woken)
		}
		unknown := uuid.NewString()
		if err := svc.RetryDelivery(ctx, admin, unknown); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Fatalf("retry of an unknown delivery = %v, want ENOTFOUND", err)
		}
		wantAudit(t, s, kycd.AuditDeliveryRetry, kycd.AuditTarget("delivery", unknown), admin.Name, kycd.AuditFailed, "")
	})
}

func TestDeliveryList(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, s kycd.Store) {
		ctx := context.Background()
		svc, _ := service(s)
		storetest.Notify(t, s, 5, "a", "b")
		if page, err := svc.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true}); err != nil || len(page.Items) != 10 || !page.Items[0].Orphaned {
			t.Fatalf("orphaned deliveries before any sink is registered = %+v, %v; want all 10, flagged: no serve sends to a sink it never registered", page, err)
		}
		if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "a", Type: "log"}, {Name: "b", Type: "log"}}); err != nil {
			t.Fatal(err)
		}
		var all []*kycd.Delivery
		f := kycd.DeliveryFilter{Sink: "a", Limit: 2}
		for pages := 0; ; pages++ {
			page, err := svc.Deliveries(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if pages > 5 || len(page.Items) > 2 {
				t.Fatalf("page %d has %d items: the cursor does not move on", pages, len(page.Items))
			}
			all = append(all, page.Items...)
			if page.NextCursor == "" {
				break
			}
			f.Cursor = page.NextCursor
		}
		if len(all) != 5 {
			t.Fatalf("pages of sink a hold %d deliveries, want its 5", len(all))
		}
		for i, d := range all {
			if d.Sink != "a" || d.Payload != nil || d.Orphaned || d.SessionID == "" {
				t.Fatalf("delivery %d = %+v, want sink a's, without payload, naming its session, not orphaned", i, d)
			}
			if i > 0 && (d.CreatedAt.Before(all[i-1].CreatedAt) || d.ID == all[i-1].ID) {
				t.Fatalf("deliveries not oldest first, or repeated: %v then %v", all[i-1].CreatedAt, d.CreatedAt)
			}
		}
		if page, err := svc.Deliveries(ctx, kycd.DeliveryFilter{}); err != nil || len(page.Items) != 10 || page.NextCursor != "" {
			t.Fatalf("all deliveries = %+v, %v; want 10 on one page", page, err)
		}
		if page, err := svc.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true}); err != nil || len(page.Items) != 0 {
			t.Fatalf("orphaned deliveries once a and b are registered = %+v, %v; want none", page, err)
		}
		if page, err := svc.Deliveries(ctx, kycd.DeliveryFilter{State: kycd.DeliveryDead}); err != nil || len(page.Items) != 0 {
			t.Fatalf("dead deliveries = %+v, %v; want none", page, err)
		}
		// b is configured no more: its pending deliveries are orphaned,
		// but no delivered one is, whatever its sink.
		if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "a", Type: "log"}}); err != nil {
			t.Fatal(err)
		}
		if page, err := svc.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true, State: kycd.DeliveryPending}); err != nil || len(page.Items) != 5 || page.Items[0].Sink != "b" {
			t.Fatalf("pending orphaned deliveries = %+v, %v; want b's 5", page, err)
		}
		if page, err := svc.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true, State: kycd.DeliveryDelivered}); err != nil || len(page.Items) != 0 {
			t.Fatalf("delivered orphaned deliveries = %+v, %v; want none", page, err)
		}
		if _, err := svc.Deliveries(ctx, kycd.DeliveryFilter{Cursor: "zzz"}); kycd.ErrorCode(err) != kycd.EINVALID {
			t.Fatalf("a foreign cursor = %v, want EINVALID", err)
		}
	})
}
