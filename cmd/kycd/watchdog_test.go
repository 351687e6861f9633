package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A session in REVIEW past --review-alert-after and an expired invitation
// are listed, counted and notified once, across restarts; a recent REVIEW
// is not.
func TestStalledSessionsNotifiedOnce(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "kycd.db")
	flags := []string{"--addr", "127.0.0.1:0", "--database", "sqlite:" + db, "--ralio-secret", testSecret, "--admin-token", testToken}
	start := func(getenv func(string) string, extra ...string) *kycdServer {
		s := serve(t, getenv, append(flags, extra...)...)
		s.DB, s.Secret, s.Token = db, testSecret, testToken
		return s
	}
	now := time.Now().UTC()
	stamp := func(d time.Duration) string { return now.Add(d).Format("2006-01-02T15:04:05.000Z") }
	overdue, recent, invited := uuid.NewString(), uuid.NewString(), uuid.NewString()

	// The events arrive; the watchdog looks at start and then every minute,
	// so the next start is the first to see them.
	first := start(nil, "--review-alert-after", "24h")
	first.deliver(t, fmt.Appendf(nil, `{"eventId":%q,"eventType":"kyc_session_manual_review","timestamp":%q,"data":{"sessionId":%q,"userId":%q}}`,
		uuid.NewString(), stamp(-30*time.Hour), overdue, uuid.NewString()))
	first.deliver(t, fmt.Appendf(nil, `{"eventId":%q,"eventType":"kyc_session_manual_review","timestamp":%q,"data":{"sessionId":%q,"userId":%q}}`,
		uuid.NewString(), stamp(-time.Hour), recent, uuid.NewString()))
	first.deliver(t, fmt.Appendf(nil, `{"eventId":%q,"eventType":"related_party.kyc_session_created","timestamp":%q,"data":{"businessUser":{"id":1},
		"relatedParty":{"id":%q,"firstName":"Ana","email":"ana@example.com"},"kycSession":{"id":%q,"url":"https://verify.example.com/x","expiresAt":%q}}}`,
		uuid.NewString(), stamp(-8*24*time.Hour), uuid.NewString(), invited, stamp(-time.Hour)))
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}

	second := start(nil, "--review-alert-after", "24h")
	eventually(t, "two kyc.session.stalled notifications on the log sink", func() bool {
		return strings.Count(second.Stdout.String(), `"kyc.session.stalled"`) == 2
	})
	var lines []string
	for l := range strings.SplitSeq(second.Stdout.String(), "\n") {
		if strings.Contains(l, `"kyc.session.stalled"`) {
			lines = append(lines, l)
		}
	}
	stdout := strings.Join(lines, "\n")
	for _, want := range []string{`"sessionId":"` + overdue + `"`, `"stalledReason":"review_overdue"`, `"sessionId":"` + invited + `"`, `"stalledReason":"invitation_expired"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stalled notifications %s lack %s", stdout, want)
		}
	}
	if strings.Contains(stdout, recent) {
		t.Errorf("the review of an hour ago was notified stalled: %s", stdout)
	}
	var list struct {
		Sessions []struct {
			SessionID     string    `json:"sessionId"`
			Status        string    `json:"status"`
			ExpiresAt     time.Time `json:"expiresAt"`
			StalledReason string    `json:"stalledReason"`
		} `json:"sessions"`
	}
	second.getJSON(t, "/api/v1/sessions/stalled", &list)
	if len(list.Sessions) != 2 || list.Sessions[0].SessionID != invited || list.Sessions[0].StalledReason != "invitation_expired" ||
		list.Sessions[0].ExpiresAt.IsZero() || list.Sessions[1].SessionID != overdue || list.Sessions[1].Status != "REVIEW" {
		t.Errorf("GET /api/v1/sessions/stalled = %+v, want the invitation then the overdue review", list.Sessions)
	}
	second.wantMetric(t, `kycd_sessions_stalled{reason="review_overdue"} 1`)
	second.wantMetric(t, `kycd_sessions_stalled{reason="invitation_expired"} 1`)
	if err := second.stop(t); err != nil {
		t.Fatal(err)
	}

	// Started again (the threshold from the environment this time): the
	// same sessions are stalled, and nothing is notified a second time.
	third := start(func(k string) string {
		if k == "KYCD_REVIEW_ALERT_AFTER" {
			return "24h"
		}
		return ""
	})
	third.wantMetric(t, `kycd_sessions_stalled{reason="review_overdue"} 1`)
	var deliveries struct {
		Items []struct {
			NotificationType string `json:"notificationType"`
			State            string `json:"state"`
		} `json:"items"`
	}
	third.getJSON(t, "/api/v1/deliveries", &deliveries)
	n := 0
	for _, d := range deliveries.Items {
		if d.NotificationType == "kyc.session.stalled" {
			n++
		}
	}
	if n != 2 || strings.Contains(third.Stdout.String(), "kyc.session.stalled") {
		t.Errorf("after a restart: %d kyc.session.stalled deliveries (want 2), stdout %s", n, third.Stdout)
	}
}

func TestReviewAlertAfterIsChecked(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")
	if _, err := cli(t, "serve", "--database", db, "--review-alert-after", "10s"); err == nil || !strings.Contains(err.Error(), "--review-alert-after") {
		t.Errorf("serve --review-alert-after 10s: %v, want a refusal naming the flag", err)
	}
	var stderr syncBuffer
	err := run(t.Context(), []string{"serve", "--database", db}, func(k string) string {
		if k == "KYCD_REVIEW_ALERT_AFTER" {
			return "two days"
		}
		return ""
	}, strings.NewReader(""), &syncBuffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "KYCD_REVIEW_ALERT_AFTER") {
		t.Errorf("KYCD_REVIEW_ALERT_AFTER=\"two days\": %v, want a refusal naming the variable", err)
	}
}
