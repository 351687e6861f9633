package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/ralio"
)

const secret = "test-secret"

// dyingStore closes the real store in the middle of an ingest, as a crash of
// the database would.
type dyingStore struct{ *sqlite.Store }

func (s dyingStore) AppendLog(ctx context.Context, entries []*kycd.LogEntry) error {
	s.Close()
	return s.Store.AppendLog(ctx, entries)
}

func newServer(t testing.TB, wrap func(*sqlite.Store) kycd.Store) (http.Handler, *sqlite.Store) {
	t.Helper()
	return newDrainableServer(t, wrap, nil)
}

func newDrainableServer(t testing.TB, wrap func(*sqlite.Store) kycd.Store, draining *atomic.Bool) (http.Handler, *sqlite.Store) {
	t.Helper()
	return newServerWith(t, wrap, server.Options{Draining: draining})
}

// newServerWith is a server on a new SQLite store wrapped by wrap, with the
// test's secret and token and the options of o that are set.
func newServerWith(t testing.TB, wrap func(*sqlite.Store) kycd.Store, o server.Options) (http.Handler, *sqlite.Store) {
	t.Helper()
	s := sqlitetest.Open(t)
	v, err := ralio.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	store := wrap(s)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return server.New(server.Options{
		Logger:         o.Logger,
		Store:          store,
		Verifier:       v,
		Ingester:       startIngester(t, store, ingest.Options{Sinks: kycd.Routes("log"), MaxBacklog: 1 << 30}),
		AdminToken:     "token",
		Draining:       o.Draining,
		MaxInFlight:    o.MaxInFlight,
		MaxBody:        o.MaxBody,
		BodyBudget:     o.BodyBudget,
		PeerBodyBudget: o.PeerBodyBudget,
		BodyTimeout:    o.BodyTimeout,
		TrustedProxies: o.TrustedProxies,
	}), s
}

// startIngester starts the write path on store, its projector running
// until the test ends.
func startIngester(t testing.TB, store kycd.Store, o ingest.Options) *ingest.Ingester {
	t.Helper()
	in, err := ingest.New(context.Background(), store, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); in.Run(ctx) }()
	t.Cleanup(func() { in.Close(); cancel(); <-done })
	return in
}

func post(t testing.TB, h http.Handler, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/ralio", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, secret))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func seed(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../ralio/testdata/a-kyc_session_failed.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertRetryable(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 so that Ralio retries; body %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
}

func TestStoreClosedAnswers503(t *testing.T) {
	h, s := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	s.Close()
	assertRetryable(t, post(t, h, seed(t)))
}

func TestStoreDyingMidRequestAnswers503(t *testing.T) {
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return dyingStore{s} })
	assertRetryable(t, post(t, h, seed(t)))
}

// An invalid body whose quarantine cannot be written must not be answered
// 400: Ralio would drop it and no copy would be left.
func TestInvalidBodyWithStoreDownAnswers503(t *testing.T) {
	h, s := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	s.Close()
	assertRetryable(t, post(t, h, []byte(`{"id":"not-a-uuid"}`)))
}

func TestReadyzFollowsTheStore(t *testing.T) {
	h, s := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	get := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("readyz = %d, want 200", code)
	}
	s.Close()
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the store closed = %d, want 503", code)
	}
}

func TestAPIFindsUpperCaseIDs(t *testing.T) {
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("seed: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/api/v1/sessions/550E8400-E29B-41D4-A716-446655440002", "/api/v1/events/550E8400-E29B-41D4-A716-446655440000", "/api/v1/subjects/550E8400-E29B-41D4-A716-446655440001"} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer token")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, rec.Code)
		}
	}
}

