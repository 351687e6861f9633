package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// notifyN records n rejections, each with one delivery to every sink, a
// little apart so their deliveries list in order.
func notifyN(t *testing.T, s kycd.Store, n int, sinks ...string) {
	t.Helper()
	in := newPipeline(t, s, sinks...)
	for range n {
		ev := sessionEvent(uuid.NewString(), kycd.StatusRejected, 0)
		if _, err := ingestWith(in, ev); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testDeliveryPages(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyN(t, s, 5, "a", "b")
	if page, err := s.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true}); err != nil || len(page.Items) != 10 {
		t.Fatalf("orphaned deliveries before any sink is registered = %d, %v; want all 10: no serve sends to a sink it never registered", len(page.Items), err)
	}
	if err := s.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "a", Type: "log"}, {Name: "b", Type: "log"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var all []*kycd.Delivery
	f := kycd.DeliveryFilter{Sink: "a", Limit: 2}
	for pages := 0; ; pages++ {
		page, err := s.Deliveries(ctx, f)
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
		if d.Sink != "a" || d.Payload != nil || d.Orphaned {
			t.Fatalf("delivery %d = %+v, want sink a's, without payload, not orphaned", i, d)
		}
		if i > 0 && (d.CreatedAt.Before(all[i-1].CreatedAt) || d.ID == all[i-1].ID) {
			t.Fatalf("deliveries not oldest first, or repeated: %v then %v", all[i-1].CreatedAt, d.CreatedAt)
		}
	}
	if page, err := s.Deliveries(ctx, kycd.DeliveryFilter{}); err != nil || len(page.Items) != 10 || page.NextCursor != "" {
		t.Fatalf("all deliveries = %d, %v; want 10 on one page", len(page.Items), err)
	}
	if page, err := s.Deliveries(ctx, kycd.DeliveryFilter{State: kycd.DeliveryDead}); err != nil || len(page.Items) != 0 {
		t.Fatalf("dead deliveries = %+v, %v; want none", page, err)
	}
	if _, err := s.Deliveries(ctx, kycd.DeliveryFilter{Cursor: "zzz"}); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("a foreign cursor = %v, want EINVALID", err)
	}
}

func sinkNamed(t *testing.T, s kycd.Store, name string) *kycd.SinkInfo {
	t.Helper()
	sinks, err := s.Sinks(context.Background())
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

func testSinkRegistry(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyN(t, s, 2, "crm", "old")
	now := time.Now().UTC().Truncate(time.Millisecond)
	crm := kycd.SinkInfo{Name: "crm", Type: "http", Target: "https://merchant.example/kyc?token=xxxxx", Events: []string{"kyc.session.*", "kyb.level.updated"}}
	if err := s.RegisterSinks(ctx, []kycd.SinkInfo{crm, {Name: "log", Type: "log"}}, now); err != nil {
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
	orphans, err := s.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true})
	if err != nil || len(orphans.Items) != 2 {
		t.Fatalf("orphaned deliveries = %+v, %v; want old's 2", orphans, err)
	}
	for _, d := range orphans.Items {
		if d.Sink != "old" || !d.Orphaned {
			t.Fatalf("orphaned delivery %+v, want old's, flagged", d)
		}
	}
	// The next start has only old: crm's deliveries are the orphans now,
	// and old's are not.
	if err := s.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "old", Type: "nats", Target: "nats://127.0.0.1:4222?subject=kyc"}}, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := sinkNamed(t, s, "crm"); got.Configured || got.Orphaned() != 2 || got.Target != crm.Target {
		t.Fatalf("crm after a start without it = %+v, want not configured, its 2 deliveries orphaned, its last target kept", got)
	}
	if page, _ := s.Deliveries(ctx, kycd.DeliveryFilter{Sink: "old"}); len(page.Items) != 2 || page.Items[0].Orphaned {
		t.Fatalf("old's deliveries after it was registered = %+v, want not orphaned", page.Items)
	}
}

