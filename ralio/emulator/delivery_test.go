package emulator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
	"github.com/kycd/kycd/ralio/emulator"
)

// failOutcome drives a failure on a new session of userID.
func (f *fixture) failOutcome(t *testing.T) string {
	t.Helper()
	return f.outcome(t, uuid.NewString(), map[string]any{"event": "kyc_session_failed", "userId": userID})
}

// attemptsAt lists when each attempt of d was made, relative to t0.
func attemptsAt(d deliveryJSON) []time.Duration {
	var out []time.Duration
	for _, a := range d.Attempts {
		out = append(out, a.At.Sub(t0))
	}
	return out
}

func TestRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	f := newFixture(t, recv.URL, nil) // retry base 1m, doubling
	id := f.failOutcome(t)

	f.deliver(t)
	d := f.delivery(t, id)
	if d.State != "pending" || len(d.Attempts) != 1 || d.Attempts[0].Status != 500 || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after a 500: %+v, want pending with a retry due at +1m", d)
	}
	f.clock.Add(59 * time.Second)
	if n := f.deliver(t); n != 0 {
		t.Errorf("%d sends a second before the retry is due", n)
	}
	f.clock.Add(time.Second) // +1m
	f.deliver(t)
	f.clock.Add(2 * time.Minute) // +3m: the second retry waits twice as long
	f.deliver(t)

	d = f.delivery(t, id)
	if d.State != "delivered" || len(d.Attempts) != 3 {
		t.Fatalf("delivery = %+v, want delivered after three attempts", d)
	}
	if got, want := attemptsAt(d), []time.Duration{0, time.Minute, 3 * time.Minute}; !equalDurations(got, want) {
		t.Errorf("attempts at %v, want %v (backoff 1m, 2m)", got, want)
	}
	for i, a := range d.Attempts {
		if want := []int{500, 500, 200}[i]; a.Status != want || a.Error != "" || a.Duplicate {
			t.Errorf("attempt %d = %+v, want status %d", i+1, a, want)
		}
	}
	if d.NextAttemptAt != nil {
		t.Errorf("delivered webhook still has a next attempt at %v", d.NextAttemptAt)
	}
	bodies := recv.received()
	if len(bodies) != 3 || string(bodies[0]) != string(bodies[2]) || recv.badSigs != 0 {
		t.Errorf("receiver got %d bodies (%d badly signed), want the same signed body 3 times", len(bodies), recv.badSigs)
	}
	f.clock.Add(24 * time.Hour)
	if n := f.deliver(t); n != 0 {
		t.Errorf("%d more sends after delivery", n)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestClientErrorDrops(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 404, 409, 422, 301} {
		recv := newReceiver(t, func(int) int { return status })
		f := newFixture(t, recv.URL, nil)
		id := f.failOutcome(t)
		f.deliver(t)
		for range 5 {
			f.clock.Add(24 * time.Hour)
			f.deliver(t)
		}
		d := f.delivery(t, id)
		if d.State != "dropped" || len(d.Attempts) != 1 || d.Attempts[0].Status != status || d.NextAttemptAt != nil {
			t.Errorf("answered %d: %+v, want dropped after one attempt", status, d)
		}
		if n := len(recv.received()); n != 1 {
			t.Errorf("answered %d: receiver got %d requests, want 1", status, n)
		}
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	f := newFixture(t, recv.URL, func(o *emulator.Options) { o.MaxAttempts = 4 })
	id := f.failOutcome(t)
	for range 10 {
		f.deliver(t)
		f.clock.Add(time.Hour)
	}
	d := f.delivery(t, id)
	if d.State != "gave_up" || len(d.Attempts) != 4 || d.NextAttemptAt != nil {
		t.Fatalf("delivery = %+v, want gave_up after 4 attempts", d)
	}
	if n := len(recv.received()); n != 4 {
		t.Errorf("receiver got %d requests, want 4", n)
	}
}

func TestInjectedBackoff(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, func(n int) int { return map[bool]int{true: 502, false: 200}[n < 4] })
	f := newFixture(t, recv.URL, func(o *emulator.Options) {
		o.Backoff = func(n int) time.Duration { return time.Duration(n) * 10 * time.Second }
	})
	id := f.failOutcome(t)
	for range 100 {
		f.deliver(t)
		f.clock.Add(time.Second)
	}
	d := f.delivery(t, id)
	if got, want := attemptsAt(d), []time.Duration{0, 10 * time.Second, 30 * time.Second, 60 * time.Second}; d.State != "delivered" || !equalDurations(got, want) {
		t.Errorf("delivery %s with attempts at %v, want delivered with attempts at %v", d.State, got, want)
	}
}