func TestDrainingAnswers503(t *testing.T) {
	var draining atomic.Bool
	h, _ := newDrainableServer(t, func(s *sqlite.Store) kycd.Store { return s }, &draining)
	draining.Store(true)
	rec := post(t, h, seed(t))
	assertRetryable(t, rec)
	// A keep-alive client must not send its next request on a connection
	// that is about to close.
	if got := rec.Header().Get("Connection"); got != "close" {
		t.Fatalf("Connection = %q while draining, want close", got)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Connection") != "close" {
		t.Fatalf("readyz while draining = %d (Connection %q), want 503 with Connection: close", rec.Code, rec.Header().Get("Connection"))
	}
	draining.Store(false)
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("after draining: %d, want 200", rec.Code)
	}
}

// stallingStore holds every commit to the event log until released.
type stallingStore struct {
	*sqlite.Store
	entered chan struct{}
	release chan struct{}
}

func (s stallingStore) AppendLog(ctx context.Context, entries []*kycd.LogEntry) error {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.AppendLog(ctx, entries)
}

func TestOverloadAnswers503AtOnce(t *testing.T) {
	stall := stallingStore{entered: make(chan struct{}), release: make(chan struct{})}
	h, _ := newServerWith(t, func(s *sqlite.Store) kycd.Store { stall.Store = s; return stall }, server.Options{MaxInFlight: 1})
	first := make(chan int)
	body := seed(t) // read here: a t.Fatal inside the goroutine would leave the test waiting
	go func() { first <- post(t, h, body).Code }()
	<-stall.entered
	assertRetryable(t, post(t, h, seed(t)))
	close(stall.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("the delivery in flight got %d, want 200", code)
	}
}

func TestListsAndStatsOverHTTP(t *testing.T) {
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("seed: %d", rec.Code)
	}
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer token")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var sessions kycd.SessionPage
	if rec := get("/api/v1/sessions?status=REJECTED&limit=10"); rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &sessions) != nil ||
		len(sessions.Sessions) != 1 || sessions.Sessions[0].ID != "550e8400-e29b-41d4-a716-446655440002" {
		t.Fatalf("GET sessions = %d %s", rec.Code, rec.Body)
	}
	var events kycd.EventPage
	if rec := get("/api/v1/events?type=kyc_session_failed"); rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &events) != nil || len(events.Events) != 1 {
		t.Fatalf("GET events = %d %s", rec.Code, rec.Body)
	}
	var st kycd.Stats
	// The seed's timestamp is in 2025: a window of ten years reaches it.
	if rec := get("/api/v1/stats?window=87600h"); rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &st) != nil ||
		st.SessionsBy[kycd.StatusRejected] != 1 || len(st.TopFailureCodes) != 2 {
		t.Fatalf("GET stats = %d %s", rec.Code, rec.Body)
	}
	for _, bad := range []string{"/api/v1/sessions?status=GOLD", "/api/v1/sessions?limit=x", "/api/v1/sessions?cursor=zzz", "/api/v1/stats?window=yesterday", "/api/v1/deliveries?limit=x", "/api/v1/quarantine?limit=0"} {
		if rec := get(bad); rec.Code != http.StatusBadRequest || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s = %d, want a 400 problem", bad, rec.Code)
		}
	}
}

func plain(s *sqlite.Store) kycd.Store { return s }

// slowBody starts an unsigned delivery that declares declared bytes and
// sends first (with the header pairs given), then stalls until the test
// ends; the returned channel gives its status. It returns once the handler
// has read first.
func slowBody(t *testing.T, h http.Handler, declared int64, first []byte, header ...string) (<-chan int, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/ralio", pr)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	req.ContentLength = declared
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ralio.SignatureHeader, "sha256="+strings.Repeat("ab", 32))
	code := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code <- rec.Code
	}()
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF); <-code })
	if _, err := pw.Write(first); err != nil {
		t.Fatal(err)
	}
	return code, pw
}

