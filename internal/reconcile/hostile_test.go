package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/reconcile"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// Users of hostileRalio, each answered one way (issue 15, "Why" 3).
const (
	hugeUser     = "a0000000-0000-4000-8000-000000000001" // a page of 5.5 M {} items
	endlessUser  = "a0000000-0000-4000-8000-000000000002" // a next that never ends
	throttleUser = "a0000000-0000-4000-8000-000000000003" // 429 with Retry-After: 300, always
	redirectUser = "a0000000-0000-4000-8000-000000000004" // a redirect to another host
	failUser     = "a0000000-0000-4000-8000-000000000005" // 502, always
	hangUser     = "a0000000-0000-4000-8000-000000000006" // no answer until the request is given up
	reasonsUser  = "a0000000-0000-4000-8000-000000000007" // a session whose check has 2 M refused reasons
	bigUser      = "a0000000-0000-4000-8000-000000000008" // an answer of 20 MiB
)

// hugePage is 5.5 M {} items in one page: 16.5 MB, within the 16 MiB
// read cap that did not bound what it was decoded into.
var hugePage = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"data":[`)
	b.WriteString(strings.Repeat("{},", 5_500_000))
	b.WriteString(`{}],"pagination":{"page":1,"pageSize":100,"numPages":1,"total":5500001,"next":null}}`)
	return b.Bytes()
}()

type hostileRalio struct {
	*httptest.Server
	other    *httptest.Server // the host redirectUser is sent to
	visited  atomic.Int32     // requests other got
	requests atomic.Int32
}

func newHostileRalio(t *testing.T) *hostileRalio {
	h := &hostileRalio{}
	h.other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.visited.Add(1)
		fmt.Fprint(w, `{"data":[],"pagination":{"page":1,"numPages":1,"total":0,"next":null}}`)
	}))
	t.Cleanup(h.other.Close)
	checks := func() []byte {
		var b bytes.Buffer
		b.WriteString(`{"checks":[{"id":"c1","type":"document-verification","state":"Refused","refused_reasons":[`)
		b.WriteString(strings.Repeat(`{},`, 2_000_000))
		b.WriteString(`{}]}]}`)
		return b.Bytes()
	}()
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/account/users/"), "/")
		switch parts[0] {
		case hugeUser:
			w.Write(hugePage)
		case endlessUser:
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			fmt.Fprintf(w, `{"data":[{"id":"s%d","state":"STARTED"}],"pagination":{"page":%d,"pageSize":100,"numPages":%d,"total":%d,"next":%d}}`,
				page, page, page+1, (page+1)*100, page+1)
		case throttleUser:
			w.Header().Set("Retry-After", "300")
			w.WriteHeader(http.StatusTooManyRequests)
		case redirectUser:
			http.Redirect(w, r, h.other.URL+r.URL.RequestURI(), http.StatusFound) //nolint:gosec // G710: the test sends the client to its second host on purpose
		case failUser:
			w.WriteHeader(http.StatusBadGateway)
		case hangUser:
			<-r.Context().Done()
		case reasonsUser:
			if len(parts) == 2 {
				fmt.Fprintf(w, `{"data":[{"id":%q,"state":"REJECTED","updated_at":%q}],"pagination":{"page":1,"numPages":1,"total":1,"next":null}}`, session, t2)
				return
			}
			switch parts[len(parts)-1] {
			case "state-history":
				fmt.Fprintf(w, `{"logs":[{"id":"l1","new_state":"REJECTED","created_at":%q}]}`, t2)
			case "checks":
				w.Write(checks)
			}
		case bigUser:
			w.Write([]byte(`{"data":[],"pagination":"`))
			w.Write(bytes.Repeat([]byte("a"), 20<<20))
			w.Write([]byte(`","numPages":1,"total":0,"next":null}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// newHostileRun is a reconciler on an empty store against h, whose
// retries wait only as long as sleep says (recording each wait).
func newHostileRun(t *testing.T, h *hostileRalio) (*reconcile.Reconciler, *[]time.Duration) {
	t.Helper()
	store := sqlitetest.Open(t)
	in, err := ingest.New(context.Background(), store, ingest.Options{Sinks: kycd.Routes("log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	var slept []time.Duration
	return &reconcile.Reconciler{Store: store, Receiver: in, Logger: discard(),
		Client: &reconcile.Client{BaseURL: h.URL, APIKey: key, Attempts: 3, RequestTimeout: 10 * time.Second,
			Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}}, &slept
}

// errorOf is the run's error about uid, or "".
func errorOf(run *kycd.Reconciliation, uid string) string {
	for _, e := range run.Errors {
		if strings.Contains(e, uid) {
			return e
		}
	}
	return ""
}

// Every hostile answer is one user's error; the run goes on past it, ends
// failed, follows no redirect to another host and waits at most a minute
// for a Retry-After.
func TestReconcileSurvivesHostileAnswers(t *testing.T) {
	h := newHostileRalio(t)
	r, slept := newHostileRun(t, h)
	users := []string{hugeUser, endlessUser, throttleUser, redirectUser, failUser, reasonsUser, bigUser}
	var progress []int
	r.Progress = func(_ *kycd.Reconciliation, done, total int) {
		if total != len(users) {
			t.Errorf("progress total %d, want %d", total, len(users))
		}
		if done > 0 {
			progress = append(progress, done)
		}
	}
	run, err := r.Run(context.Background(), users)
	if err != nil {
		t.Fatalf("run stopped: %v", err)
	}
	if run.State != kycd.ReconcileFailed || run.Users != len(users) || len(progress) != len(users) {
		t.Fatalf("run = %+v (progress %v), want every user checked, the run failed", run, progress)
	}
	want := map[string]string{
		hugeUser:     `"data" holds more than 1000 items`,
		endlessUser:  "pagination goes on (next 4) past the 2 pages its first page announced (numPages 2, total 200)",
		throttleUser: "status 429",
		redirectUser: "redirected to http://" + strings.TrimPrefix(h.other.URL, "http://") + ", another host",
		failUser:     "status 502",
		reasonsUser:  `"checks" holds more than 10000 array elements`,
		bigUser:      "larger than 16 MiB",
	}
	for uid, msg := range want {
		if got := errorOf(run, uid); uid == reasonsUser {
			if !strings.Contains(strings.Join(run.Errors, "\n"), msg) {
				t.Errorf("errors %q, want one saying %q", run.Errors, msg)
			}
		} else if !strings.Contains(got, msg) {
			t.Errorf("error about user %s = %q, want it to say %q", uid, got, msg)
		}
	}
	if len(run.Errors) != len(users) {
		t.Errorf("errors = %q, want one per user", run.Errors)
	}
	if n := h.visited.Load(); n != 0 {
		t.Errorf("the other host got %d requests, want none", n)
	}
	for _, d := range *slept {
		if d > time.Minute {
			t.Errorf("waited %s before a retry, want at most 1m (Retry-After: 300 is capped)", d)
		}
	}
	if !slicesContains(*slept, time.Minute) {
		t.Errorf("waits %v, want Retry-After: 300 honoured as 1m", *slept)
	}
}

func slicesContains(ds []time.Duration, d time.Duration) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// A page of 5.5 M {} items (16.5 MB) is decoded in bounded memory: no
// more than a few MiB allocated in all, where decoding it whole took
// gigabytes.
func TestReconcileHugePageInBoundedMemory(t *testing.T) {
	h := newHostileRalio(t)
	r, _ := newHostileRun(t, h)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	run, err := r.Run(context.Background(), []string{hugeUser})
	runtime.ReadMemStats(&after)
	if err != nil || run.State != kycd.ReconcileFailed {
		t.Fatalf("run = %+v, %v", run, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a page of 5.5 M {} items: %.1f MiB allocated in all (TotalAlloc), heap in use %.1f MiB after", float64(alloc)/(1<<20), float64(after.HeapInuse)/(1<<20))
	if alloc > 8<<20 {
		t.Errorf("the run allocated %d bytes, want under 8 MiB", alloc)
	}
}

// A request that gets no answer is given up at its deadline, and retried.
func TestReconcileRequestDeadline(t *testing.T) {
	h := newHostileRalio(t)
	r, slept := newHostileRun(t, h)
	r.Client.RequestTimeout = 200 * time.Millisecond
	start := time.Now()
	run, err := r.Run(context.Background(), []string{hangUser})
	if err != nil || run.State != kycd.ReconcileFailed || !strings.Contains(errorOf(run, hangUser), "no complete answer within 200ms") || len(*slept) != 2 {
		t.Fatalf("run = %+v, %v after %d waits; want the hanging user failed after 3 tries", run, err, len(*slept))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the run took %s, want about 3 × 200ms", took)
	}
}

// A first page announcing more pages than kycd reads is refused at once.
func TestReconcileRefusesTooManyPages(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"data":[{"id":"s1","state":"STARTED"}],"pagination":{"page":1,"pageSize":100,"numPages":1000000,"total":100000000,"next":2}}`)
	}))
	defer srv.Close()
	c := &reconcile.Client{BaseURL: srv.URL, APIKey: key}
	_, err := c.Sessions(context.Background(), user)
	if err == nil || !strings.Contains(err.Error(), "announces 1000000 pages") {
		t.Fatalf("Sessions = %v, want the announced pages refused", err)
	}
}

