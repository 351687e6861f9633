package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/dispatch"
	"github.com/kycd/kycd/internal/fakeclock"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/ingest/ingesttest"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sink/httpsink"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/ralio"
)

const sinkSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a real HTTP endpoint that answers from a script, then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	script   []func(w http.ResponseWriter)
	requests []*http.Request
	bodies   [][]byte
}

func newReceiver(t *testing.T, script ...func(w http.ResponseWriter)) *receiver {
	r := &receiver{script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, req)
		r.bodies = append(r.bodies, body)
		var answer func(http.ResponseWriter)
		if len(r.script) > 0 {
			answer, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		if answer != nil {
			answer(w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func status(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
	}
}

func times(n int, f func(http.ResponseWriter)) []func(http.ResponseWriter) {
	out := make([]func(http.ResponseWriter), n)
	for i := range out {
		out[i] = f
	}
	return out
}

type fixture struct {
	store *sqlite.Store
	path  string
	clock *fakeclock.Clock
	sink  string
	recv  *receiver
}

func newFixture(t *testing.T, script ...func(http.ResponseWriter)) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kycd.db")
	store := sqlitetest.OpenPath(t, path)
	recv := newReceiver(t, script...)
	return &fixture{store: store, path: path, clock: fakeclock.New(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)), sink: "http=" + recv.URL, recv: recv}
}

// notify records a rejection event with one delivery to the fixture's sink
// and returns the delivery id.
func (f *fixture) notify(t *testing.T) string {
	t.Helper()
	ev := &kycd.Event{
		ID: uuid.NewString(), Type: "kyc_session_failed", Timestamp: f.clock.Now(), ReceivedAt: f.clock.Now(),
		Body: []byte(`{}`), BodyHash: uuid.NewString(), SessionID: uuid.NewString(),
		Subject: kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}, Status: kycd.StatusRejected,
		Checks: []kycd.Check{{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{{Code: "EXPIRED_DOCUMENT", Message: "expired"}}}},
	}
	res := ingesttest.Ingest(t, f.store, ev, ingest.Options{Sinks: kycd.Routes(f.sink), Guide: kycd.DefaultGuidance().For})
	page, err := (&app.Service{Store: f.store}).Deliveries(context.Background(), kycd.DeliveryFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range page.Items {
		if d.NotificationID == res.NotificationID {
			return d.ID
		}
	}
	t.Fatalf("no delivery for notification %s", res.NotificationID)
	return ""
}

func (f *fixture) dispatcher(t *testing.T, store kycd.Store, b dispatch.Backoff, rnd float64) *dispatch.Dispatcher {
	t.Helper()
	sink, err := httpsink.New(f.recv.URL, []string{sinkSecret}, nil, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Options{
		Store: store, Sinks: map[string]kycd.Sink{f.sink: sink}, Backoff: b,
		Now: f.clock.Now, Rand: func() float64 { return rnd },
		Timeout: 5 * time.Second, Lease: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) delivery(t *testing.T, id string) *kycd.Delivery {
	t.Helper()
	d, err := (&app.Service{Store: f.store}).Delivery(context.Background(), id) // as the API and the CLI show it
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func dispatchOnce(t *testing.T, d *dispatch.Dispatcher) int {
	t.Helper()
	n, err := d.DispatchOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeliveredAfterNFailures(t *testing.T) {
	const failures = 3
	f := newFixture(t, times(failures, status(http.StatusInternalServerError))...)
	id := f.notify(t)
	d := f.dispatcher(t, f.store, dispatch.Backoff{Base: time.Second, Cap: time.Minute, MaxAttempts: 10, MaxAge: time.Hour}, 0.999)
	for i := range failures {
		if n := dispatchOnce(t, d); n != 1 {
			t.Fatalf("round %d claimed %d deliveries, want 1", i, n)
		}
		del := f.delivery(t, id)
		if del.State != kycd.DeliveryPending || !del.NextAttemptAt.After(f.clock.Now()) {
			t.Fatalf("after failure %d: %+v, want pending with a later attempt", i+1, del)
		}
		// Not due yet: nothing to claim until the clock reaches the schedule.
		if n := dispatchOnce(t, d); n != 0 {
			t.Fatalf("claimed %d deliveries before they were due", n)
		}
		f.clock.Set(del.NextAttemptAt)
	}
	dispatchOnce(t, d)
	del := f.delivery(t, id)
	if del.State != kycd.DeliveryDelivered || del.AttemptCount != failures+1 || len(del.Attempts) != failures+1 {
		t.Fatalf("delivery = %+v, want delivered after %d attempts", del, failures+1)
	}
	for i, a := range del.Attempts[:failures] {
		if a.Outcome != kycd.AttemptFailed || a.StatusCode != 500 || a.N != i+1 {
			t.Errorf("attempt %d = %+v, want failed with 500", i+1, a)
		}
	}
	if last := del.Attempts[failures]; last.Outcome != kycd.AttemptDelivered {
		t.Errorf("last attempt = %+v, want delivered", last)
	}
	if f.recv.count() != failures+1 {
		t.Fatalf("receiver got %d requests, want %d", f.recv.count(), failures+1)
	}
	first := f.recv.requests[0].Header.Get("webhook-id")
	for i, r := range f.recv.requests {
		if r.Header.Get("webhook-id") != first || first != del.NotificationID {
			t.Errorf("request %d webhook-id = %q, want the notification id %s on every attempt", i, r.Header.Get("webhook-id"), del.NotificationID)
		}
	}
	var n kycd.Notification
	if err := json.Unmarshal(f.recv.bodies[0], &n); err != nil || n.Type != kycd.NotifySessionRejected || len(n.Failures) != 1 || n.Failures[0].Guidance == "" {
		t.Fatalf("notification = %+v, %v; want a rejection with guidance", n, err)
	}
}

func TestClientErrorIsDeadAtOnce(t *testing.T) {
	f := newFixture(t, status(http.StatusBadRequest))
	id := f.notify(t)
	d := f.dispatcher(t, f.store, dispatch.DefaultBackoff, 0.5)
	dispatchOnce(t, d)
	del := f.delivery(t, id)
	if del.State != kycd.DeliveryDead || len(del.Attempts) != 1 || del.Attempts[0].Outcome != kycd.AttemptRejected || del.Attempts[0].StatusCode != 400 {
		t.Fatalf("delivery = %+v, want dead after one rejected attempt", del)
	}
	f.clock.Set(f.clock.Now().Add(48 * time.Hour))
	if n := dispatchOnce(t, d); n != 0 || f.recv.count() != 1 {
		t.Fatalf("a dead delivery was sent again (%d claimed, %d requests)", n, f.recv.count())
	}
}

func TestTooManyRequestsWaitsRetryAfter(t *testing.T) {
	f := newFixture(t, status(http.StatusTooManyRequests, "Retry-After", "2"))
	id := f.notify(t)
	// Jitter 0: without Retry-After the retry would be due at once.
	d := f.dispatcher(t, f.store, dispatch.DefaultBackoff, 0)
	start := f.clock.Now()
	dispatchOnce(t, d)
	del := f.delivery(t, id)
	if del.State != kycd.DeliveryPending || del.NextAttemptAt.Sub(start) < 2*time.Second {
		t.Fatalf("delivery = %+v, want pending at least 2s after %s", del, start)
	}
	f.clock.Set(start.Add(1999 * time.Millisecond))
	if n := dispatchOnce(t, d); n != 0 {
		t.Fatal("retried before Retry-After elapsed")
	}
	f.clock.Set(start.Add(2 * time.Second))
	dispatchOnce(t, d)
	if del := f.delivery(t, id); del.State != kycd.DeliveryDelivered || len(del.Attempts) != 2 {
		t.Fatalf("delivery = %+v, want delivered on the second attempt", del)
	}
}

func TestDeadAfterMaxAttempts(t *testing.T) {
	f := newFixture(t, times(10, status(http.StatusServiceUnavailable))...)
	id := f.notify(t)
	d := f.dispatcher(t, f.store, dispatch.Backoff{Base: time.Second, Cap: time.Minute, MaxAttempts: 3, MaxAge: time.Hour}, 0.5)
	for range 3 {
		dispatchOnce(t, d)
		if del := f.delivery(t, id); !del.NextAttemptAt.IsZero() {
			f.clock.Set(del.NextAttemptAt)
		}
	}
	del := f.delivery(t, id)
	if del.State != kycd.DeliveryDead || len(del.Attempts) != 3 || del.LastError == "" {
		t.Fatalf("delivery = %+v, want dead after 3 attempts with the last error", del)
	}
}

func TestDeadDeliveryRetriedViaAPIIsDelivered(t *testing.T) {
	f := newFixture(t, status(http.StatusNotFound))
	id := f.notify(t)
	d := f.dispatcher(t, f.store, dispatch.DefaultBackoff, 0.5)
	dispatchOnce(t, d)
	if del := f.delivery(t, id); del.State != kycd.DeliveryDead {
		t.Fatalf("state = %s, want dead", del.State)
	}
	verifier, _ := ralio.NewVerifier("x")
	var woken atomic.Bool
	api := server.New(server.Options{
		Logger: slog.New(slog.DiscardHandler), Store: f.store, Verifier: verifier,
		Ingester: newIngester(t, f.store), AdminToken: "token", Now: f.clock.Now,
		WakeDispatcher: func() { woken.Store(true) },
	})
	// The dead list shows it; the retry puts it back in line.
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/api/v1/deliveries?state=dead", nil)
	req.Header.Set("Authorization", "Bearer token")
	api.ServeHTTP(rec, req)
	if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(id)) {
		t.Fatalf("GET dead deliveries = %d %s, want it listed", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/deliveries/"+id+"/retry", nil)
	req.Header.Set("Authorization", "Bearer token")
	api.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted || !woken.Load() {
		t.Fatalf("POST retry = %d %s (woken %v), want 202 and the dispatcher woken", rec.Code, rec.Body, woken.Load())
	}
	dispatchOnce(t, d)
	del := f.delivery(t, id)
	if del.State != kycd.DeliveryDelivered || len(del.Attempts) != 2 {
		t.Fatalf("delivery = %+v, want delivered on the attempt after the retry", del)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/deliveries/"+uuid.NewString()+"/retry", nil)
	req.Header.Set("Authorization", "Bearer token")
	api.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("retry of an unknown delivery = %d, want 404", rec.Code)
	}
}

// blockingSink stands in for a send that never returns because the process
// died during it.
type blockingSink struct {
	started chan struct{}
	release chan struct{}
}

func (s *blockingSink) Send(context.Context, kycd.Message) error {
	close(s.started)
	<-s.release
	return nil
}

func TestCrashedDispatchersLeaseExpiresAndAnotherDelivers(t *testing.T) {
	f := newFixture(t)
	id := f.notify(t)
	crashed := sqlitetest.OpenPath(t, f.path) // the dead process's own connection
	blocked := &blockingSink{started: make(chan struct{}), release: make(chan struct{})}
	d1, err := dispatch.New(dispatch.Options{
		Store: crashed, Sinks: map[string]kycd.Sink{f.sink: blocked}, Now: f.clock.Now,
		Timeout: 5 * time.Second, Lease: 30 * time.Second, Owner: "replica-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Its store closes under it: the error is the crash's, expected.
		_, _ = d1.DispatchOnce(context.Background())
	}()
	<-blocked.started
	// The process dies mid-send: its connection is gone, its lease held.
	crashed.Close()
	defer func() { close(blocked.release); <-done }()

	d2 := f.dispatcher(t, f.store, dispatch.DefaultBackoff, 0.5)
	f.clock.Set(f.clock.Now().Add(29 * time.Second))
	if n := dispatchOnce(t, d2); n != 0 {
		t.Fatal("a second dispatcher took a delivery whose lease was still held")
	}
	f.clock.Set(f.clock.Now().Add(2 * time.Second))
	if n := dispatchOnce(t, d2); n != 1 {
		t.Fatalf("after the lease expired the second dispatcher claimed %d, want 1", n)
	}
	del := f.delivery(t, id)
	if del.State != kycd.DeliveryDelivered || f.recv.count() != 1 {
		t.Fatalf("delivery = %+v with %d requests, want delivered by the second dispatcher", del, f.recv.count())
	}
}

// countingSink counts sends per notification, with a little latency so
// claims overlap.
type countingSink struct {
	mu    sync.Mutex
	sends map[string]int
}

func (s *countingSink) Send(_ context.Context, m kycd.Message) error {
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends[m.ID]++
	return nil
}

func TestConcurrentDispatchersNeverShareADelivery(t *testing.T) {
	f := newFixture(t)
	const deliveries = 60
	for range deliveries {
		f.notify(t)
	}
	sink := &countingSink{sends: map[string]int{}}
	var wg sync.WaitGroup
	for i := range 3 {
		store := sqlitetest.OpenPath(t, f.path)
		d, err := dispatch.New(dispatch.Options{
			Store: store, Sinks: map[string]kycd.Sink{f.sink: sink}, Now: f.clock.Now,
			Concurrency: 7, Owner: "replica-" + strconv.Itoa(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for {
				n, err := d.DispatchOnce(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(sink.sends) != deliveries {
		t.Fatalf("%d notifications sent, want %d", len(sink.sends), deliveries)
	}
	for id, n := range sink.sends {
		if n != 1 {
			t.Errorf("notification %s sent %d times, want once", id, n)
		}
	}
}

// A 410 Gone says the endpoint itself is gone: the sink is paused (every
// replica stops claiming its deliveries), the delivery waits pending
// instead of dying, and an operator's resume sends it in a new round.
func TestGonePausesTheSinkUntilResumed(t *testing.T) {
	f := newFixture(t, status(http.StatusGone))
	first, second := f.notify(t), f.notify(t)
	d := f.dispatcher(t, f.store, dispatch.Backoff{Base: time.Second, Cap: time.Minute, MaxAttempts: 1, MaxAge: time.Hour}, 0.5)
	// One claim takes both; the first answer is 410, the second 204.
	dispatchOnce(t, d)
	ctx := context.Background()
	sinks, err := (&app.Service{Store: f.store}).ListSinks(ctx)
	if err != nil || len(sinks) != 1 || sinks[0].PausedAt.IsZero() || !strings.Contains(sinks[0].PauseReason, "410") {
		t.Fatalf("sinks = %+v, %v; want the sink paused, saying 410", sinks, err)
	}
	var gone *kycd.Delivery
	for _, id := range []string{first, second} {
		if del := f.delivery(t, id); del.State != kycd.DeliveryDelivered {
			gone = del
		}
	}
	if gone == nil || gone.State != kycd.DeliveryPending || !gone.SinkPaused || gone.Attempts[0].StatusCode != 410 {
		t.Fatalf("delivery answered 410 = %+v, want pending (not dead, although max attempts is 1), flagged sink paused", gone)
	}
	f.clock.Set(f.clock.Now().Add(time.Hour))
	if n := dispatchOnce(t, d); n != 0 || f.recv.count() != 2 {
		t.Fatalf("a paused sink's delivery was claimed (%d claimed, %d requests)", n, f.recv.count())
	}
	n, err := (&app.Service{Store: f.store, Now: f.clock.Now}).ResumeSink(ctx, app.Actor{Name: "test"}, f.sink)
	if err != nil || n != 1 {
		t.Fatalf("ResumeSink = %d, %v; want its 1 pending delivery due", n, err)
	}
	dispatchOnce(t, d)
	if del := f.delivery(t, gone.ID); del.State != kycd.DeliveryDelivered || len(del.Attempts) != 2 || del.SinkPaused {
		t.Fatalf("after the resume = %+v, want delivered on its second attempt", del)
	}
	if sinks, _ := (&app.Service{Store: f.store}).ListSinks(ctx); !sinks[0].PausedAt.IsZero() || sinks[0].ResumedBy != "test" {
		t.Fatalf("sink after the resume = %+v, want not paused, resumed by test", sinks[0])
	}
}

// No error recorded of a failed attempt names the sink URL's password or
// query token, though Go's HTTP client writes the URL into its errors.
func TestRecordedErrorsNameNoCredentials(t *testing.T) {
	f := newFixture(t)
	f.recv.Close() // nothing listens: a network error naming the URL
	id := f.notify(t)
	u := strings.Replace(f.recv.URL, "http://", "http://merchant:Pa55w0rdXYZ@", 1) + "/hook?token=T0k3nQRS"
	sink, err := httpsink.New(u, []string{sinkSecret}, nil, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Options{Store: f.store, Sinks: map[string]kycd.Sink{f.sink: sink}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	dispatchOnce(t, d)
	del := f.delivery(t, id)
	if len(del.Attempts) != 1 || del.LastError == "" {
		t.Fatalf("delivery = %+v, want one failed attempt", del)
	}
	for _, msg := range []string{del.LastError, del.Attempts[0].Error} {
		if strings.Contains(msg, "Pa55w0rdXYZ") || strings.Contains(msg, "T0k3nQRS") {
			t.Errorf("recorded error %q names a credential", msg)
		}
	}
}

func newIngester(t *testing.T, s kycd.Store) *ingest.Ingester {
	t.Helper()
	in, err := ingest.New(context.Background(), s, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return in
}

// A failed attempt that will be retried is a warning: on-call filters
// logs by level, and a sink that keeps failing must show there before its
// deliveries die.
func TestRetriedAttemptLoggedAtWarn(t *testing.T) {
	f := newFixture(t, status(http.StatusServiceUnavailable))
	f.notify(t)
	var logs bytes.Buffer
	sink, err := httpsink.New(f.recv.URL, []string{sinkSecret}, nil, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Options{
		Store: f.store, Sinks: map[string]kycd.Sink{f.sink: sink}, Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	dispatchOnce(t, d)
	var rec struct{ Level, Msg, Outcome string }
	if err := json.Unmarshal(logs.Bytes(), &rec); err != nil || rec.Level != "WARN" || !strings.Contains(rec.Msg, "will retry") || rec.Outcome != kycd.AttemptFailed {
		t.Fatalf("log of a retried attempt = %s (%v), want one WARN line saying it will retry", logs.String(), err)
	}
}

// countingClaims counts the claims a dispatcher makes and the most each
// asked for.
type countingClaims struct {
	kycd.Store
	mu     sync.Mutex
	limits []int
}

func (s *countingClaims) ClaimDeliveries(ctx context.Context, owner string, sinks []string, now time.Time, lease time.Duration, limit int) ([]*kycd.Delivery, error) {
	s.mu.Lock()
	s.limits = append(s.limits, limit)
	s.mu.Unlock()
	return s.Store.ClaimDeliveries(ctx, owner, sinks, now, lease, limit)
}

// A sink that answers fast gets larger claims, so that a backlog costs a
// few claim and record transactions rather than one per Concurrency
// deliveries; every delivery is still sent once.
func TestFastSinkGetsLargerClaims(t *testing.T) {
	f := newFixture(t)
	const deliveries = 200
	for range deliveries {
		f.notify(t)
	}
	sink := &countingSink{sends: map[string]int{}}
	store := &countingClaims{Store: f.store}
	d, err := dispatch.New(dispatch.Options{Store: store, Sinks: map[string]kycd.Sink{f.sink: sink}, Now: f.clock.Now, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sink.mu.Lock()
		n := len(sink.sends)
		sink.mu.Unlock()
		if n == deliveries || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if len(sink.sends) != deliveries {
		t.Fatalf("%d notifications sent, want %d", len(sink.sends), deliveries)
	}
	for id, n := range sink.sends {
		if n != 1 {
			t.Errorf("notification %s sent %d times, want once", id, n)
		}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	// 8, 16, 32, 64, 128 cover 200 in five claims of a fast sink; one
	// claim each of 8 would be 25.
	if len(store.limits) < 2 || store.limits[0] != 8 || store.limits[1] != 16 || slices.Max(store.limits) < 64 {
		t.Errorf("claims asked for %v, want 8, then doubling while the sink answers fast", store.limits)
	}
}

// An attempt keeps the receiver's status and the start of its answer,
// credentials and the notification's personal data struck from it, and
// text any store keeps.
func TestAttemptKeepsTheAnswer(t *testing.T) {
	// The fixture's reason message ("expired") is personal data.
	answer := `{"error":"retry at https://ops:S3cr3tPW@hooks.example/retry?key=K3yVALUE","got":{"message":"expired"}}` + "\x00" + strings.Repeat("y", 2000)
	f := newFixture(t, func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, answer)
	})
	id := f.notify(t)
	dispatchOnce(t, f.dispatcher(t, f.store, dispatch.DefaultBackoff, 0.5))
	del := f.delivery(t, id)
	if len(del.Attempts) != 1 || del.Attempts[0].StatusCode != 422 {
		t.Fatalf("delivery = %+v, want one attempt answered 422", del)
	}
	body := del.Attempts[0].ResponseBody
	if !strings.HasPrefix(body, `{"error":"retry at https://`) || strings.Contains(body, "S3cr3tPW") || strings.Contains(body, "K3yVALUE") ||
		strings.Contains(body, "expired") || !strings.Contains(body, `"message":"[personal data]"`) ||
		strings.Contains(body, "\x00") || len(body) > kycd.ResponseBodyLimit+16 || !strings.HasSuffix(body, "yyyy") {
		t.Fatalf("recorded answer = %q; want its first KiB, without the credentials or NUL", body)
	}
}