// A body whose signature is not checked yet (it has not all arrived) must
// not take a place that a signed delivery needs.
func TestSlowUnsignedBodyHoldsNoCommitPlace(t *testing.T) {
	t.Parallel()
	h, _ := newServerWith(t, plain, server.Options{MaxInFlight: 1})
	slowBody(t, h, 100000, []byte("{"))
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("signed delivery beside a slow unsigned body = %d %s, want 200", rec.Code, rec.Body)
	}
}

// Bodies in memory are bounded by the bytes that really arrived, not by
// what clients declare: bodies that declare much and send little leave room
// for Ralio; beyond the budget a delivery is answered 503 at once.
func TestBodyBudgetCountsBytesReceived(t *testing.T) {
	t.Parallel()
	const maxBody, budget = 64 << 10, 256 << 10
	// Every request here comes from one address: its share is the whole
	// budget (TestOnePeerHoldsAShareOfTheBodyBudget tests the share).
	h, _ := newServerWith(t, plain, server.Options{MaxBody: maxBody, BodyBudget: budget, PeerBodyBudget: budget})
	// Eight bodies declare 512 KiB together and hold 8 × 16 KiB.
	for range 8 {
		slowBody(t, h, maxBody, []byte("{"))
	}
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("signed delivery with 512 KiB declared and 128 KiB held = %d %s, want 200", rec.Code, rec.Body)
	}
	// Two bodies that arrive almost whole take the other 128 KiB.
	almost := bytes.Repeat([]byte(" "), maxBody-1)
	_, first := slowBody(t, h, maxBody, almost)
	slowBody(t, h, maxBody, almost)
	assertRetryable(t, post(t, h, seed(t)))
	first.CloseWithError(io.ErrUnexpectedEOF)
	eventuallyStatus(t, h, seed(t), http.StatusOK)
}

// eventuallyStatus posts body until it is answered want, for at most 5 s.
func eventuallyStatus(t *testing.T, h http.Handler, body []byte, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec := post(t, h, body)
		if rec.Code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("answer %d %s, want %d", rec.Code, rec.Body, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBodyOverTheLimitOfUnknownLengthAnswers413(t *testing.T) {
	t.Parallel()
	const maxBody = 4 << 10
	h, _ := newServerWith(t, plain, server.Options{MaxBody: maxBody})
	body := bytes.Repeat([]byte(" "), maxBody+1)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/ralio", io.MultiReader(bytes.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, secret))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body of %d bytes over a limit of %d = %d, want 413", len(body), maxBody, rec.Code)
	}
	// Exactly at the limit is accepted as far as size goes (then refused
	// as JSON that is not an event).
	body = body[:maxBody]
	req = httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/ralio", io.MultiReader(bytes.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, secret))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("chunked body of exactly the limit = %d %s, want 400", rec.Code, rec.Body)
	}
}

// A body of unknown length one byte over the limit is refused also when
// its last bytes come with the end of the body in one Read, as a chunked
// body's last chunk may (found by the fault suite: such a body was read
// whole and answered 400 or 200).
func TestBodyOneByteOverTheLimitEndingInItsLastReadAnswers413(t *testing.T) {
	t.Parallel()
	const maxBody = 4 << 10
	h, _ := newServerWith(t, plain, server.Options{MaxBody: maxBody})
	body := bytes.Repeat([]byte(" "), maxBody+1)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/ralio", iotest.DataErrReader(bytes.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, secret))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("body of unknown length of %d bytes, limit %d, its last bytes read with EOF = %d %s, want 413",
			len(body), maxBody, rec.Code, rec.Body)
	}
}

