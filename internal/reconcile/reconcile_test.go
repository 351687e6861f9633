package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/reconcile"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

const (
	user    = "11111111-1111-4111-8111-111111111111"
	session = "22222222-2222-4222-8222-222222222222"
	key     = "ralio-key"
)

// fakeRalio serves one user's one session: REVIEW at t1, then REJECTED at
// t2 with a refused document check. The first sessions request of a run
// is answered 429 once.
type fakeRalio struct {
	*httptest.Server
	throttled atomic.Bool
	requests  atomic.Int32
}

var (
	t1 = "2026-03-17T16:00:00.000Z"
	t2 = "2026-03-17T16:05:00.000Z"
)

func newFakeRalio(t *testing.T) *fakeRalio {
	f := &fakeRalio{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+key {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		base := "/api/v1/account/users/" + user + "/identity-verifications"
		switch r.URL.Path {
		case base:
			if !f.throttled.Swap(true) {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			fmt.Fprintf(w, `{"data":[{"id":%q,"state":"REJECTED","type":"kyc","created_at":%q,"updated_at":%q,"expiresAt":"","hostedUrl":"","flow":"","data":{}}],
				"pagination":{"page":1,"pageSize":100,"numPages":1,"total":1,"next":null,"previous":null}}`, session, t1, t2)
		case base + "/" + session + "/checks":
			fmt.Fprintf(w, `{"session_id":%q,"checks":[{"id":"c1","type":"document-verification","state":"Refused","data":{},"created_at":%q,"updated_at":%q,
				"refused_reasons":[{"id":"r1","type":"document","code":"EXPIRED_DOCUMENT","message":"The provided document has expired","mappedError":{"category":"DOC"}}]}]}`, session, t2, t2)
		case base + "/" + session + "/state-history":
			fmt.Fprintf(w, `{"logs":[{"id":"l0","new_state":"NOT_STARTED","created_at":"2026-03-17T15:00:00.000Z"},{"id":"l1","new_state":"REVIEW","created_at":%q},{"id":"l2","new_state":5,"created_at":%q}]}`, t1, t2)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func webhook(id, typ, ts string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"event":%q,"timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":[]}}`, id, typ, ts, session, user)
}

func TestReconcileRepairsWhatWasMissedOnce(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.Open(t)
	in, err := ingest.New(ctx, store, ingest.Options{Sinks: kycd.Routes("log"), Guide: kycd.DefaultGuidance().For})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// kycd got the review by webhook; the rejection never arrived.
	if _, err := in.Receive(ctx, webhook("33333333-3333-4333-8333-333333333333", "kyc_session_manual_review", t1)); err != nil {
		t.Fatal(err)
	}
	drain(t, in)
	ralio := newFakeRalio(t)
	var slept []time.Duration
	r := &reconcile.Reconciler{Store: store, Receiver: in, Logger: discard(),
		Client: &reconcile.Client{BaseURL: ralio.URL, APIKey: key, Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}}

	run, err := r.Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, in)
	if run.State != kycd.ReconcileDone || run.Users != 1 || run.Checked != 1 || run.Drift != 1 || len(run.Repaired) != 1 || run.Repaired[0] != session || len(run.Errors) != 0 {
		t.Fatalf("run = %+v, want one session repaired", run)
	}
	if len(slept) != 1 || slept[0] < time.Second {
		t.Errorf("slept %v after a 429 with Retry-After: 1, want one wait of at least 1s", slept)
	}
	s, err := store.Session(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != kycd.StatusRejected || len(kycd.Failures(s.Checks)) != 1 || kycd.Failures(s.Checks)[0].Code != "EXPIRED_DOCUMENT" || s.Checks[0].Reasons[0].Category != "DOC" {
		t.Fatalf("session = %+v, want REJECTED with its refused check", s)
	}
	last := s.History[len(s.History)-1]
	if len(s.History) != 2 || last.Source != kycd.SourceReconciliation || !last.Applied || s.History[0].Source != "" {
		t.Fatalf("history = %+v, want the webhook's review, then the rejection from reconciliation", s.History)
	}
	notified := notifications(t, store)
	if len(notified) != 2 || notified[1].Type != kycd.NotifySessionRejected || len(notified[1].Failures) != 1 || notified[1].Failures[0].Guidance == "" {
		t.Fatalf("notifications = %+v, want the review and a rejection with its failure and guidance", notified)
	}

	// Again: nothing to repair, nothing notified.
	again, err := r.Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, in)
	if len(again.Repaired) != 0 || again.Drift != 0 {
		t.Fatalf("second run = %+v, want nothing repaired", again)
	}
	// The rejection's webhook, arriving late, is the same transition.
	if _, err := in.Receive(ctx, webhook("ffffffff-ffff-4fff-8fff-ffffffffffff", "kyc_session_failed", t2)); err != nil {
		t.Fatal(err)
	}
	drain(t, in)
	if n := notifications(t, store); len(n) != 2 {
		t.Fatalf("%d notifications after a second run and a late webhook, want still 2", len(n))
	}
	if ev, err := store.Event(ctx, "ffffffff-ffff-4fff-8fff-ffffffffffff"); err != nil || ev.Outcome != kycd.OutcomeStale {
		t.Fatalf("late webhook = %+v, %v; want stale", ev, err)
	}
	runs, err := store.Reconciliations(ctx, 10)
	if err != nil || len(runs) != 2 || runs[1].ID != run.ID || len(runs[1].Repaired) != 1 {
		t.Fatalf("recorded runs = %+v, %v", runs, err)
	}
}

func TestReconcileKeepsGoingPastAFailingUserAndResumes(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.Open(t)
	in, err := ingest.New(ctx, store, ingest.Options{Sinks: kycd.Routes("log")})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer down.Close()
	r := &reconcile.Reconciler{Store: store, Receiver: in, Logger: discard(),
		Client: &reconcile.Client{BaseURL: down.URL, APIKey: key, Attempts: 2, Sleep: func(context.Context, time.Duration) error { return nil }}}
	run, err := r.Run(ctx, []string{user, "99999999-9999-4999-8999-999999999999"})
	if err != nil || run.State != kycd.ReconcileFailed || run.Users != 2 || len(run.Errors) != 2 || !strings.Contains(run.Errors[0], "status 502") {
		t.Fatalf("run = %+v, %v; want both users tried, each error kept, the run failed", run, err)
	}

	// A run cut short by a shutdown (here, while waiting to retry the
	// second user) is resumed after the last user it finished.
	ralio := newFakeRalio(t)
	ralio.throttled.Store(true)
	cancelled, cancel := context.WithCancel(ctx)
	defer cancel()
	r.Client = &reconcile.Client{BaseURL: ralio.URL, APIKey: key, Sleep: func(context.Context, time.Duration) error {
		cancel()
		return context.Canceled
	}}
	second := "99999999-9999-4999-8999-999999999999"
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, second) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ralio.Config.Handler.ServeHTTP(w, r)
	}))
	defer other.Close()
	r.Client.BaseURL = other.URL
	run, err = r.Run(cancelled, []string{user, second})
	if err == nil || run.State != kycd.ReconcileInterrupted || run.Users != 1 || run.Cursor != user {
		t.Fatalf("cancelled run = %+v, %v; want interrupted after the first user", run, err)
	}
	r.Client = &reconcile.Client{BaseURL: ralio.URL, APIKey: key}
	run, err = r.Run(ctx, []string{user, second})
	if err != nil || run.State != kycd.ReconcileDone || run.Users != 1 || run.Checked != 0 {
		t.Fatalf("run after the interrupted one = %+v, %v; want only the second user (unknown to Ralio here)", run, err)
	}
	if again, _ := r.Run(ctx, []string{user, second}); again.Users != 2 {
		t.Fatalf("a run after a finished one = %+v, want every user again", again)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func drain(t *testing.T, in *ingest.Ingester) {
	t.Helper()
	if _, err := in.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func notifications(t *testing.T, store kycd.Store) []kycd.Notification {
	t.Helper()
	page, err := (&app.Service{Store: store}).Deliveries(context.Background(), kycd.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []kycd.Notification
	for _, d := range page.Items {
		full, err := store.Delivery(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var n kycd.Notification
		if err := json.Unmarshal(full.Payload, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// Reconciliation's series are there before a first run, at 0, so an alert
// can tell "never ran"; each run sets when the last ended, and the last
// that checked every user.
func TestReconcileMetricsSayWhenRunsEnded(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.Open(t)
	in, err := ingest.New(ctx, store, ingest.Options{Sinks: kycd.Routes("log")})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	reg := prometheus.NewRegistry()
	m := reconcile.NewMetrics(reg)
	want := func(when string, lastRun, lastSuccess, done, failed float64) {
		t.Helper()
		for name, v := range map[string][2]float64{
			"last run":     {testutil.ToFloat64(m.LastRun), lastRun},
			"last success": {testutil.ToFloat64(m.LastSuccess), lastSuccess},
			"runs done":    {testutil.ToFloat64(m.Runs.WithLabelValues(kycd.ReconcileDone)), done},
			"runs failed":  {testutil.ToFloat64(m.Runs.WithLabelValues(kycd.ReconcileFailed)), failed},
		} {
			if v[0] != v[1] {
				t.Errorf("%s: %s = %v, want %v", when, name, v[0], v[1])
			}
		}
	}
	if n, err := testutil.GatherAndCount(reg, "kycd_reconcile_runs_total", "kycd_reconcile_last_run_timestamp_seconds",
		"kycd_reconcile_last_success_timestamp_seconds", "kycd_reconcile_interval_seconds"); err != nil || n != 6 {
		t.Errorf("before a first run: %d series (%v), want 6: runs of each end state, the two timestamps and the interval", n, err)
	}
	want("before a first run", 0, 0, 0, 0)

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer down.Close()
	at := time.Date(2026, 3, 18, 9, 0, 0, 500_000_000, time.UTC)
	r := &reconcile.Reconciler{Store: store, Receiver: in, Logger: discard(), Metrics: m, Now: func() time.Time { return at },
		Client: &reconcile.Client{BaseURL: down.URL, APIKey: key, Attempts: 1, Sleep: func(context.Context, time.Duration) error { return nil }}}
	if run, err := r.Run(ctx, []string{user}); err != nil || run.State != kycd.ReconcileFailed {
		t.Fatalf("run against a failing API = %+v, %v; want failed", run, err)
	}
	want("after a failed run", 1773824400.5, 0, 0, 1)

	at = at.Add(time.Hour)
	r.Client = &reconcile.Client{BaseURL: newFakeRalio(t).URL, APIKey: key, Sleep: func(context.Context, time.Duration) error { return nil }}
	if run, err := r.Run(ctx, []string{user}); err != nil || run.State != kycd.ReconcileDone {
		t.Fatalf("run = %+v, %v; want done", run, err)
	}
	want("after a run that checked every user", 1773828000.5, 1773828000.5, 1, 1)
}
