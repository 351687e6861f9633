package watchdog_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/fakeclock"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/internal/watchdog"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// review is Ralio's kyc_session_manual_review for session at ts.
func review(session string, ts time.Time) []byte {
	return fmt.Appendf(nil, `{"eventId":%q,"eventType":"kyc_session_manual_review","timestamp":%q,"data":{"sessionId":%q,"userId":%q}}`,
		uuid.NewString(), stamp(ts), session, uuid.NewString())
}

// verified is Ralio's kyc_session_verified for session at ts.
func verified(session string, ts time.Time) []byte {
	return fmt.Appendf(nil, `{"eventId":%q,"eventType":"kyc_session_verified","timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":[]}}`,
		uuid.NewString(), stamp(ts), session, uuid.NewString())
}

// invitation is Ralio's related_party.kyc_session_created for session at
// ts, expiring at expires, with the party's contact details.
func invitation(session string, ts, expires time.Time) []byte {
	return fmt.Appendf(nil, `{"eventId":%q,"eventType":"related_party.kyc_session_created","timestamp":%q,"data":{
		"businessUser":{"id":4821},"relatedParty":{"id":%q,"roleType":"UBO","firstName":"Ana","lastName":"Example","email":"ana@example.com"},
		"kycSession":{"id":%q,"url":"https://verify.example.com/session/x","expiresAt":%q}}}`,
		uuid.NewString(), stamp(ts), uuid.NewString(), session, stamp(expires))
}

