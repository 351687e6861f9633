package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kycd/kycd/internal/fakeclock"
	"github.com/kycd/kycd/ralio"
	"github.com/kycd/kycd/ralio/emulator"
)

// Sends run in goroutines; each must be gone when its Run or DeliverDue
// returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testSecret = "emulator-test-secret"
	testAPIKey = "emulator-test-key"
	userID     = "3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
	otherUser  = "9e8d7c6b-5a49-4837-a625-140f3e2d1c0b"
)

var t0 = time.Date(2026, 3, 17, 16, 41, 28, 447_000_000, time.UTC)

// receiver is a webhook endpoint that checks signatures and answers what
// the test says.
type receiver struct {
	URL string

	mu      sync.Mutex
	bodies  [][]byte
	answer  func(n int) int // status for the n-th request (from 1)
	badSigs int
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	t.Helper()
	v, err := ralio.NewVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		if v.Verify(body, req.Header.Get(ralio.SignatureHeader)) != nil {
			r.badSigs++
		}
		r.bodies = append(r.bodies, body)
		n := len(r.bodies)
		r.mu.Unlock()
		status := http.StatusOK
		if r.answer != nil {
			status = r.answer(n)
		}
		w.WriteHeader(status)
		w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/webhooks/ralio"
	return r
}

// received returns the bodies received so far.
func (r *receiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte{}, r.bodies...)
}

// fixture is an emulator on a fake clock, served over HTTP.
type fixture struct {
	em    *emulator.Emulator
	clock *fakeclock.Clock
	URL   string
}

// newFixture starts an emulator sending to webhookURL. Nothing is sent
// until the test calls deliver.
func newFixture(t *testing.T, webhookURL string, tweak func(*emulator.Options)) *fixture {
	t.Helper()
	clock := fakeclock.New(t0)
	o := emulator.Options{
		WebhookURL: webhookURL, Secret: testSecret, APIKey: testAPIKey,
		RetryBase: time.Minute, MaxAttempts: 5, Now: clock.Now,
	}
	if tweak != nil {
		tweak(&o)
	}
	em, err := emulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(em.CloseIdleConnections)
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	return &fixture{em: em, clock: clock, URL: srv.URL}
}

// deliver sends what is due now.
func (f *fixture) deliver(t *testing.T) int {
	t.Helper()
	return f.em.DeliverDue(context.Background())
}

// call makes a request to the emulator; key is the API key to send ("" for
// none). It returns the status and the body.
func (f *fixture) call(t *testing.T, method, path, key string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNotFound && ct != "application/json" && ct != "text/plain; charset=utf-8" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, out
}

// must calls the emulator, requires status want and decodes the answer
// into v (when not nil).
func (f *fixture) must(t *testing.T, method, path string, body any, want int, v any) {
	t.Helper()
	key := ""
	if len(path) > 4 && path[:5] == "/api/" {
		key = testAPIKey
	}
	status, out := f.call(t, method, path, key, body)
	if status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, status, out, want)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, out)
		}
	}
}

// outcome drives an outcome and returns the event id.
func (f *fixture) outcome(t *testing.T, sessionID string, body map[string]any) string {
	t.Helper()
	var a struct {
		EventID string `json:"eventId"`
	}
	f.must(t, http.MethodPost, "/emulator/v1/sessions/"+sessionID+"/outcome", body, http.StatusOK, &a)
	if a.EventID == "" {
		t.Fatalf("outcome answered no eventId")
	}
	return a.EventID
}

// newSession opens a session for uid through the REST API.
func (f *fixture) newSession(t *testing.T, uid string) sessionJSON {
	t.Helper()
	var s sessionJSON
	f.must(t, http.MethodPost, "/api/v1/account/users/"+uid+"/identity-verifications", nil, http.StatusCreated, &s)
	return s
}

// delivery is the one delivery of eventID.
func (f *fixture) delivery(t *testing.T, eventID string) deliveryJSON {
	t.Helper()
	var list struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	f.must(t, http.MethodGet, "/emulator/v1/deliveries?eventId="+eventID, nil, http.StatusOK, &list)
	if len(list.Deliveries) != 1 {
		t.Fatalf("deliveries of event %s: %+v, want one", eventID, list.Deliveries)
	}
	return list.Deliveries[0]
}

type sessionJSON struct {
	ID        string          `json:"id"`
	State     string          `json:"state"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
	ExpiresAt string          `json:"expiresAt"`
	HostedURL string          `json:"hostedUrl"`
	Flow      string          `json:"flow"`
	Data      json.RawMessage `json:"data"`
}

type deliveryJSON struct {
	EventID    string `json:"eventId"`
	Type       string `json:"type"`
	SessionID  string `json:"sessionId"`
	Generation string `json:"generation"`
	State      string `json:"state"`
	Attempts   []struct {
		At        time.Time `json:"at"`
		Status    int       `json:"status"`
		Error     string    `json:"error"`
		Duplicate bool      `json:"duplicate"`
	} `json:"attempts"`
	NextAttemptAt *time.Time `json:"nextAttemptAt"`
}
