package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
)

// testResetProjection: a reset makes the projected entries that still
// have their body unprojected and removes what they derived; projecting
// again rebuilds the same state and sends nothing twice. A purged entry
// stays projected, and so does what it derived.
func testResetProjection(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	if n, err := ingest.ResetProjection(ctx, s); err != nil || n != 0 {
		t.Fatalf("ResetProjection of an empty store = %d, %v", n, err)
	}
	d := newDriver(t, s, "crm")
	sub, sid, old := newUser(), uuid.NewString(), uuid.NewString()
	purged := subjectSessionEvent(old, newUser(), kycd.StatusRejected, 0, refused)
	purged.ReceivedAt = time.Now().Add(-48 * time.Hour).UTC()
	entries := d.append(purged)
	entries = append(entries, d.append(
		subjectSessionEvent(sid, sub, kycd.StatusRejected, 0, refused),
		subjectSessionEvent(sid, sub, kycd.StatusReview, -time.Minute),
		levelEvent(sub, "LIGHT", 0),
		unhandledEvent())...)
	entries = append(entries, d.append(subjectSessionEvent(sid, sub, kycd.StatusVerified, time.Minute))...)
	d.project(100)
	// One more entry stays unprojected: it is not counted.
	entries = append(entries, d.append(levelEvent(sub, "REGULAR", time.Minute))...)
	before, err := s.Session(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	nd := len(deliveries(t, s))
	purgeBodies(t, s, time.Now().Add(-24*time.Hour))

	n, err := ingest.ResetProjection(ctx, s)
	if err != nil || n != 5 {
		t.Fatalf("ResetProjection = %d, %v; want the 5 projected entries with a body", n, err)
	}
	if _, err := s.Session(ctx, sid); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("session after reset = %v, want gone until projected again", err)
	}
	if subj, err := reads(s).Subject(ctx, sub.ID, ""); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("subject after reset = %+v, %v; want gone", subj, err)
	}
	if _, err := s.Session(ctx, old); err != nil {
		t.Fatalf("the session of the purged entry after reset = %v, want kept", err)
	}
	if rec, err := s.Event(ctx, purged.ID); err != nil || rec.Body != nil {
		t.Fatalf("purged event after reset = %+v, %v; want kept without body", rec, err)
	}
	if left, _ := s.UnprojectedLog(ctx, 1<<62, 10); len(left) != 6 || left[0].Seq != entries[1].Seq {
		t.Fatalf("unprojected after reset = %v, want every entry after the purged one", seqsOf(left))
	}

	d.opt.Silent = true
	d.project(100)
	after, err := s.Session(ctx, sid)
	if err != nil || !equalJSON(after, before) {
		t.Fatalf("session rebuilt = %+v, %v; want %+v", after, err, before)
	}
	if subj, err := reads(s).Subject(ctx, sub.ID, ""); err != nil || subj.Level != "REGULAR" {
		t.Fatalf("subject rebuilt = %+v, %v; want REGULAR (the entry unprojected at the reset)", subj, err)
	}
	if got := len(deliveries(t, s)); got != nd || nd != 4 {
		t.Fatalf("%d deliveries after the rebuild, %d before; want the 4 of the first projection", got, nd)
	}
	if n, err := ingest.ResetProjection(ctx, s); err != nil || n != 6 {
		t.Fatalf("second ResetProjection = %d, %v; want 6", n, err)
	}
}

// purgeBodies removes the bodies received before before, as the retention
// purge does.
func purgeBodies(t *testing.T, s kycd.Store, before time.Time) {
	t.Helper()
	svc := &app.Service{Store: s, Now: func() time.Time { return before }}
	if _, err := svc.Purge(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}