// With a run deadline, a Retry-After that would outlast it is not waited:
// the run ends within its deadline, failed.
func TestReconcileRetryAfterCountsAgainstTheRunDeadline(t *testing.T) {
	h := newHostileRalio(t)
	r, _ := newHostileRun(t, h)
	r.Client.Sleep = nil // real waits
	r.Timeout = 2 * time.Second
	start := time.Now()
	run, err := r.Run(context.Background(), []string{throttleUser, failUser})
	took := time.Since(start)
	if err != nil || run.State != kycd.ReconcileFailed || run.Users != 2 {
		t.Fatalf("run = %+v, %v; want both users tried, failed", run, err)
	}
	if !strings.Contains(errorOf(run, throttleUser), "would pass the run's deadline") {
		t.Errorf("errors %q, want the throttled user's saying the wait would pass the deadline", run.Errors)
	}
	if took > 2*time.Second {
		t.Errorf("the run took %s, want it within its 2s deadline", took)
	}
}

// A user on whom runs stop (here: the run's deadline passes while its
// request hangs) does not hold reconciliation back for ever: the run after
// two that stopped on it skips it and goes on.
func TestReconcileResumesPastAUserThatStopsRuns(t *testing.T) {
	h := newHostileRalio(t)
	r, _ := newHostileRun(t, h)
	r.Client.RequestTimeout = 10 * time.Second
	r.Timeout = 300 * time.Millisecond
	users := []string{hangUser, "ffffffff-0000-4000-8000-000000000000"} // the second is unknown to h: a 404, no error
	for i := range 2 {
		run, err := r.Run(context.Background(), users)
		if err == nil || run.State != kycd.ReconcileInterrupted || run.Users != 0 || !strings.Contains(errorOf(run, hangUser), "the run's deadline (300ms) passed") {
			t.Fatalf("run %d = %+v, %v; want interrupted on the hanging user by the deadline", i+1, run, err)
		}
	}
	run, err := r.Run(context.Background(), users)
	if err != nil || run.State != kycd.ReconcileFailed || run.Users != 1 || !strings.Contains(errorOf(run, hangUser), "skipped: the last two runs stopped on it") {
		t.Fatalf("third run = %+v, %v; want the hanging user skipped, the other checked, failed", run, err)
	}
	// The next run starts over, and tries it again.
	if run, _ := r.Run(context.Background(), users); run.State != kycd.ReconcileInterrupted || errorOf(run, hangUser) == "" {
		t.Fatalf("fourth run = %+v, want it to try the hanging user again", run)
	}
}