// Over a real connection, a body that trickles in is cut at the body
// deadline, however steadily its bytes come.
func TestTricklingBodyIsCutAtTheDeadline(t *testing.T) {
	t.Parallel()
	h, _ := newServerWith(t, plain, server.Options{BodyTimeout: 300 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhooks/ralio HTTP/1.1\r\nHost: kycd\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- nil
			return
		}
		resp.Body.Close()
		answered <- resp
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(5 * time.Second)
	for {
		select {
		case <-giveUp:
			t.Fatal("no answer after 5s of a byte every 50ms")
		case resp := <-answered:
			took := time.Since(start)
			if resp == nil {
				t.Fatalf("connection closed after %v without an answer", took)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !resp.Close {
				t.Fatalf("trickling body answered %d (Retry-After %q, close %v), want 503 with Retry-After and Connection: close",
					resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close)
			}
			if took > 2*time.Second {
				t.Fatalf("answered after %v, want about the 300ms deadline", took)
			}
			return
		case <-tick.C:
			conn.Write([]byte(" "))
		}
	}
}

// fullDiskStore refuses every write while full is set, as a store on a
// full disk does, and takes them again once it is cleared.
type fullDiskStore struct {
	*sqlite.Store
	full *atomic.Bool
}

func (s fullDiskStore) AppendLog(ctx context.Context, entries []*kycd.LogEntry) error {
	if s.full.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "sqlite: append: database or disk is full")
	}
	return s.Store.AppendLog(ctx, entries)
}

func (s fullDiskStore) ProbeWrite(ctx context.Context) error {
	if s.full.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "sqlite: write probe: database or disk is full")
	}
	return s.Store.ProbeWrite(ctx)
}

func readyz(h http.Handler) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/readyz", nil))
	return rec.Code
}

// eventuallyReadyz polls /readyz until it answers want, for at most 5 s.
func eventuallyReadyz(t *testing.T, h http.Handler, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := readyz(h)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz = %d, want %d", got, want)
		}
	}
}

// With the store reachable but refusing writes, every webhook gets 503:
// /readyz must say so, so that a load balancer sends Ralio elsewhere, and
// must come back by itself, with no webhook to prove it, once writes do.
func TestReadyzFailsWhileTheLogCannotBeWritten(t *testing.T) {
	t.Parallel()
	full := new(atomic.Bool)
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return fullDiskStore{s, full} })
	if code := readyz(h); code != http.StatusOK {
		t.Fatalf("readyz = %d, want 200", code)
	}
	full.Store(true)
	assertRetryable(t, post(t, h, seed(t)))
	if code := readyz(h); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz after a failed commit = %d, want 503", code)
	}
	full.Store(false)
	eventuallyReadyz(t, h, http.StatusOK)
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("webhook once writes succeed = %d %s, want 200", rec.Code, rec.Body)
	}
}

// failOnce fails the first commit to the log and takes the next; it
// cannot probe writes (the kycd.Store interface hides ProbeWrite).
type failOnce struct {
	kycd.Store
	failed *atomic.Bool
}

func (s failOnce) AppendLog(ctx context.Context, entries []*kycd.LogEntry) error {
	if !s.failed.Swap(true) {
		return kycd.Errorf(kycd.EUNAVAILABLE, "sqlite: append: disk I/O error")
	}
	return s.Store.AppendLog(ctx, entries)
}

// Without a write probe, readiness follows the latest commit.
func TestReadyzFollowsTheLastCommit(t *testing.T) {
	t.Parallel()
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return failOnce{s, new(atomic.Bool)} })
	assertRetryable(t, post(t, h, seed(t)))
	if code := readyz(h); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz after a failed commit = %d, want 503", code)
	}
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("retry = %d %s, want 200", rec.Code, rec.Body)
	}
	if code := readyz(h); code != http.StatusOK {
		t.Fatalf("readyz after a commit succeeded = %d, want 200", code)
	}
}

// A store that cannot take writes while idle is found out by the probe,
// before any webhook fails.
func TestReadyzProbesAnIdleStore(t *testing.T) {
	t.Parallel()
	full := new(atomic.Bool)
	full.Store(true)
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return fullDiskStore{s, full} })
	if code := readyz(h); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a store that cannot write = %d, want 503", code)
	}
	full.Store(false)
	eventuallyReadyz(t, h, http.StatusOK)
}

