package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// What support reads on the dashboard: sessions found by reason code and
// time, the notifications of one session with their deliveries, the
// deliveries naming whose they are, and quarantined bodies given up.

// testSessionFilters: a reason code selects the sessions whose current
// checks give it; since and until bound the status time.
func testSessionFilters(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	var expired []string // rejected for EXPIRED_DOCUMENT at +0, +1h, +2h
	for i := range 3 {
		ev := sessionEvent(uuid.NewString(), kycd.StatusRejected, time.Duration(i)*time.Hour)
		record(t, s, ev)
		expired = append(expired, ev.SessionID)
	}
	blurry := sessionEvent(uuid.NewString(), kycd.StatusRejected, 30*time.Minute)
	blurry.Checks[0].Reasons[0].Code = "BLURRY_IMAGE"
	record(t, s, blurry)
	// Rejected for EXPIRED_DOCUMENT, then verified: its checks are the
	// verification's now.
	overturned := sessionEvent(uuid.NewString(), kycd.StatusRejected, 0)
	record(t, s, overturned)
	record(t, s, sessionEvent(overturned.SessionID, kycd.StatusVerified, 3*time.Hour))

	list := func(f kycd.SessionFilter) []string {
		t.Helper()
		page, err := reads(s).Sessions(ctx, f)
		if err != nil {
			t.Fatalf("sessions %+v: %v", f, err)
		}
		var ids []string
		for _, it := range page.Sessions {
			ids = append(ids, it.ID)
		}
		return ids
	}
	for _, tc := range []struct {
		name string
		f    kycd.SessionFilter
		want []string // newest status first
	}{
		{"code", kycd.SessionFilter{Code: "EXPIRED_DOCUMENT"}, []string{expired[2], expired[1], expired[0]}},
		{"other code", kycd.SessionFilter{Code: "BLURRY_IMAGE"}, []string{blurry.SessionID}},
		{"code and status", kycd.SessionFilter{Code: "EXPIRED_DOCUMENT", Status: kycd.StatusVerified}, nil},
		{"code since", kycd.SessionFilter{Code: "EXPIRED_DOCUMENT", Since: base.Add(time.Hour)}, []string{expired[2], expired[1]}},
		{"code until", kycd.SessionFilter{Code: "EXPIRED_DOCUMENT", Until: base.Add(time.Hour)}, []string{expired[0]}},
		{"since and until", kycd.SessionFilter{Since: base.Add(30 * time.Minute), Until: base.Add(2 * time.Hour)}, []string{expired[1], blurry.SessionID}},
		{"status until", kycd.SessionFilter{Status: kycd.StatusRejected, Until: base.Add(time.Minute)}, []string{expired[0]}},
		{"code nobody has", kycd.SessionFilter{Code: "NO_MATCH"}, nil},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: sessions = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Pages of one walk the filtered list.
	first, err := reads(s).Sessions(ctx, kycd.SessionFilter{Code: "EXPIRED_DOCUMENT", Since: base.Add(time.Hour), Limit: 1})
	if err != nil || len(first.Sessions) != 1 || first.NextCursor == "" {
		t.Fatalf("first page = %+v, %v; want one session and a cursor", first, err)
	}
	second, err := reads(s).Sessions(ctx, kycd.SessionFilter{Code: "EXPIRED_DOCUMENT", Since: base.Add(time.Hour), Limit: 1, Cursor: first.NextCursor})
	if err != nil || len(second.Sessions) != 1 || second.Sessions[0].ID != expired[1] || second.NextCursor != "" {
		t.Fatalf("second page = %+v, %v; want %s and no cursor", second, err, expired[1])
	}
}

// testSessionNotifications: the notifications a session produced are
// found by the ids its history derives, each with every delivery, its
// attempts and actions; the deliveries name the session and subject.
func testSessionNotifications(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := newPipeline(t, s, "log", "crm")
	sid := uuid.NewString()
	rejected := sessionEvent(sid, kycd.StatusRejected, time.Hour)
	review := sessionEvent(sid, kycd.StatusReview, 0) // older: stale, notifies nothing
	other := sessionEvent(uuid.NewString(), kycd.StatusRejected, time.Hour)
	for _, ev := range []*kycd.Event{rejected, review, other} {
		if _, err := ingestWith(in, ev); err != nil {
			t.Fatal(err)
		}
	}
	// A dead attempt on the log sink's delivery.
	now := time.Now().UTC().Truncate(time.Millisecond)
	claimed, err := s.ClaimDeliveries(ctx, "test", []string{"log"}, now, time.Minute, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim = %d, %v; want the two sessions' deliveries to log", len(claimed), err)
	}
	var recs []kycd.AttemptRecord
	for _, d := range claimed {
		recs = append(recs, kycd.AttemptRecord{DeliveryID: d.ID,
			Attempt: kycd.Attempt{At: now, DurationMS: 7, Outcome: kycd.AttemptRejected, StatusCode: 400, Error: "status 400"},
			Next:    kycd.DeliveryUpdate{State: kycd.DeliveryDead, Error: "status 400"}})
	}
	if errs, err := s.RecordAttempts(ctx, "test", recs); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("record = %v, %v", errs, err)
	}
	// The watchdog's notification of the same session, written later.
	stalled := kycd.NewStalledNotification(kycd.StalledSession{ID: sid, Subject: rejected.Subject, Status: kycd.StatusReview,
		StatusAt: rejected.Timestamp, StatusEventID: rejected.ID, Reason: kycd.StalledReviewOverdue}, time.Hour)
	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(ctx, &kycd.Plan{Notifications: []*kycd.Outgoing{{Notification: stalled, CreatedAt: time.Now().UTC().Add(time.Second), Sinks: []string{"crm"}}}}); err != nil {
		t.Fatal(errors.Join(err, tx.Rollback(ctx)))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	sess := session(t, s, sid)
	got, err := s.Notifications(ctx, append(kycd.SessionNotificationIDs(sess), uuid.NewString()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("notifications of the session = %d, want the rejection and the stall", len(got))
	}
	rej, st := got[0], got[1]
	if rej.ID != kycd.NotificationID(rejected.ID) || rej.Type != kycd.NotifySessionRejected || rej.EventID != rejected.ID || rej.CreatedAt.IsZero() {
		t.Errorf("first notification = %+v, want the rejection", rej)
	}
	var payload kycd.Notification
	if err := json.Unmarshal(rej.Payload, &payload); err != nil || payload.SessionID != sid || len(payload.Failures) != 1 {
		t.Errorf("rejection payload = %s, %v", rej.Payload, err)
	}
	if len(rej.Deliveries) != 2 {
		t.Fatalf("rejection deliveries = %+v, want one per sink", rej.Deliveries)
	}
	sinks := map[string]*kycd.Delivery{}
	for _, d := range rej.Deliveries {
		sinks[d.Sink] = d
		if d.NotificationID != rej.ID || d.SessionID != sid || d.Subject != rejected.Subject || d.Payload != nil {
			t.Errorf("delivery = %+v, want the rejection's, naming its session and subject, without the payload again", d)
		}
	}
	if d := sinks["log"]; d == nil || d.State != kycd.DeliveryDead || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 400 || d.LastError != "status 400" {
		t.Errorf("log's delivery = %+v, want dead after one attempt answered 400", d)
	}
	if d := sinks["crm"]; d == nil || d.State != kycd.DeliveryPending || len(d.Attempts) != 0 {
		t.Errorf("crm's delivery = %+v, want pending, never tried", d)
	}
	if st.ID != stalled.ID || st.Type != kycd.NotifySessionStalled || len(st.Deliveries) != 1 || st.Deliveries[0].Sink != "crm" {
		t.Errorf("second notification = %+v, want the stall with crm's delivery", st)
	}
	if none, err := s.Notifications(ctx, []string{uuid.NewString()}); err != nil || len(none) != 0 {
		t.Errorf("notifications of unknown ids = %+v, %v; want none", none, err)
	}
	if none, err := s.Notifications(ctx, nil); err != nil || none == nil || len(none) != 0 {
		t.Errorf("notifications of no ids = %#v, %v; want an empty list", none, err)
	}

	// The dead deliveries carry their notifications, which name whose
	// each is.
	dead, err := s.Deliveries(ctx, kycd.DeliveryQuery{States: []string{kycd.DeliveryDead}})
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead deliveries = %+v, %v", dead, err)
	}
	for _, d := range dead {
		d.NameConcerned()
		want := map[string]string{kycd.NotificationID(rejected.ID): sid, kycd.NotificationID(other.ID): other.SessionID}[d.NotificationID]
		if d.SessionID != want || d.Subject != rejected.Subject {
			t.Errorf("dead delivery %s names session %q and subject %+v; want %q and %+v", d.ID, d.SessionID, d.Subject, want, rejected.Subject)
		}
	}
}