// Every user failing fails the run; a refused API key stops it at once.
func TestReconcileEveryUserFailing(t *testing.T) {
	h := newHostileRalio(t)
	r, _ := newHostileRun(t, h)
	run, err := r.Run(context.Background(), []string{failUser, throttleUser})
	if err != nil || run.State != kycd.ReconcileFailed || len(run.Errors) != 2 {
		t.Fatalf("run = %+v, %v; want failed with both users' errors", run, err)
	}

	var requests atomic.Int32
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer refused.Close()
	r.Client.BaseURL = refused.URL
	run, err = r.Run(context.Background(), []string{failUser, throttleUser, user})
	if err != nil || run.State != kycd.ReconcileFailed || len(run.Errors) != 1 || !strings.Contains(run.Errors[0], "--ralio-api-key") || requests.Load() != 1 {
		t.Fatalf("run = %+v, %v after %d requests; want it failed at the first 401, naming --ralio-api-key", run, err, requests.Load())
	}
}

// A run keeps at most 100 errors, the last counting the others.
func TestReconcileKeepsAtMost100Errors(t *testing.T) {
	h := newHostileRalio(t)
	r, _ := newHostileRun(t, h)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer down.Close()
	r.Client.BaseURL, r.Client.Attempts = down.URL, 1
	users := make([]string, 250)
	for i := range users {
		users[i] = fmt.Sprintf("b0000000-0000-4000-8000-%012d", i)
	}
	run, err := r.Run(context.Background(), users)
	if err != nil || run.State != kycd.ReconcileFailed || run.Users != 250 || len(run.Errors) != 100 || run.Errors[99] != "151 more errors" {
		t.Fatalf("run = %d users, %d errors, last %q, %v", run.Users, len(run.Errors), run.Errors[len(run.Errors)-1], err)
	}
}