type fixture struct {
	store kycd.Store
	in    *ingest.Ingester
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := sqlitetest.Open(t)
	in, err := ingest.New(context.Background(), s, ingest.Options{Sinks: kycd.Routes("log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return &fixture{store: s, in: in}
}

// receive takes bodies as the webhook would, and projects them.
func (f *fixture) receive(t *testing.T, bodies ...[]byte) {
	t.Helper()
	ctx := context.Background()
	for _, b := range bodies {
		if _, err := f.in.Receive(ctx, b); err != nil {
			t.Fatalf("receive %s: %v", b, err)
		}
	}
	if _, err := f.in.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// stalledDeliveries returns the kyc.session.stalled deliveries by session.
func (f *fixture) stalledDeliveries(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	page, err := (&app.Service{Store: f.store}).Deliveries(ctx, kycd.DeliveryFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, d := range page.Items {
		if d.NotificationType != kycd.NotifySessionStalled {
			continue
		}
		full, err := f.store.Delivery(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var sid string
		if _, after, ok := strings.Cut(string(full.Payload), `"sessionId":"`); ok {
			sid, _, _ = strings.Cut(after, `"`)
		}
		out[sid] = append(out[sid], string(full.Payload))
	}
	return out
}

// A REVIEW session past the threshold and an expired invitation each get one
// notification across rounds, restarts and threshold crossings; a fresh
// REVIEW and an open invitation get none until they cross the line; a
// session that leaves REVIEW stops being listed.
func TestWatchdogNotifiesEachStalledSessionOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old, fresh, expired, open := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.receive(t,
		review(old, now.Add(-72*time.Hour)),
		review(fresh, now.Add(-time.Hour)),
		invitation(expired, now.Add(-8*24*time.Hour), now.Add(-24*time.Hour)),
		invitation(open, now.Add(-time.Hour), now.Add(24*time.Hour)),
	)
	clock := fakeclock.New(now)
	m := watchdog.NewMetrics(prometheus.NewRegistry())
	woken := 0
	opts := watchdog.Options{Store: f.store, Sinks: kycd.Routes("log"), ReviewAlertAfter: 48 * time.Hour, Now: clock.Now, Metrics: m,
		Notified: func() { woken++ }}
	w, err := watchdog.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	gauge := func(reason string) float64 {
		var d dto.Metric
		if err := m.Stalled.WithLabelValues(reason).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetGauge().GetValue()
	}

	r, err := w.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stalled[kycd.StalledReviewOverdue] != 1 || r.Stalled[kycd.StalledInvitationExpired] != 1 || r.Written != 2 || woken != 1 {
		t.Fatalf("first round = %+v (dispatcher woken %d times), want one of each reason, both notified", r, woken)
	}
	if gauge("review_overdue") != 1 || gauge("invitation_expired") != 1 {
		t.Fatalf("kycd_sessions_stalled = %v review_overdue, %v invitation_expired; want 1 and 1", gauge("review_overdue"), gauge("invitation_expired"))
	}
	got := f.stalledDeliveries(t)
	if len(got) != 2 || len(got[old]) != 1 || len(got[expired]) != 1 {
		t.Fatalf("stalled deliveries = %v, want one for %s and one for %s", got, old, expired)
	}
	if p := got[old][0]; !strings.Contains(p, `"stalledReason":"review_overdue"`) || !strings.Contains(p, `"status":"REVIEW"`) ||
		!strings.Contains(p, `"occurredAt":"`+now.Add(-24*time.Hour).Format(time.RFC3339)) {
		t.Errorf("review notification = %s, want review_overdue, occurred 48h after it entered REVIEW", p)
	}
	p := got[expired][0]
	if !strings.Contains(p, `"stalledReason":"invitation_expired"`) || !strings.Contains(p, `"status":"NOT_STARTED"`) ||
		!strings.Contains(p, `"occurredAt":"`+now.Add(-24*time.Hour).Format(time.RFC3339)) {
		t.Errorf("invitation notification = %s, want invitation_expired, occurred at its expiry", p)
	}
	for _, personal := range []string{"ana@example.com", "Ana", "verify.example.com", "invitation\":"} {
		if strings.Contains(p, personal) {
			t.Errorf("invitation notification %s carries personal data %q", p, personal)
		}
	}

	// A second round, and a new watchdog (a restart, another replica):
	// nothing more.
	if r, err := w.Round(ctx); err != nil || r.Written != 0 || woken != 1 {
		t.Fatalf("second round = %+v, %v; want nothing written", r, err)
	}
	w2, _ := watchdog.New(opts)
	if _, err := w2.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.stalledDeliveries(t); len(got[old]) != 1 || len(got[expired]) != 1 || len(got) != 2 {
		t.Fatalf("after two more rounds, stalled deliveries = %v, want still one each", got)
	}

	// The review is decided: no longer listed. Two days on, the fresh
	// review and the open invitation have crossed the line.
	f.receive(t, verified(old, now))
	clock.Add(48 * time.Hour)
	r, err = w.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stalled[kycd.StalledReviewOverdue] != 1 || r.Stalled[kycd.StalledInvitationExpired] != 2 || r.Written != 2 {
		t.Fatalf("two days later = %+v, want the fresh review overdue, both invitations expired, two new notifications", r)
	}
	if gauge("review_overdue") != 1 || gauge("invitation_expired") != 2 {
		t.Errorf("kycd_sessions_stalled = %v, %v; want 1 review_overdue, 2 invitation_expired", gauge("review_overdue"), gauge("invitation_expired"))
	}
	got = f.stalledDeliveries(t)
	if len(got) != 4 || len(got[old]) != 1 || len(got[fresh]) != 1 || len(got[open]) != 1 {
		t.Fatalf("stalled deliveries = %v, want one each for four sessions", got)
	}
	page, err := app.ListStalled(ctx, f.store, clock.Now(), app.StalledRequest{ReviewAlertAfter: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range page.Sessions {
		if s.ID == old {
			t.Errorf("the decided session %s is still listed as stalled", old)
		}
	}

	// Back in REVIEW by a new event: stalled again once the threshold
	// passes, and notified again.
	f.receive(t, review(old, now.Add(time.Hour)))
	if r, _ := w.Round(ctx); r.Written != 0 {
		t.Fatalf("round right after the session went back to REVIEW = %+v, want nothing written", r)
	}
	clock.Add(2 * time.Hour)
	if r, _ := w.Round(ctx); r.Written != 1 {
		t.Fatalf("round 48h after the session went back to REVIEW = %+v, want its new stall notified", r)
	}
	if got := f.stalledDeliveries(t); len(got[old]) != 2 {
		t.Fatalf("deliveries for %s = %v, want a second stall notified", old, got[old])
	}
}

// While the projection is behind, a decision may be in its backlog: the
// round waits for the next one rather than raise a false alarm.
func TestWatchdogWaitsForTheProjection(t *testing.T) {
	f := newFixture(t)
	f.receive(t, review(uuid.NewString(), now.Add(-72*time.Hour)))
	w, err := watchdog.New(watchdog.Options{Store: f.store, Sinks: kycd.Routes("log"), Now: fakeclock.New(now).Now,
		CaughtUp: func(context.Context) (bool, error) { return false, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Round(context.Background()); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Fatalf("round while behind = %v, want EUNAVAILABLE", err)
	}
	if got := f.stalledDeliveries(t); len(got) != 0 {
		t.Fatalf("stalled deliveries while behind = %v, want none", got)
	}
}

// Run looks at once, then on its ticker, and returns when its context ends.
func TestWatchdogRunLooksAtOnceAndStops(t *testing.T) {
	f := newFixture(t)
	f.receive(t, review(uuid.NewString(), now.Add(-72*time.Hour)))
	notified := make(chan struct{})
	w, err := watchdog.New(watchdog.Options{Store: f.store, Sinks: kycd.Routes("log"), Now: fakeclock.New(now).Now, Every: time.Hour,
		Notified: func() { close(notified) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	select {
	case <-notified:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not notify the stalled session at once")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}

// A stalled session is notified only to the sinks whose events filter
// takes kyc.session.stalled, by the rule the planner routes by.
func TestWatchdogNotifiesTheSinksThatTakeStalls(t *testing.T) {
	f := newFixture(t)
	f.receive(t, review(uuid.NewString(), now.Add(-72*time.Hour)))
	w, err := watchdog.New(watchdog.Options{Store: f.store, Now: fakeclock.New(now).Now, Sinks: []kycd.SinkRoute{
		{Name: "rejections", Events: []string{kycd.NotifySessionRejected}},
		{Name: "ops", Events: []string{"kyc.session.*"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	page, err := (&app.Service{Store: f.store}).Deliveries(context.Background(), kycd.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var sinks []string
	for _, d := range page.Items {
		if d.NotificationType == kycd.NotifySessionStalled {
			sinks = append(sinks, d.Sink)
		}
	}
	if len(sinks) != 1 || sinks[0] != "ops" {
		t.Fatalf("stalled notification delivered to %v, want ops only", sinks)
	}
}
