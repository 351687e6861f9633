package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// invitationEvent is a related party's invitation at base+offset that
// expires at expires (none when zero).
func invitationEvent(sessionID string, offset time.Duration, expires time.Time) *kycd.Event {
	id := uuid.NewString()
	return &kycd.Event{ID: id, Type: "related_party.kyc_session_created", Timestamp: base.Add(offset), ReceivedAt: time.Now().UTC(),
		Body: fmt.Appendf(nil, `{"id":%q}`, id), BodyHash: "hash-" + id, SessionID: sessionID,
		Subject: kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: uuid.NewString()}, Status: kycd.StatusNotStarted,
		Invitation: &kycd.Invitation{Email: "ana@example.com", ExpiresAt: expires}}
}

// testStalledSessions: the store reads the sessions past the thresholds it
// is given, oldest status first, and the pages of the stalled list
// (app.ListStalled) follow one another; and keeps an
// invitation's expiry with its session until a later event replaces it.
func testStalledSessions(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	now := base.Add(time.Hour)
	ids := map[string]string{}
	for _, name := range []string{"overdue", "fresh", "expired", "valid", "noexpiry", "reviewedthenverified", "expiredthenverified"} {
		ids[name] = uuid.NewString()
	}
	record(t, s, sessionEvent(ids["overdue"], kycd.StatusReview, 0))
	record(t, s, sessionEvent(ids["fresh"], kycd.StatusReview, 2*time.Hour))
	expired := invitationEvent(ids["expired"], -time.Hour, base.Add(30*time.Minute))
	record(t, s, expired)
	record(t, s, invitationEvent(ids["valid"], -time.Hour, base.Add(2*time.Hour)))
	record(t, s, invitationEvent(ids["noexpiry"], -time.Hour, time.Time{}))
	record(t, s, sessionEvent(ids["reviewedthenverified"], kycd.StatusReview, -time.Hour))
	record(t, s, sessionEvent(ids["reviewedthenverified"], kycd.StatusVerified, -time.Minute))
	record(t, s, invitationEvent(ids["expiredthenverified"], -time.Hour, base))
	record(t, s, sessionEvent(ids["expiredthenverified"], kycd.StatusVerified, -time.Minute))

	if got := session(t, s, ids["expired"]).ExpiresAt; !got.Equal(base.Add(30 * time.Minute)) {
		t.Fatalf("invitation's session expiresAt = %v, want %v", got, base.Add(30*time.Minute))
	}
	if got := session(t, s, ids["expiredthenverified"]).ExpiresAt; !got.IsZero() {
		t.Fatalf("verified session expiresAt = %v, want none once a later event set its status", got)
	}
	if got := session(t, s, ids["overdue"]).ExpiresAt; !got.IsZero() {
		t.Fatalf("review session expiresAt = %v, want none", got)
	}

	// The thresholds of now: REVIEW for more than 30 minutes, invitations
	// expired.
	f := app.StalledRequest{ReviewAlertAfter: 30 * time.Minute}
	page, err := app.ListStalled(ctx, s, now, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Sessions) != 2 || page.NextCursor != "" {
		t.Fatalf("stalled = %+v, want the expired invitation and the overdue review, no more", page)
	}
	inv, rev := page.Sessions[0], page.Sessions[1]
	if inv.ID != ids["expired"] || inv.Reason != kycd.StalledInvitationExpired || inv.Status != kycd.StatusNotStarted ||
		!inv.StatusAt.Equal(expired.Timestamp) || inv.StatusEventID != expired.ID || !inv.ExpiresAt.Equal(base.Add(30*time.Minute)) ||
		inv.Subject != expired.Subject {
		t.Errorf("first stalled = %+v, want the expired invitation (its status is the oldest)", inv)
	}
	if rev.ID != ids["overdue"] || rev.Reason != kycd.StalledReviewOverdue || rev.Status != kycd.StatusReview || !rev.StatusAt.Equal(base) || !rev.ExpiresAt.IsZero() {
		t.Errorf("second stalled = %+v, want the overdue review", rev)
	}

	// A page at a time.
	first, err := app.ListStalled(ctx, s, now, app.StalledRequest{ReviewAlertAfter: f.ReviewAlertAfter, Limit: 1})
	if err != nil || len(first.Sessions) != 1 || first.Sessions[0].ID != ids["expired"] || first.NextCursor == "" {
		t.Fatalf("first page of one = %+v, %v; want the invitation and a cursor", first, err)
	}
	second, err := app.ListStalled(ctx, s, now, app.StalledRequest{ReviewAlertAfter: f.ReviewAlertAfter, Limit: 1, Cursor: first.NextCursor})
	if err != nil || len(second.Sessions) != 1 || second.Sessions[0].ID != ids["overdue"] || second.NextCursor != "" {
		t.Fatalf("second page of one = %+v, %v; want the review and no cursor", second, err)
	}

	// Each threshold alone, and none.
	if p, err := s.StalledSessions(ctx, kycd.StalledFilter{ExpiredBy: now, Limit: 50}); err != nil || len(p) != 1 || p[0].ID != ids["expired"] {
		t.Errorf("invitations only = %+v, %v", p, err)
	}
	if p, err := s.StalledSessions(ctx, kycd.StalledFilter{ReviewBefore: base.Add(3 * time.Hour), Limit: 50}); err != nil || len(p) != 2 {
		t.Errorf("reviews since before base+3h = %+v, %v; want both REVIEW sessions", p, err)
	}
	if p, err := s.StalledSessions(ctx, kycd.StalledFilter{Limit: 50}); err != nil || len(p) != 0 {
		t.Errorf("no threshold = %+v, %v; want an empty list", p, err)
	}
	if _, err := app.ListStalled(ctx, s, now, app.StalledRequest{Cursor: "zzz"}); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Errorf("foreign cursor: %v, want EINVALID", err)
	}

	// Leaving REVIEW ends the stall.
	record(t, s, sessionEvent(ids["overdue"], kycd.StatusVerified, time.Minute))
	if p, err := app.ListStalled(ctx, s, now, f); err != nil || len(p.Sessions) != 1 || p.Sessions[0].ID != ids["expired"] {
		t.Errorf("after the review was decided, stalled = %+v, %v; want the invitation only", p, err)
	}
}