// Pages of more items than asked for still stop at 10,000 sessions a user.
func TestReconcileStopsAt10000Sessions(t *testing.T) {
	page := func(n int) string {
		items := strings.Repeat(`{"id":"s","state":"STARTED"},`, 999) + `{"id":"s","state":"STARTED"}`
		return fmt.Sprintf(`{"data":[%s],"pagination":{"page":%d,"pageSize":1000,"numPages":11,"total":11000,"next":%d}}`, items, n, n+1)
	}
	var pages atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, page(int(pages.Add(1))))
	}))
	defer srv.Close()
	c := &reconcile.Client{BaseURL: srv.URL, APIKey: key}
	_, err := c.Sessions(context.Background(), user)
	if err == nil || !strings.Contains(err.Error(), "more than 10000 sessions") || pages.Load() != 11 {
		t.Fatalf("Sessions = %v after %d pages, want it stopped at 10000 sessions on page 11", err, pages.Load())
	}
}

// A session id that is not a UUID (here with a terminal escape) is an
// error, quoted, and never reaches the log.
func TestReconcileRefusesASessionIDThatIsNotAUUID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"data":[{"id":"\u001b]0;pwned\u0007","state":"REJECTED"}],"pagination":{"page":1,"numPages":1,"total":1,"next":null}}`)
	}))
	defer srv.Close()
	r, _ := newHostileRun(t, newHostileRalio(t))
	r.Client.BaseURL = srv.URL
	run, err := r.Run(context.Background(), []string{user})
	if err != nil || run.State != kycd.ReconcileFailed || len(run.Errors) != 1 || !strings.Contains(run.Errors[0], `not a UUID: "\x1b]0;pwned\a"`) || strings.ContainsRune(run.Errors[0], 0x1b) {
		t.Fatalf("run = %+v, %v; want the id refused, quoted", run, err)
	}
}
