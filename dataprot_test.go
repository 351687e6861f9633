package kycd_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kycd/kycd"
)

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		have, need kycd.Role
		ok         bool
	}{
		{kycd.RoleViewer, kycd.RoleViewer, true},
		{kycd.RoleViewer, kycd.RoleOperator, false},
		{kycd.RoleViewer, kycd.RoleAdmin, false},
		{kycd.RoleOperator, kycd.RoleViewer, true},
		{kycd.RoleOperator, kycd.RoleOperator, true},
		{kycd.RoleOperator, kycd.RoleAdmin, false},
		{kycd.RoleAdmin, kycd.RoleOperator, true},
		{kycd.RoleAdmin, kycd.RoleAdmin, true},
		{"root", kycd.RoleViewer, false},
		{"", kycd.RoleViewer, false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.ok {
			t.Errorf("%q.Allows(%q) = %v, want %v", tc.have, tc.need, got, tc.ok)
		}
	}
	for _, s := range []string{"admin", "operator", "viewer"} {
		if r, err := kycd.ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Admin", "root"} {
		if _, err := kycd.ParseRole(s); kycd.ErrorCode(err) != kycd.EINVALID {
			t.Errorf("ParseRole(%q) = %v, want EINVALID", s, err)
		}
	}
}

func TestCheckTokenName(t *testing.T) {
	for _, ok := range []string{"admin", "ci-bot", "support.eu", "a", "x_1", strings.Repeat("a", 64)} {
		if err := kycd.CheckTokenName(ok); err != nil {
			t.Errorf("CheckTokenName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "cli:root", "Admin", "-x", ".x", "a b", "é", strings.Repeat("a", 65)} {
		if err := kycd.CheckTokenName(bad); kycd.ErrorCode(err) != kycd.EINVALID {
			t.Errorf("CheckTokenName(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestEraseChecks(t *testing.T) {
	checks := []kycd.Check{
		{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{{Type: "document", Code: "KYC.NAME", Message: "Ana Example does not match", Category: "DOC"}}},
		{Type: "liveness", State: "Validated", Reasons: []kycd.Reason{}},
	}
	erased, changed := kycd.EraseChecks(checks)
	want := kycd.Reason{Type: "document", Code: "KYC.NAME", Category: "DOC"}
	if !changed || erased[0].Reasons[0] != want || erased[1].State != "Validated" || len(erased) != 2 {
		t.Fatalf("EraseChecks = %+v, %v", erased, changed)
	}
	if checks[0].Reasons[0].Message == "" {
		t.Error("EraseChecks changed its argument")
	}
	if _, changed := kycd.EraseChecks(erased); changed {
		t.Error("erased checks erased again report a change")
	}
}

func TestErasePayload(t *testing.T) {
	n := &kycd.Notification{ID: "n", Type: kycd.NotifySessionInvited, OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), SourceEventID: "e",
		SessionID: "s", Subject: kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: "p"}, Status: kycd.StatusNotStarted,
		Invitation: &kycd.Invitation{Email: "ana@example.com", PhoneNumber: "+34900000000", VerificationURL: "https://verify.example.com/x"},
		Failures:   []kycd.Failure{{CheckType: "document-verification", Code: "C", Message: "Ana's passport", Guidance: "Try again"}},
		Expiration: &kycd.Expiration{Date: "2026-04-01", DaysRemaining: 30, Action: "Call Ana"}}
	payload, _ := json.Marshal(n)
	out, changed, err := kycd.ErasePayload(payload)
	if err != nil || !changed {
		t.Fatalf("ErasePayload = %v, %v", changed, err)
	}
	for _, gone := range []string{"ana@example.com", "+34900000000", "verify.example.com", "Ana's passport", "Call Ana", "invitation"} {
		if strings.Contains(string(out), gone) {
			t.Errorf("erased payload still holds %q: %s", gone, out)
		}
	}
	for _, kept := range []string{`"id":"n"`, `"sourceEventId":"e"`, `"status":"NOT_STARTED"`, `"code":"C"`, `"guidance":"Try again"`, `"expirationDate":"2026-04-01"`, `"subject":{"type":"related-party","id":"p"}`} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("erased payload lost %s: %s", kept, out)
		}
	}
	if again, changed, err := kycd.ErasePayload(out); err != nil || changed || string(again) != string(out) {
		t.Errorf("erasing again = %s, %v, %v; want unchanged", again, changed, err)
	}
}

func TestErasedNotification(t *testing.T) {
	sub := kycd.SubjectRef{Type: kycd.SubjectUser, ID: "u"}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := kycd.NewErasedNotification(sub, at)
	if n.ID != kycd.ErasedNotificationID(sub, at) || n.ID == kycd.ErasedNotificationID(sub, at.Add(time.Nanosecond)) {
		t.Error("an erasure's notification id is not derived from its subject and time")
	}
	b, _ := json.Marshal(n)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got["type"] != kycd.NotifySubjectErased || got["occurredAt"] != "2026-03-01T12:00:00Z" {
		t.Errorf("kyc.subject.erased = %s, want id, type, occurredAt and subject only", b)
	}
}

func TestSubjectNotificationIDs(t *testing.T) {
	ids := kycd.SubjectNotificationIDs([]string{"e1"}, map[string][]string{"s1": {"e1", "e2"}})
	for _, want := range []string{kycd.NotificationID("e1"), kycd.NotificationID("e2"), kycd.StalledNotificationID("s1", "e1"), kycd.StalledNotificationID("s1", "e2")} {
		found := false
		for _, id := range ids {
			found = found || id == want
		}
		if !found {
			t.Errorf("SubjectNotificationIDs lacks %s", want)
		}
	}
	if len(ids) != 4 {
		t.Errorf("SubjectNotificationIDs = %v, want 4 distinct ids", ids)
	}
}
