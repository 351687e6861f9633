package kycd_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kycd/kycd"
)

func TestStalledAt(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	f := kycd.StalledAt(now, 2*time.Hour)
	if !f.ReviewBefore.Equal(now.Add(-2*time.Hour)) || !f.ExpiredBy.Equal(now) {
		t.Fatalf("StalledAt(now, 2h) = %+v, want REVIEW since before now-2h and invitations expired by now", f)
	}
	if d := kycd.StalledAt(now, 0); !d.ReviewBefore.Equal(now.Add(-kycd.DefaultReviewAlertAfter)) {
		t.Fatalf("StalledAt(now, 0).ReviewBefore = %v, want now - %v", d.ReviewBefore, kycd.DefaultReviewAlertAfter)
	}
}

func TestStalledNotification(t *testing.T) {
	subject := kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: "rp"}
	review := kycd.StalledSession{ID: "s1", Subject: subject, Status: kycd.StatusReview, StatusAt: t0, StatusEventID: "e1", Reason: kycd.StalledReviewOverdue}
	invite := kycd.StalledSession{ID: "s2", Subject: subject, Status: kycd.StatusNotStarted, StatusAt: t0, StatusEventID: "e2",
		ExpiresAt: t0.Add(7 * 24 * time.Hour), Reason: kycd.StalledInvitationExpired}

	n := kycd.NewStalledNotification(review, 48*time.Hour)
	if n.Type != "kyc.session.stalled" || n.StalledReason != "review_overdue" || !n.OccurredAt.Equal(t0.Add(48*time.Hour)) ||
		n.SessionID != "s1" || n.Status != kycd.StatusReview || n.Subject != subject || n.SourceEventID != "e1" {
		t.Fatalf("review notification = %+v, want stalled review_overdue at statusAt+48h", n)
	}
	m := kycd.NewStalledNotification(invite, 48*time.Hour)
	if m.StalledReason != "invitation_expired" || !m.OccurredAt.Equal(invite.ExpiresAt) {
		t.Fatalf("invitation notification = %+v, want invitation_expired at its expiry", m)
	}

	// One id per session and status event, whatever the threshold: a second
	// round, or another replica, writes the same notification.
	if again := kycd.NewStalledNotification(review, time.Hour); again.ID != n.ID {
		t.Fatal("the same stalled session got two notification ids")
	}
	back := review
	back.StatusEventID = "e3" // left REVIEW and came back
	if kycd.NewStalledNotification(back, 48*time.Hour).ID == n.ID || n.ID == kycd.NotificationID("e1") {
		t.Fatal("a stalled notification id collides with another notification's")
	}

	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "type", "occurredAt", "sessionId", "subject", "status", "stalledReason"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("notification %s lacks %q", b, k)
		}
	}
	if _, ok := fields["invitation"]; ok || strings.Contains(string(b), "ana@example.com") {
		t.Errorf("notification %s carries the invitation", b)
	}
}
