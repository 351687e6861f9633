package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Issue 8's done-when: with kycd stopped, an outcome driven in the emulator
// ends gave_up; after kycd restarts, kycd reconcile brings that session to
// its Ralio state with its reasons, the merchant's sink receives exactly one
// notification for it, and a second kycd reconcile changes nothing. The
// webhook, resent late, changes nothing either.
func TestReconcileCatchesWhatRalioGaveUpOn(t *testing.T) {
	t.Parallel()
	m := newMerchant(t, testSinkSecret)
	// Both kycd runs listen on one address, as behind Ralio's configured URL.
	addr, db := freeAddr(t), filepath.Join(t.TempDir(), "kycd.db")
	flags := []string{"--addr", addr, "--database", "sqlite:" + db, "--ralio-secret", testSecret, "--admin-token", testToken,
		"--sink", "http=" + m.URL, "--sink-secret", testSinkSecret}
	first := serve(t, nil, flags...)
	first.DB, first.Secret, first.Token = db, testSecret, testToken
	em := startEmulator(t, nil, "--addr", "127.0.0.1:0", "--webhook-url", first.URL+"/webhooks/ralio",
		"--ralio-secret", first.Secret, "--api-key", emulatorKey, "--retry-base", "20ms", "--retry-max-attempts", "2")

	user := uuid.NewString()
	var s struct{ ID string }
	em.call(t, http.MethodPost, "/api/v1/account/users/"+user+"/identity-verifications", nil, &s)
	em.call(t, http.MethodPost, "/emulator/v1/sessions/"+s.ID+"/outcome", map[string]any{"event": "kyc_session_manual_review"}, nil)
	em.settled(t, 10*time.Second)
	eventually(t, "the review's notification", func() bool { return len(m.notifications()) == 1 })

	// kycd is down while Ralio rejects the session and gives up.
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	var rejected struct{ EventID string }
	em.call(t, http.MethodPost, "/emulator/v1/sessions/"+s.ID+"/outcome", map[string]any{"event": "kyc_session_failed",
		"checks": []any{map[string]any{"type": "face-matching", "state": "Refused", "reasons": []any{
			map[string]any{"type": "face-match", "code": "NO_MATCH", "message": "Face does not match the document photo"}}}}}, &rejected)
	if d := em.settled(t, 10*time.Second); len(d) != 2 || d[1].EventID != rejected.EventID || d[1].State != "gave_up" {
		t.Fatalf("emulator deliveries = %+v, want the rejection given up", d)
	}

	second := serve(t, nil, flags...)
	second.DB, second.Secret, second.Token = db, testSecret, testToken
	wantStatus(t, second.session(t, s.ID), "REVIEW")

	reconcile := func() map[string]any {
		t.Helper()
		out := mustCLI(t, "reconcile", "--json", "--database", "sqlite:"+first.DB, "--ralio-api-url", em.URL, "--ralio-api-key", emulatorKey)
		var run map[string]any
		if err := json.Unmarshal([]byte(out), &run); err != nil {
			t.Fatalf("kycd reconcile --json printed %q: %v", out, err)
		}
		return run
	}
	run := reconcile()
	if run["state"] != "done" || len(run["repaired"].([]any)) != 1 || run["repaired"].([]any)[0] != s.ID {
		t.Fatalf("reconcile = %v, want the session repaired", run)
	}
	got := second.session(t, s.ID)
	wantStatus(t, got, "REJECTED")
	if len(got.Failures) != 1 || got.Failures[0].Code != "NO_MATCH" {
		t.Fatalf("failures after reconcile = %+v, want NO_MATCH", got.Failures)
	}
	eventually(t, "the rejection's notification", func() bool { return len(m.notifications()) == 2 })
	if n := m.notifications()[1]; n["type"] != "kyc.session.rejected" || n["sessionId"] != s.ID {
		t.Fatalf("second notification = %v, want the rejection", n)
	}

	// Again, and the late webhook: nothing changes, nothing is sent.
	if again := reconcile(); len(again["repaired"].([]any)) != 0 {
		t.Fatalf("second reconcile = %v, want nothing repaired", again)
	}
	em.call(t, http.MethodPost, "/emulator/v1/deliveries/"+rejected.EventID+"/redeliver", nil, nil)
	var late struct {
		Deliveries []emulatorDelivery `json:"deliveries"`
	}
	eventually(t, "the late webhook delivered", func() bool {
		em.call(t, http.MethodGet, "/emulator/v1/deliveries?eventId="+rejected.EventID, nil, &late)
		return len(late.Deliveries) == 1 && late.Deliveries[0].State == "delivered"
	})
	marker := uuid.NewString()
	em2 := sessionEvent(marker, "kyc_session_verified", time.Now().UTC().Format(time.RFC3339Nano), uuid.NewString())
	second.deliver(t, em2)
	eventually(t, "the marker's notification", func() bool { return len(m.notifications()) >= 3 })
	if n := m.notifications(); len(n) != 3 || n[2]["sourceEventId"] != marker {
		t.Fatalf("notifications = %v, want the review, the rejection once, then the marker", n)
	}
	if h := second.session(t, s.ID).History; len(h) < 2 {
		t.Fatalf("history = %+v", h)
	}
}