func testMoveAndDrop(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyN(t, s, 1, "gone")
	ev := notifyOnce(t, s, "gone", "crm") // a notification with a delivery to crm already
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "crm", Type: "http"}, {Name: "backup", Type: "http"}}, now); err != nil {
		t.Fatal(err)
	}
	page, err := s.Deliveries(ctx, kycd.DeliveryFilter{Sink: "gone"})
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
		if err := s.MoveDelivery(ctx, tt.id, tt.sink, "cli:ana", now); kycd.ErrorCode(err) != tt.code {
			t.Errorf("MoveDelivery(%s, %q) = %v, want %s", tt.id, tt.sink, err, tt.code)
		}
	}
	at := now.Add(time.Minute)
	if err := s.MoveDelivery(ctx, lone.ID, "crm", "cli:ana", at); err != nil {
		t.Fatal(err)
	}
	d, err := s.Delivery(ctx, lone.ID)
	if err != nil || d.Sink != "crm" || d.State != kycd.DeliveryPending || d.Orphaned || !d.NextAttemptAt.Equal(at) ||
		len(d.Actions) != 1 || d.Actions[0] != (kycd.DeliveryAction{At: at, Actor: "cli:ana", Action: kycd.ActionMove, From: "gone", To: "crm"}) {
		t.Fatalf("moved delivery = %+v, %v; want crm's, pending, due at %v, the move noted", d, err, at)
	}
	claimed, err := s.ClaimDeliveries(ctx, "d", []string{"crm"}, at, time.Minute, 10)
	if err != nil || !slices.ContainsFunc(claimed, func(c *kycd.Delivery) bool { return c.ID == lone.ID && c.RoundAttempts == 0 }) {
		t.Fatalf("crm's claim = %+v, %v; want the moved delivery, in a new round", claimed, err)
	}
	if err := s.DropDelivery(ctx, lone.ID, "cli:ana", at); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("drop of a delivery being sent = %v, want ECONFLICT", err)
	}
	if err := s.DropDelivery(ctx, twin.ID, "api:admin", at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	d, err = s.Delivery(ctx, twin.ID)
	if err != nil || d.State != kycd.DeliveryDropped || d.Orphaned || len(d.Actions) != 1 || d.Actions[0].Action != kycd.ActionDrop || d.Actions[0].Actor != "api:admin" || d.Actions[0].From != "gone" {
		t.Fatalf("dropped delivery = %+v, %v; want dropped, the drop noted", d, err)
	}
	for _, err := range []error{
		s.DropDelivery(ctx, twin.ID, "api:admin", at),
		s.MoveDelivery(ctx, twin.ID, "backup", "api:admin", at),
	} {
		if kycd.ErrorCode(err) != kycd.ECONFLICT {
			t.Errorf("a change of a dropped delivery = %v, want ECONFLICT", err)
		}
	}
	if err := s.DropDelivery(ctx, uuid.NewString(), "api:admin", at); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Errorf("drop of an unknown delivery = %v, want ENOTFOUND", err)
	}
	if depth, err := s.OutboxDepth(ctx); err != nil || depth[kycd.DeliveryDropped] != 1 {
		t.Fatalf("OutboxDepth = %v, %v; want 1 dropped", depth, err)
	}
	if orphans, _ := s.Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true}); len(orphans.Items) != 0 {
		t.Fatalf("orphans after the move and the drop = %+v, want none", orphans.Items)
	}
}

func testPauseAndResume(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyN(t, s, 2, "crm", "other")
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.PauseSink(ctx, "crm", "status 410: gone", now); err != nil {
		t.Fatal(err)
	}
	if err := s.PauseSink(ctx, "crm", "status 410: again", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if k := sinkNamed(t, s, "crm"); !k.PausedAt.Equal(now) || k.PauseReason != "status 410: gone" || !k.Configured {
		t.Fatalf("paused sink = %+v, want paused at the first pause, configured (a dispatcher sends to it)", k)
	}
	later := now.Add(time.Hour)
	claimed, err := s.ClaimDeliveries(ctx, "d", []string{"crm", "other"}, later, time.Minute, 10)
	if err != nil || len(claimed) != 2 || slices.ContainsFunc(claimed, func(d *kycd.Delivery) bool { return d.Sink == "crm" }) {
		t.Fatalf("claim = %+v, %v; want other's 2 only", claimed, err)
	}
	page, _ := s.Deliveries(ctx, kycd.DeliveryFilter{Sink: "crm"})
	if len(page.Items) != 2 || !page.Items[0].SinkPaused {
		t.Fatalf("the paused sink's deliveries = %+v, want flagged", page.Items)
	}
	if _, err := s.ResumeSink(ctx, "nowhere", "cli:ana", later); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("resume of an unknown sink = %v, want ENOTFOUND", err)
	}
	n, err := s.ResumeSink(ctx, "crm", "cli:ana", later)
	if err != nil || n != 2 {
		t.Fatalf("ResumeSink = %d, %v; want its 2 pending deliveries due", n, err)
	}
	if k := sinkNamed(t, s, "crm"); !k.PausedAt.IsZero() || k.PauseReason != "" || k.ResumedBy != "cli:ana" || !k.ResumedAt.Equal(later) {
		t.Fatalf("resumed sink = %+v, want not paused, the resume noted", k)
	}
	if n, err := s.ResumeSink(ctx, "crm", "cli:ana", later); err != nil || n != 0 {
		t.Fatalf("resume of a sink not paused = %d, %v; want 0, no error", n, err)
	}
	claimed, err = s.ClaimDeliveries(ctx, "d", []string{"crm"}, later, time.Minute, 10)
	if err != nil || len(claimed) != 2 || claimed[0].RoundAttempts != 0 || !claimed[0].RoundStartedAt.Equal(later) {
		t.Fatalf("claim after the resume = %+v, %v; want crm's 2 in a new round", claimed, err)
	}
}

func testSwapSetting(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	if _, _, err := s.InitSetting(ctx, "k", "plain"); err != nil {
		t.Fatal(err)
	}
	if err := s.SwapSetting(ctx, "k", "other", "hashed"); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("swap from a value it does not hold = %v, want ECONFLICT", err)
	}
	if err := s.SwapSetting(ctx, "k", "plain", "hashed"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Setting(ctx, "k"); v != "hashed" {
		t.Fatalf("after the swap: %q", v)
	}
	if err := s.SwapSetting(ctx, "missing", "", "x"); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("swap of a missing setting = %v, want ECONFLICT", err)
	}
}
