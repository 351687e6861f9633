package kycd_test

import (
	"testing"
	"time"

	"github.com/kycd/kycd"
)

func TestSupersedes(t *testing.T) {
	t0 := time.Date(2026, 3, 17, 16, 41, 28, 447e6, time.UTC)
	tests := []struct {
		name  string
		ts    time.Time
		id    string
		want  bool
		curTS time.Time
		curID string
	}{
		{"newer timestamp", t0.Add(time.Millisecond), "a", true, t0, "b"},
		{"older timestamp", t0.Add(-time.Millisecond), "z", false, t0, "a"},
		{"same instant, larger id", t0, "b", true, t0, "a"},
		{"same instant, smaller id", t0, "a", false, t0, "b"},
		{"same event", t0, "a", false, t0, "a"},
		{"same instant in another zone", t0.In(time.FixedZone("CET", 3600)), "b", true, t0, "a"},
	}
	for _, tt := range tests {
		if got := kycd.Supersedes(tt.ts, tt.id, tt.curTS, tt.curID); got != tt.want {
			t.Errorf("%s: Supersedes = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestStatusAndNotificationTypes(t *testing.T) {
	tests := []struct {
		event  string
		status kycd.Status
		notify string
	}{
		{"kyc_session_failed", kycd.StatusRejected, kycd.NotifySessionRejected},
		{"kyc_session_verified", kycd.StatusVerified, kycd.NotifySessionVerified},
		{"kyc_session_manual_review", kycd.StatusReview, kycd.NotifySessionReview},
		{"kyc_session_expired", kycd.StatusExpired, kycd.NotifySessionExpired},
		{"related_party.kyc_session_created", kycd.StatusNotStarted, kycd.NotifySessionInvited},
		{"kyc_state_updated", "", ""},
		{"viban_created", "", ""},
	}
	for _, tt := range tests {
		if got := kycd.StatusFor(tt.event); got != tt.status {
			t.Errorf("StatusFor(%s) = %q, want %q", tt.event, got, tt.status)
		}
		if got := kycd.NotificationType(&kycd.Event{Type: tt.event, Status: tt.status}); got != tt.notify {
			t.Errorf("NotificationType(%s) = %q, want %q", tt.event, got, tt.notify)
		}
	}
	level := &kycd.Event{Level: "LIGHT", Subject: kycd.SubjectRef{Type: kycd.SubjectBusiness, ID: "x"}}
	if got := kycd.NotificationType(level); got != kycd.NotifyKYBLevelUpdated {
		t.Errorf("business level = %q, want kyb.level.updated", got)
	}
	level.Subject.Type = kycd.SubjectUser
	if got := kycd.NotificationType(level); got != kycd.NotifyKYCLevelUpdated {
		t.Errorf("user level = %q, want kyc.level.updated", got)
	}
	if got := kycd.NotificationType(&kycd.Event{Expiration: &kycd.Expiration{Date: "2026-06-15"}}); got != kycd.NotifyDocumentExpiring {
		t.Errorf("expiration = %q, want kyc.document.expiring", got)
	}
}

func TestRejectionNotificationCarriesFailuresWithGuidance(t *testing.T) {
	ev := &kycd.Event{ID: "e", Type: "kyc_session_failed", Status: kycd.StatusRejected, SessionID: "s",
		Checks: []kycd.Check{
			{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{{Code: "EXPIRED_DOCUMENT", Message: "expired"}}},
			{Type: "liveness", State: "Validated"},
			{Type: "face-matching", State: "Refused", Reasons: []kycd.Reason{{Code: "NO_MATCH", Message: "no match"}, {Code: "SOMETHING_NEW", Message: "?"}}},
		}}
	n := kycd.NewNotification("n1", ev, kycd.DefaultGuidance().For)
	want := []kycd.Failure{
		{CheckType: "document-verification", Code: "EXPIRED_DOCUMENT", Message: "expired", Guidance: kycd.DefaultGuidance()["EXPIRED_DOCUMENT"]},
		{CheckType: "face-matching", Code: "NO_MATCH", Message: "no match", Guidance: kycd.DefaultGuidance()["NO_MATCH"]},
		{CheckType: "face-matching", Code: "SOMETHING_NEW", Message: "?", Guidance: kycd.GenericGuidance},
	}
	if n.ID != "n1" || n.SourceEventID != "e" || n.Type != kycd.NotifySessionRejected || len(n.Failures) != len(want) {
		t.Fatalf("notification = %+v", n)
	}
	for i := range want {
		if n.Failures[i] != want[i] {
			t.Errorf("failure %d = %+v, want %+v", i, n.Failures[i], want[i])
		}
	}
	if kycd.NewNotification("n2", &kycd.Event{Type: "viban_created"}, nil) != nil {
		t.Error("an unhandled event produced a notification")
	}
}

func TestGuidance(t *testing.T) {
	g := kycd.DefaultGuidance().Merge(kycd.Guidance{"NO_MATCH": "Merchant's own words.", "KYC.DOC.SCAN.*": "Rescan."})
	tests := []struct{ code, want string }{
		{"NO_MATCH", "Merchant's own words."},
		{"EXPIRED_DOCUMENT", kycd.DefaultGuidance()["EXPIRED_DOCUMENT"]},
		{"KYC.DOC.DETERIORATED", kycd.DefaultGuidance()["KYC.DOC.DETERIORATED"]},
		{"KYC.DOC.GLARE", kycd.DefaultGuidance()["KYC.DOC.*"]},
		{"KYC.DOC.SCAN.BLUR", "Rescan."}, // the longest prefix wins
		{"WHOLLY_UNKNOWN", kycd.GenericGuidance},
	}
	for _, tt := range tests {
		if got := g.For(tt.code); got != tt.want {
			t.Errorf("For(%s) = %q, want %q", tt.code, got, tt.want)
		}
	}
	if catchAll := (kycd.Guidance{"*": "Contact support."}); catchAll.For("ANY") != "Contact support." {
		t.Error(`a "*" entry does not catch every code`)
	}
}
