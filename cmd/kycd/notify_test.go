package main

// End-to-end tests of notifications: the real kycd delivering to a real HTTP
// receiver, to the log sink, and through the dead letter and replay.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kycd/kycd"
)

// merchant is the merchant's notification endpoint: it verifies every
// request the Standard Webhooks way and keeps what it accepted.
type merchant struct {
	*httptest.Server
	status atomic.Int32 // what it answers; 204 unless set
	delay  atomic.Int64 // how long it takes to answer, in nanoseconds

	mu       sync.Mutex
	received []map[string]any
	ids      []string
	badSig   int
}

func newMerchant(t *testing.T, secret string) *merchant {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	m := &merchant{}
	m.status.Store(http.StatusNoContent)
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(time.Duration(m.delay.Load()))
		m.mu.Lock()
		defer m.mu.Unlock()
		if err := wh.Verify(body, r.Header); err != nil {
			m.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		code := int(m.status.Load())
		if code/100 == 2 {
			var n map[string]any
			if err := json.Unmarshal(body, &n); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			m.received = append(m.received, n)
			m.ids = append(m.ids, r.Header.Get("webhook-id"))
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *merchant) notifications() []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]map[string]any(nil), m.received...)
}

// waitNotified waits, at most within, until a notification of each of
// the events has reached the merchant, and returns how many have not.
func (m *merchant) waitNotified(eventIDs []string, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		m.mu.Lock()
		got := make(map[string]bool, len(m.ids))
		for _, id := range m.ids {
			got[id] = true
		}
		m.mu.Unlock()
		missing := 0
		for _, id := range eventIDs {
			if !got[kycd.NotificationID(id)] {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const testSinkSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestNotificationsReachTheMerchantOnce(t *testing.T) {
	t.Parallel()
	m := newMerchant(t, testSinkSecret)
	s := startServer(t, "--sink", "http="+m.URL, "--sink-secret", testSinkSecret)

	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	eventually(t, "the rejection to reach the merchant", func() bool { return len(m.notifications()) == 1 })
	n := m.notifications()[0]
	if n["type"] != "kyc.session.rejected" || n["sessionId"] != failedSession || n["sourceEventId"] != failedEventID || n["status"] != "REJECTED" {
		t.Fatalf("notification = %v", n)
	}
	failures, _ := n["failures"].([]any)
	if len(failures) != 2 {
		t.Fatalf("failures = %v, want EXPIRED_DOCUMENT and NO_MATCH", n["failures"])
	}
	for i, want := range []string{"EXPIRED_DOCUMENT", "NO_MATCH"} {
		f := failures[i].(map[string]any)
		if f["code"] != want || f["guidance"] == "" || f["guidance"] == nil || f["checkType"] != failedFailures[i].CheckType {
			t.Errorf("failure %d = %v, want %s with its check type and guidance", i, f, want)
		}
	}
	if m.ids[0] != n["id"] {
		t.Errorf("webhook-id %q differs from the notification id %v", m.ids[0], n["id"])
	}

	// A duplicate and a stale event notify nothing. A newer event sent after
	// them is the marker: once its notification is in, any notification of
	// theirs would be too.
	wantJSON(t, s.post(t, example(t, "a-kyc_session_failed.json")), http.StatusOK, `{"received":true,"duplicate":true}`)
	s.deliver(t, sessionEvent(uuid.NewString(), "kyc_session_verified", "2025-06-19T17:00:00.000Z", failedSession))
	marker := uuid.NewString()
	s.deliver(t, sessionEvent(marker, "kyc_session_manual_review", "2025-06-20T09:00:00.000Z", failedSession))
	eventually(t, "the marker notification", func() bool { return len(m.notifications()) >= 2 })
	got := m.notifications()
	if len(got) != 2 || got[1]["sourceEventId"] != marker || got[1]["type"] != "kyc.session.review" {
		t.Fatalf("merchant received %d notifications (%v); want the rejection then the review only", len(got), got)
	}
	// The receiver's rule: the duplicate and the stale event did not count.
	if _, ok := got[0]["previousStatus"]; ok || got[0]["sessionVersion"] != 1.0 {
		t.Errorf("the first notification has previousStatus %v, sessionVersion %v; want none and 1", got[0]["previousStatus"], got[0]["sessionVersion"])
	}
	if got[1]["previousStatus"] != "REJECTED" || got[1]["sessionVersion"] != 2.0 {
		t.Errorf("the review has previousStatus %v, sessionVersion %v; want REJECTED and 2", got[1]["previousStatus"], got[1]["sessionVersion"])
	}
	if v := s.session(t, failedSession).SessionVersion; v != 2 {
		t.Errorf("GET /api/v1/sessions/{id} gives sessionVersion %d, want 2 as the last notification", v)
	}
	if m.badSig != 0 {
		t.Fatalf("%d requests failed the Standard Webhooks signature check", m.badSig)
	}
}

func TestDeadDeliveryReplayedFromTheCLI(t *testing.T) {
	t.Parallel()
	m := newMerchant(t, testSinkSecret)
	m.status.Store(http.StatusBadRequest)
	s := startServer(t, "--sink", "http="+m.URL, "--sink-secret", testSinkSecret)
	s.deliver(t, example(t, "a-kyc_session_failed.json"))

	db := "sqlite:" + s.DB
	var dead string
	eventually(t, "the delivery to be dead after the 400", func() bool {
		dead = mustCLI(t, "deliveries", "list", "--state", "dead", "--database", db)
		return strings.Contains(dead, "kyc.session.rejected")
	})
	if !strings.Contains(dead, "dead") || !strings.Contains(dead, "400") {
		t.Fatalf("dead list does not show the state and the 400:\n%s", dead)
	}
	id := regexp.MustCompile(`[0-9a-f-]{36}`).FindString(dead)

	m.status.Store(http.StatusNoContent)
	out := mustCLI(t, "deliveries", "retry", id, "--database", db)
	if !strings.Contains(out, id) {
		t.Fatalf("retry output %q does not name the delivery", out)
	}
	eventually(t, "the retried delivery to arrive", func() bool { return len(m.notifications()) == 1 })
	eventually(t, "the delivery to be recorded as delivered", func() bool {
		return strings.Contains(mustCLI(t, "deliveries", "list", "--state", "delivered", "--database", db), id)
	})
	if out, err := cli(t, "deliveries", "retry", "--database", db); err == nil || !strings.Contains(err.Error(), "--all-dead") {
		t.Fatalf("retry without an id = %q, %v; want an error naming --all-dead", out, err)
	}
}

func TestLogSinkKeepsPersonalDataOut(t *testing.T) {
	t.Parallel()
	s := startServer(t) // no --sink: the log sink
	s.deliver(t, example(t, "c-related_party.kyc_session_created.json"))
	eventually(t, "the invitation on stdout", func() bool { return strings.Contains(s.Stdout.String(), "kyc.session.invited") })
	for _, personal := range []string{"ana@example.com", "+34900000000", "Example Street", "verify.example.com", `"Ana"`} {
		if strings.Contains(s.Stdout.String(), personal) || strings.Contains(s.Stderr.String(), personal) {
			t.Errorf("%q was written to stdout or the logs", personal)
		}
	}
}

func TestSinkSecretGeneratedOnce(t *testing.T) {
	t.Parallel()
	m := newMerchant(t, testSinkSecret) // a receiver that refuses the unknown secret
	s := startServer(t, "--sink", "http="+m.URL)
	secret := regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`).FindString(generatedSecrets(t, s.DB))
	if secret == "" {
		t.Fatalf("no generated whsec_ secret written out:\n%s", s.Stderr)
	}
	if _, err := standardwebhooks.NewWebhook(secret); err != nil {
		t.Fatalf("generated secret %q is not a Standard Webhooks secret: %v", secret, err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	again := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+s.DB, "--sink", "http="+m.URL)
	if strings.Contains(again.Stderr.String(), "whsec_") || strings.Count(generatedSecrets(t, s.DB), "whsec_") != 1 {
		t.Fatalf("second start printed the secret again:\n%s", again.Stderr)
	}
}

func TestBadSinkFlagNamesItself(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"smtp=mail.example.com", "http=not a url", "nats=nats://127.0.0.1:4222"} {
		_, err := cli(t, "serve", "--addr", "127.0.0.1:0", "--database", "sqlite:"+t.TempDir()+"/k.db", "--sink", bad)
		if err == nil || !strings.Contains(err.Error(), "--sink") {
			t.Errorf("--sink %s: err = %v, want one naming --sink and the expected forms", bad, err)
		}
	}
}

// An empty or short --sink-secret would sign with a key anyone could guess:
// serve refuses to start, naming the flag and the length wanted.
func TestShortSinkSecretRefused(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"whsec_", "whsec_dG9vIHNob3J0"} {
		_, err := cli(t, "serve", "--addr", "127.0.0.1:0", "--database", "sqlite:"+t.TempDir()+"/k.db", "--sink-secret", bad)
		if err == nil || !strings.Contains(err.Error(), "--sink-secret") || !strings.Contains(err.Error(), "want at least 24") {
			t.Errorf("--sink-secret %s: err = %v, want one naming --sink-secret and the 24 bytes wanted", bad, err)
		}
	}
}
