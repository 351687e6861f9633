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

// Notify records n rejections, each with one delivery to every sink of
// sinks: the outbox a test of the outbox's use cases starts from.
func Notify(t *testing.T, s kycd.Store, n int, sinks ...string) { notifyN(t, s, n, sinks...) }

// NotifyOnce records one rejection with one delivery to every sink of
// sinks, and returns its event.
func NotifyOnce(t *testing.T, s kycd.Store, sinks ...string) *kycd.Event {
	return notifyOnce(t, s, sinks...)
}

// inTx runs fn in one transaction of s and commits it.
func inTx(t *testing.T, s kycd.Store, fn func(tx kycd.Tx) error) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// testDeliveryPages: Deliveries reads just the rows its query selects,
// oldest first, from after a row on, at most its limit, each with its
// notification and no flags.
func testDeliveryPages(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyN(t, s, 5, "a", "b")
	notifyN(t, s, 1, "c")
	var all []*kycd.Delivery
	q := kycd.DeliveryQuery{Sink: "a", Limit: 2}
	for reads := 0; ; reads++ {
		rows, err := s.Deliveries(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if reads > 5 || len(rows) > 2 {
			t.Fatalf("read %d has %d rows: the query does not move on", reads, len(rows))
		}
		all = append(all, rows...)
		if len(rows) < 2 {
			break
		}
		last := rows[len(rows)-1]
		q.After, q.AfterID = last.CreatedAt, last.ID
	}
	if len(all) != 5 {
		t.Fatalf("reads of sink a hold %d deliveries, want its 5", len(all))
	}
	for i, d := range all {
		if d.Sink != "a" || len(d.Payload) == 0 || d.NotificationType != kycd.NotifySessionRejected || d.Orphaned || d.SinkPaused {
			t.Fatalf("delivery %d = %+v, want sink a's, with its notification, no flags", i, d)
		}
		if i > 0 && (d.CreatedAt.Before(all[i-1].CreatedAt) || d.ID == all[i-1].ID) {
			t.Fatalf("deliveries not oldest first, or repeated: %v then %v", all[i-1].CreatedAt, d.CreatedAt)
		}
	}
	if rows, err := s.Deliveries(ctx, kycd.DeliveryQuery{}); err != nil || len(rows) != 11 {
		t.Fatalf("all deliveries = %d, %v; want 11", len(rows), err)
	}
	if rows, err := s.Deliveries(ctx, kycd.DeliveryQuery{NotSinks: []string{"a", "c"}}); err != nil || len(rows) != 5 || rows[0].Sink != "b" {
		t.Fatalf("deliveries of neither a nor c = %d, %v; want b's 5", len(rows), err)
	}
	if rows, err := s.Deliveries(ctx, kycd.DeliveryQuery{States: []string{kycd.DeliveryDead, kycd.DeliveryDelivered}}); err != nil || len(rows) != 0 {
		t.Fatalf("dead or delivered deliveries = %+v, %v; want none", rows, err)
	}
	if rows, err := s.Deliveries(ctx, kycd.DeliveryQuery{States: []string{kycd.DeliveryDead, kycd.DeliveryPending}, Sink: "c"}); err != nil || len(rows) != 1 {
		t.Fatalf("c's dead or pending deliveries = %+v, %v; want 1", rows, err)
	}
}

func sinkNamed(t *testing.T, s kycd.Store, name string) *kycd.SinkInfo {
	t.Helper()
	registered, err := s.RegisteredSinks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := s.WaitingDeliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sinks := kycd.ListSinks(registered, waiting)
	for _, k := range sinks {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("Sinks = %+v, without %s", sinks, name)
	return nil
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

// testSinkTx: what the sink operations write is what Sinks and LockSink
// read; a pause and a resume leave the registration as it is, and a
// registration leaves the pause.
func testSinkTx(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyN(t, s, 1, "crm", "old")
	now := time.Now().UTC().Truncate(time.Millisecond)
	crm := kycd.SinkInfo{Name: "crm", Type: "http", Target: "https://merchant.example/kyc", Events: []string{"kyc.session.*", "kyb.level.updated"},
		Configured: true, RegisteredAt: now}
	inTx(t, s, func(tx kycd.Tx) error {
		if _, err := tx.LockSink(ctx, "crm"); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("LockSink of a sink never registered = %v, want ENOTFOUND", err)
		}
		if err := tx.PutSink(ctx, crm); err != nil {
			return err
		}
		if err := tx.PutSink(ctx, kycd.SinkInfo{Name: "log", Type: "log", Configured: true, RegisteredAt: now}); err != nil {
			return err
		}
		return tx.SetSinkPause(ctx, "crm", now, "status 410: gone")
	})
	if got := sinkNamed(t, s, "crm"); !got.Configured || got.Type != "http" || got.Target != crm.Target || !slices.Equal(got.Events, crm.Events) ||
		!got.RegisteredAt.Equal(now) || !got.PausedAt.Equal(now) || got.PauseReason != "status 410: gone" || got.Pending != 1 {
		t.Fatalf("crm = %+v, want as put, paused, its 1 pending delivery counted", got)
	}
	if old := sinkNamed(t, s, "old"); old.Configured || old.Pending != 1 || old.Type != "" {
		t.Fatalf("sink known only by its deliveries = %+v, want not configured, 1 pending", old)
	}
	later := now.Add(time.Minute)
	inTx(t, s, func(tx kycd.Tx) error {
		if err := tx.UnconfigureSinks(ctx); err != nil {
			return err
		}
		// A new registration keeps the pause.
		if err := tx.PutSink(ctx, kycd.SinkInfo{Name: "crm", Type: "nats", Configured: true, RegisteredAt: later}); err != nil {
			return err
		}
		k, err := tx.LockSink(ctx, "crm")
		if err != nil {
			return err
		}
		if k.Type != "nats" || !k.PausedAt.Equal(now) || k.Pending != 0 {
			t.Errorf("LockSink after a new registration = %+v, want type nats, the pause kept, no counts", k)
		}
		all, err := tx.RegisteredSinks(ctx)
		if err != nil {
			return err
		}
		if len(all) != 2 {
			t.Errorf("RegisteredSinks = %d sinks, want crm and log (old has no row)", len(all))
		}
		if err := tx.SetSinkPause(ctx, "crm", time.Time{}, ""); err != nil {
			return err
		}
		return tx.SetSinkResumed(ctx, "crm", "cli:ana", later)
	})
	if got := sinkNamed(t, s, "crm"); !got.PausedAt.IsZero() || got.PauseReason != "" || got.ResumedBy != "cli:ana" || !got.ResumedAt.Equal(later) || !got.Configured {
		t.Fatalf("crm after the resume = %+v, want not paused, the resume noted", got)
	}
	if log := sinkNamed(t, s, "log"); log.Configured {
		t.Fatalf("log after UnconfigureSinks = %+v, want not configured", log)
	}
	// A rolled back transaction changes nothing.
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SetSinkPause(ctx, "crm", later, "x"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sinkNamed(t, s, "crm"); !got.PausedAt.IsZero() {
		t.Fatalf("crm after a rolled back pause = %+v, want not paused", got)
	}
}

// testQuarantineTx: LockQuarantined reads what AddQuarantine kept, and a
// discard is noted on the item, which stays.
func testQuarantineTx(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: time.Now().UTC().Truncate(time.Millisecond), Reason: kycd.QuarantineInvalid,
		Problem: []byte(`{"detail":"x"}`), Body: []byte(`{"b":1}`)}
	if err := s.AddQuarantine(ctx, q); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	inTx(t, s, func(tx kycd.Tx) error {
		if _, err := tx.LockQuarantined(ctx, uuid.NewString()); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("LockQuarantined of an unknown id = %v, want ENOTFOUND", err)
		}
		got, err := tx.LockQuarantined(ctx, q.ID)
		if err != nil {
			return err
		}
		if string(got.Body) != `{"b":1}` || !got.DiscardedAt.IsZero() || !got.ReceivedAt.Equal(q.ReceivedAt) {
			t.Errorf("LockQuarantined = %+v, want the body as kept, not discarded", got)
		}
		return tx.SetQuarantineDiscarded(ctx, q.ID, "api:admin", at)
	})
	got, err := s.QuarantineItem(ctx, q.ID)
	if err != nil || !got.DiscardedAt.Equal(at) || got.DiscardedBy != "api:admin" || string(got.Body) != `{"b":1}` {
		t.Fatalf("discarded item = %+v, %v; want it kept with who and when", got, err)
	}
	if n, err := s.QuarantinePending(ctx); err != nil || n != 0 {
		t.Fatalf("QuarantinePending after the discard = %d, %v; want 0", n, err)
	}
}