func TestConnectionErrorsAndTimeoutsAreRetried(t *testing.T) {
	t.Parallel()
	// A receiver that drops every connection without answering (a port
	// closed for the test could be taken by a parallel one).
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer hangup.Close()
	closed := hangup.URL + "/webhooks/ralio"
	f := newFixture(t, closed, func(o *emulator.Options) { o.MaxAttempts = 2 })
	id := f.failOutcome(t)
	f.deliver(t)
	f.clock.Add(time.Minute)
	f.deliver(t)
	d := f.delivery(t, id)
	if d.State != "gave_up" || len(d.Attempts) != 2 || d.Attempts[0].Error == "" || d.Attempts[0].Status != 0 {
		t.Errorf("receiver dropping connections: %+v, want two attempts with errors, then gave_up", d)
	}

	// A receiver slower than the timeout.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	f = newFixture(t, slow.URL, func(o *emulator.Options) { o.Timeout = 50 * time.Millisecond })
	id = f.failOutcome(t)
	f.deliver(t)
	d = f.delivery(t, id)
	if d.State != "pending" || len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "Timeout") || d.NextAttemptAt == nil {
		t.Errorf("slow receiver: %+v, want a timeout and a retry scheduled", d)
	}
}

func TestDeliveriesList(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, func(n int) int { return map[bool]int{true: 400, false: 200}[n == 1] })
	f := newFixture(t, recv.URL, nil)
	dropped := f.failOutcome(t)
	f.deliver(t)
	delivered := f.failOutcome(t)
	f.deliver(t)

	var all struct {
		Deliveries []deliveryJSON `json:"deliveries"`
		Idle       bool           `json:"idle"`
	}
	f.must(t, http.MethodGet, "/emulator/v1/deliveries", nil, http.StatusOK, &all)
	if len(all.Deliveries) != 2 || all.Deliveries[0].EventID != dropped || all.Deliveries[1].EventID != delivered || !all.Idle {
		t.Errorf("deliveries = %+v, want both in order of emission, idle", all)
	}
	f.must(t, http.MethodGet, "/emulator/v1/deliveries?state=dropped", nil, http.StatusOK, &all)
	if len(all.Deliveries) != 1 || all.Deliveries[0].EventID != dropped || all.Deliveries[0].Type != ralio.TypeSessionFailed {
		t.Errorf("?state=dropped = %+v", all.Deliveries)
	}
	f.must(t, http.MethodGet, "/emulator/v1/deliveries?eventId="+strings.ToUpper(delivered), nil, http.StatusOK, &all)
	if len(all.Deliveries) != 1 || all.Deliveries[0].State != "delivered" {
		t.Errorf("?eventId= = %+v", all.Deliveries)
	}
	f.must(t, http.MethodGet, "/emulator/v1/deliveries?state=lost", nil, http.StatusBadRequest, nil)

	f.failOutcome(t)
	f.must(t, http.MethodGet, "/emulator/v1/deliveries?state=pending", nil, http.StatusOK, &all)
	if len(all.Deliveries) != 1 || all.Idle || all.Deliveries[0].NextAttemptAt == nil {
		t.Errorf("a webhook not sent yet: %+v, want pending with its first attempt due, not idle", all)
	}
	f.deliver(t)
}

// Run sends on real timers: a receiver that fails twice gets the webhook on
// the third attempt.
func TestRun(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, func(n int) int { return map[bool]int{true: 500, false: 200}[n <= 2] })
	em, err := emulator.New(emulator.Options{WebhookURL: recv.URL, Secret: testSecret, APIKey: testAPIKey, RetryBase: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer em.CloseIdleConnections()
	srv := httptest.NewServer(em.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- em.Run(ctx) }()
	f := &fixture{em: em, URL: srv.URL}
	id := f.failOutcome(t)
	deadline := time.Now().Add(5 * time.Second)
	for f.delivery(t, id).State != "delivered" {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v", f.delivery(t, id))
		}
		time.Sleep(time.Millisecond)
	}
	if d := f.delivery(t, id); len(d.Attempts) != 3 {
		t.Errorf("delivered after %d attempts, want 3", len(d.Attempts))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// A webhook that gave up can be sent again later, as a provider's "resend"
// does: the same body, a new round of attempts.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	up := false
	var mu sync.Mutex
	recv := newReceiver(t, func(int) int {
		mu.Lock()
		defer mu.Unlock()
		return map[bool]int{false: 503, true: 200}[up]
	})
	f := newFixture(t, recv.URL, func(o *emulator.Options) { o.MaxAttempts = 2 })
	id := f.failOutcome(t)
	f.deliver(t)
	f.clock.Add(time.Minute)
	f.deliver(t)
	if d := f.delivery(t, id); d.State != "gave_up" {
		t.Fatalf("delivery = %+v, want gave_up", d)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	f.clock.Add(time.Hour)
	var d deliveryJSON
	f.must(t, http.MethodPost, "/emulator/v1/deliveries/"+id+"/redeliver", nil, http.StatusOK, &d)
	if d.State != "pending" || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(t0.Add(time.Hour+time.Minute)) {
		t.Errorf("redeliver answered %+v, want pending, due now", d)
	}
	f.deliver(t)
	d = f.delivery(t, id)
	if d.State != "delivered" || len(d.Attempts) != 3 || d.Attempts[2].Status != 200 {
		t.Errorf("after redeliver: %+v, want delivered on a third attempt", d)
	}
	bodies := recv.received()
	if len(bodies) != 3 || string(bodies[2]) != string(bodies[0]) {
		t.Errorf("redelivered body differs from the first")
	}
	f.must(t, http.MethodPost, "/emulator/v1/deliveries/"+uuid.NewString()+"/redeliver", nil, http.StatusNotFound, nil)
}
