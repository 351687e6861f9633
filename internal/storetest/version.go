package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// reconciledBody is ralioBody as reconciliation writes it: marked as
// kycd's own repair.
func reconciledBody(eventID, typ, sessionID, userID string, ts time.Time) []byte {
	b := ralioBody(eventID, typ, sessionID, userID, ts, "")
	return bytes.Replace(b, []byte(`"event":`), []byte(`"kycdSource":"`+kycd.SourceReconciliation+`","event":`), 1)
}

// sentNotification is what a receiver reads of a notification.
type sentNotification struct {
	Type           string `json:"type"`
	SourceEventID  string `json:"sourceEventId"`
	Status         string `json:"status"`
	PreviousStatus string `json:"previousStatus"`
	SessionVersion int64  `json:"sessionVersion"`
}

// sessionNotifications reads the notifications kycd wrote of a session, by
// the event they tell of.
func sessionNotifications(t *testing.T, s kycd.Store, sess *kycd.Session) map[string]sentNotification {
	t.Helper()
	sent, err := s.Notifications(context.Background(), kycd.SessionNotificationIDs(sess))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]sentNotification{}
	for _, n := range sent {
		var p sentNotification
		if err := json.Unmarshal(n.Payload, &p); err != nil {
			t.Fatalf("notification %s: %v", n.ID, err)
		}
		out[p.SourceEventID] = p
	}
	return out
}

// testSessionVersions: every session notification carries the status
// before it and the session's version after it; the session's reads give
// the same version; duplicates, stale events and a transition learnt again
// by reconciliation change neither; a reconciliation repair and every
// event of a batch count one each; a rebuild keeps every version.
func testSessionVersions(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := newPipeline(t, s, "crm")
	sid, user := uuid.NewString(), uuid.NewString()
	review, stale, verified, again, repair, rejected, reviewAgain := uuid.NewString(), uuid.NewString(), uuid.NewString(),
		uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	steps := [][][]byte{
		{ralioBody(review, "kyc_session_manual_review", sid, user, base, "")},
		// The same event again, then an older one: no change.
		{ralioBody(review, "kyc_session_manual_review", sid, user, base, ""), ralioBody(stale, "kyc_session_failed", sid, user, base.Add(-time.Minute), "NO_MATCH")},
		{ralioBody(verified, "kyc_session_verified", sid, user, base.Add(time.Minute), "")},
		// Reconciliation learns the same transition under its own id: no
		// change; then repairs one that was never delivered.
		{reconciledBody(again, "kyc_session_verified", sid, user, base.Add(time.Minute))},
		{reconciledBody(repair, "kyc_session_expired", sid, user, base.Add(2*time.Minute))},
		// Two events of the session in one batch.
		{ralioBody(rejected, "kyc_session_failed", sid, user, base.Add(3*time.Minute), "NO_MATCH"),
			ralioBody(reviewAgain, "kyc_session_manual_review", sid, user, base.Add(4*time.Minute), "")},
	}
	wantVersions := []int64{1, 1, 2, 2, 3, 5}
	for i, bodies := range steps {
		appendRaw(t, s, bodies...)
		drain(t, in)
		if got := session(t, s, sid).Version; got != wantVersions[i] {
			t.Fatalf("after step %d the session's version = %d, want %d", i+1, got, wantVersions[i])
		}
	}

	want := map[string]sentNotification{
		review:      {Type: kycd.NotifySessionReview, Status: "REVIEW", PreviousStatus: "", SessionVersion: 1},
		verified:    {Type: kycd.NotifySessionVerified, Status: "VERIFIED", PreviousStatus: "REVIEW", SessionVersion: 2},
		repair:      {Type: kycd.NotifySessionExpired, Status: "EXPIRED", PreviousStatus: "VERIFIED", SessionVersion: 3},
		rejected:    {Type: kycd.NotifySessionRejected, Status: "REJECTED", PreviousStatus: "EXPIRED", SessionVersion: 4},
		reviewAgain: {Type: kycd.NotifySessionReview, Status: "REVIEW", PreviousStatus: "REJECTED", SessionVersion: 5},
	}
	sess := session(t, s, sid)
	got := sessionNotifications(t, s, sess)
	if len(got) != len(want) {
		t.Fatalf("notifications of the session = %+v, want the %d of its applied events", got, len(want))
	}
	for id, w := range want {
		w.SourceEventID = id
		if got[id] != w {
			t.Errorf("notification of %s = %+v, want %+v", id, got[id], w)
		}
	}
	checkReadVersions(t, s, sid, 5)

	nd := len(deliveries(t, s))
	if _, err := in.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if after := session(t, s, sid); after.Version != sess.Version || !equalJSON(after.History, sess.History) {
		t.Fatalf("after a rebuild the session's version = %d, history %+v; want %d, %+v", after.Version, after.History, sess.Version, sess.History)
	}
	checkReadVersions(t, s, sid, 5)
	if n := len(deliveries(t, s)); n != nd {
		t.Fatalf("%d deliveries after the rebuild, want %d", n, nd)
	}

	// The next event after the rebuild continues from the version the
	// receiver holds.
	next := uuid.NewString()
	appendRaw(t, s, ralioBody(next, "kyc_session_verified", sid, user, base.Add(5*time.Minute), ""))
	drain(t, in)
	if n := sessionNotifications(t, s, session(t, s, sid))[next]; n.SessionVersion != 6 || n.PreviousStatus != "REVIEW" {
		t.Fatalf("the notification after the rebuild = %+v, want version 6 from REVIEW", n)
	}
}

// checkReadVersions asserts that the list of sessions and the stalled
// sessions give the session the version its own read gives.
func checkReadVersions(t *testing.T, s kycd.Store, sid string, want int64) {
	t.Helper()
	ctx := context.Background()
	page, err := reads(s).Sessions(ctx, kycd.SessionFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range page.Sessions {
		if it.ID == sid {
			found = true
			if it.Version != want {
				t.Errorf("the session list gives version %d, want %d", it.Version, want)
			}
		}
	}
	if !found {
		t.Errorf("session %s not in the list", sid)
	}
	if sess := session(t, s, sid); sess.Status != kycd.StatusReview {
		return
	}
	f := kycd.StalledAt(time.Now(), time.Hour)
	f.Limit = 500
	stalled, err := s.StalledSessions(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stalled {
		if st.ID == sid {
			if st.Version != want {
				t.Errorf("the stalled session gives version %d, want %d", st.Version, want)
			}
			if n := kycd.NewStalledNotification(st, time.Hour); n.SessionVersion != want || n.PreviousStatus != "" {
				t.Errorf("kyc.session.stalled = %+v, want version %d and no previous status", n, want)
			}
			return
		}
	}
	t.Errorf("session %s in REVIEW since %s is not stalled", sid, base)
}