// testNotificationsWithoutEntries: a plan that projects no log entry (the
// watchdog's) writes its notifications once, however often it is applied,
// and leaves the projection of the log where it was.
func testNotificationsWithoutEntries(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	sid := uuid.NewString()
	ev := sessionEvent(sid, kycd.StatusReview, 0)
	record(t, s, ev)
	before := len(deliveries(t, s))
	n := kycd.NewStalledNotification(kycd.StalledSession{ID: sid, Subject: ev.Subject, Status: kycd.StatusReview, StatusAt: ev.Timestamp,
		StatusEventID: ev.ID, Reason: kycd.StalledReviewOverdue}, time.Hour)
	for range 2 {
		tx, err := s.BeginProjection(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Apply(ctx, &kycd.Plan{Notifications: []*kycd.Outgoing{{Notification: n, CreatedAt: time.Now().UTC(), Sinks: []string{"log", "crm"}}}}); err != nil {
			t.Fatal(errors.Join(err, tx.Rollback(ctx)))
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var stalled []*kycd.Delivery
	for _, d := range deliveries(t, s) {
		if d.NotificationID == n.ID {
			stalled = append(stalled, d)
		}
	}
	if got := len(deliveries(t, s)); got != before+2 || len(stalled) != 2 || stalled[0].NotificationType != kycd.NotifySessionStalled {
		t.Fatalf("after applying one notification twice: %d deliveries (%d of it), want %d (one per sink)", got, len(stalled), before+2)
	}
	full, err := s.Delivery(ctx, stalled[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if p := string(full.Payload); !strings.Contains(p, `"stalledReason":"review_overdue"`) || !strings.Contains(p, `"type":"kyc.session.stalled"`) {
		t.Errorf("stalled notification payload = %s", p)
	}
	// The log's projection goes on where it was.
	later := sessionEvent(sid, kycd.StatusVerified, time.Minute)
	if res := record(t, s, later); res.Outcome != kycd.OutcomeApplied || session(t, s, sid).Status != kycd.StatusVerified {
		t.Fatalf("an event after the watchdog's plan = %+v, want applied", res)
	}
}

// testRebuildDerivesExpiry: the expiry comes from the invitation's body,
// so a rebuild (how sessions projected before the column existed get it)
// derives it again.
func testRebuildDerivesExpiry(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := pipeline(t, s)
	sid := uuid.NewString()
	expires := base.Add(7 * 24 * time.Hour)
	body := fmt.Appendf(nil, `{"eventId":%q,"eventType":"related_party.kyc_session_created","timestamp":%q,"data":{"businessUser":{"id":1},
		"relatedParty":{"id":%q,"email":"ana@example.com"},"kycSession":{"id":%q,"url":"https://verify.example.com/x","expiresAt":%q}}}`,
		uuid.NewString(), base.Format(time.RFC3339), uuid.NewString(), sid, expires.Format(time.RFC3339))
	if _, err := in.Receive(ctx, body); err != nil {
		t.Fatal(err)
	}
	drain(t, in)
	if got := session(t, s, sid).ExpiresAt; !got.Equal(expires) {
		t.Fatalf("expiresAt = %v, want %v", got, expires)
	}
	if _, err := in.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if got := session(t, s, sid).ExpiresAt; !got.Equal(expires) {
		t.Fatalf("expiresAt after a rebuild = %v, want %v", got, expires)
	}
}