// get reads path from the API with the admin token.
func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer token")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Bodies are kept as received, invalid UTF-8 and all, but the API's JSON is
// UTF-8: each invalid byte is shown as U+FFFD, in events and in the
// quarantine alike.
func TestInvalidUTF8InBodiesIsNeverAnsweredRaw(t *testing.T) {
	t.Parallel()
	h, s := newServer(t, plain)
	event := bytes.Replace(seed(t), []byte("The provided document has expired"), []byte("The provided document has \xffexpired\xc3"), 1)
	if rec := post(t, h, event); rec.Code != http.StatusOK {
		t.Fatalf("event with invalid UTF-8 in a message = %d %s, want 200", rec.Code, rec.Body)
	}
	refused := []byte("{\"id\":\"\xfe\xff\"}")
	rec := post(t, h, refused)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("refused body = %d %s, want 400", rec.Code, rec.Body)
	}
	items, err := s.Quarantine(context.Background(), false, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("quarantine = %v, %v; want the refused body", items, err)
	}
	for _, tc := range []struct {
		path, want string
		body       func(*testing.T, []byte) string
	}{
		{"/api/v1/events/550e8400-e29b-41d4-a716-446655440000", "The provided document has \ufffdexpired\ufffd",
			func(t *testing.T, b []byte) string {
				var ev struct{ Body json.RawMessage }
				if err := json.Unmarshal(b, &ev); err != nil {
					t.Fatal(err)
				}
				return string(ev.Body)
			}},
		{"/api/v1/quarantine/" + items[0].ID, "{\"id\":\"\ufffd\ufffd\"}",
			func(t *testing.T, b []byte) string {
				var q struct{ Body string }
				if err := json.Unmarshal(b, &q); err != nil {
					t.Fatal(err)
				}
				return q.Body
			}},
	} {
		rec := get(t, h, tc.path)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", tc.path, rec.Code, rec.Body)
		}
		if !utf8.Valid(rec.Body.Bytes()) || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("GET %s answered JSON that is not valid UTF-8: %q", tc.path, rec.Body)
		}
		if got := tc.body(t, rec.Body.Bytes()); !strings.Contains(got, tc.want) {
			t.Errorf("GET %s: body %q, want it to contain %q", tc.path, got, tc.want)
		}
	}
	// What is kept is what was received.
	rec2, err := s.Event(context.Background(), "550e8400-e29b-41d4-a716-446655440000")
	if err != nil || !bytes.Equal(rec2.Body, event) {
		t.Fatalf("stored body changed: %q, %v", rec2.Body, err)
	}
}

// lockedBuffer is a log destination that the server's goroutines and the
// test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A refused body may have no event id or type: its log line leaves them
// out instead of logging them empty.
func TestRefusedBodyLogLineHasNoEmptyFields(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	h, _ := newServerWith(t, plain, server.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if rec := post(t, h, []byte(`{"event":"kyc_session_failed"}`)); rec.Code != http.StatusBadRequest {
		t.Fatalf("body without an id = %d, want 400", rec.Code)
	}
	line := grepLine(logs.String(), "event refused")
	if line == "" {
		t.Fatalf("no log line of the refusal in:\n%s", logs.String())
	}
	if strings.Contains(line, `=""`) || strings.Contains(line, "event_id=") {
		t.Errorf("refusal logged with empty fields: %s", line)
	}
	if !strings.Contains(line, "quarantine_id=") {
		t.Errorf("refusal logged without its quarantine id: %s", line)
	}
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("seed: %d", rec.Code)
	}
	if line := grepLine(logs.String(), "event received"); !strings.Contains(line, "event_id=550e8400-e29b-41d4-a716-446655440000") {
		t.Errorf("an accepted event's line lacks its event_id: %s", line)
	}
}

// grepLine is the first line of text that contains substr.
func grepLine(text, substr string) string {
	for line := range strings.Lines(text) {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}
