package main

// End-to-end tests: the real kycd, started through run on 127.0.0.1:0 with a
// SQLite database of its own, driven over HTTP and through the CLI as a
// merchant and Ralio would.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/ralio"
)

const (
	testSecret = "e2e-ralio-secret"
	testToken  = "e2e-admin-token"

	// Ids of ralio/testdata/a-kyc_session_failed.json (also kycd send's
	// default sample).
	failedEventID = "550e8400-e29b-41d4-a716-446655440000"
	failedSession = "550e8400-e29b-41d4-a716-446655440002"
	failedUser    = "550e8400-e29b-41d4-a716-446655440001"
)

// The failures that a-kyc_session_failed.json gives its session.
var failedFailures = []failure{
	{"document-verification", "EXPIRED_DOCUMENT", "The provided document has expired"},
	{"face-matching", "NO_MATCH", "Face does not match the document photo"},
}

// ---- Starting kycd ----

// syncBuffer is an io.Writer that run's goroutines and the test may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// kycdServer is a running `kycd serve`.
type kycdServer struct {
	URL    string // http://127.0.0.1:PORT, or https:// with --tls-cert
	Addr   string // 127.0.0.1:PORT
	DB     string // the SQLite file
	Secret string // Ralio webhook secret
	Token  string // admin token
	Stdout *syncBuffer
	Stderr *syncBuffer

	client *http.Client // its own, so that stop can close its idle connections
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	err    error         // run's result, set before done is closed
}

func noEnv(string) string { return "" }

var listeningLine = regexp.MustCompile(`kycd listening on (https?)://(\S+) \(webhook: POST /webhooks/ralio\)`)

// serve runs `kycd serve FLAGS…` until the test ends, and returns once it
// listens and answers /readyz. The test fails unless run returns nil when
// its context is cancelled.
func serve(t *testing.T, getenv func(string) string, flags ...string) *kycdServer {
	t.Helper()
	return serveTrusting(t, nil, getenv, flags...)
}

// serveTrusting is serve for a server whose HTTPS certificate roots
// signs (nil: the system's roots).
func serveTrusting(t *testing.T, roots *x509.CertPool, getenv func(string) string, flags ...string) *kycdServer {
	t.Helper()
	if getenv == nil {
		getenv = noEnv
	}
	// Tests stop servers by the dozen: no drain unless a test asks for one.
	env := getenv
	getenv = func(k string) string {
		if v := env(k); v != "" || k != "KYCD_SHUTDOWN_DRAIN" {
			return v
		}
		return "0s"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &kycdServer{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, cancel: cancel, done: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	if roots != nil {
		s.client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	go func() {
		defer close(s.done)
		s.err = run(ctx, append([]string{"serve"}, flags...), getenv, strings.NewReader(""), s.Stdout, s.Stderr)
	}()
	t.Cleanup(func() {
		if err := s.stop(t); err != nil {
			t.Errorf("kycd serve returned %q after its context was cancelled; want nil\nstderr:\n%s", err, s.Stderr)
		}
	})

	var scheme, addr string
	eventually(t, "kycd serve to print its listening line", func() bool {
		select {
		case <-s.done:
			t.Fatalf("kycd serve returned before listening: %v\nstdout:\n%s\nstderr:\n%s", s.err, s.Stdout, s.Stderr)
		default:
		}
		m := listeningLine.FindStringSubmatch(s.Stderr.String())
		if m != nil {
			scheme, addr = m[1], m[2]
		}
		return m != nil
	})
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listening line names %q: %v", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "127.0.0.1" // bound to every interface; reach it on loopback
	}
	s.Addr = net.JoinHostPort(host, port)
	s.URL = scheme + "://" + s.Addr
	eventually(t, "GET /readyz to answer 200", func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/readyz", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// startServer serves on a fresh database with a known secret and admin
// token, plus extra flags.
func startServer(t *testing.T, extra ...string) *kycdServer {
	t.Helper()
	db := filepath.Join(t.TempDir(), "kycd.db")
	flags := append([]string{"--addr", "127.0.0.1:0", "--database", "sqlite:" + db,
		"--ralio-secret", testSecret, "--admin-token", testToken}, extra...)
	s := serve(t, nil, flags...)
	s.DB, s.Secret, s.Token = db, testSecret, testToken
	return s
}

// generatedSecrets is what kycd serve on the SQLite database db wrote to
// its generated-secrets file, beside the database: where the secrets it
// generates go when stderr is not a terminal, as in these tests. "" when
// there is no such file.
func generatedSecrets(t *testing.T, db string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(db), generatedSecretsFile))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stop cancels run's context and returns what run returned.
func (s *kycdServer) stop(t *testing.T) error {
	t.Helper()
	// A connection the client opened but never used would hold up the
	// server's shutdown for 5 s (net/http counts it idle only then).
	s.client.CloseIdleConnections()
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(20 * time.Second):
		t.Fatalf("kycd serve still running 20s after its context was cancelled\nstderr:\n%s", s.Stderr)
		return nil
	}
}

// cli runs one kycd command to completion and returns what it printed.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	err := run(ctx, args, noEnv, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), err
}

// mustCLI is cli for commands that must succeed.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cli(t, args...)
	if err != nil {
		t.Fatalf("kycd %s: %v\noutput:\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// eventuallyWithin bounds every wait for something asynchronous. It is
// generous on purpose: CI shares two cores between these tests, the store
// tests and the fault suite, and a server starting (migrations take turns
// on one PostgreSQL) can take seconds; the condition waited for is
// unchanged.
const eventuallyWithin = 30 * time.Second

// eventually polls cond until it holds, failing the test after
// eventuallyWithin.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventuallyWithin)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openDB opens a kycd SQLite database the way kycd does, closed at the end
// of the test.
func openDB(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// readFile reads a payload, failing the test if it cannot.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// example is one of Ralio's examples in ralio/testdata.
func example(t *testing.T, name string) []byte {
	t.Helper()
	return readFile(t, filepath.Join("..", "..", "ralio", "testdata", name))
}

// ---- HTTP ----

// answer is an HTTP response as a client sees it.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, bytes.TrimSpace(a.body)) }

func newRequest(method, url string, body []byte, header http.Header) *http.Request {
	// Each call is bounded by the client's Timeout.
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
	if err != nil {
		panic(err) // a malformed URL: a bug in the test
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return req
}

// webhookRequest is Ralio's delivery of body, signed with secret.
func webhookRequest(baseURL, secret string, body []byte) *http.Request {
	return newRequest(http.MethodPost, baseURL+"/webhooks/ralio", body, http.Header{
		"Content-Type":        {"application/json"},
		ralio.SignatureHeader: {ralio.Sign(body, secret)},
	})
}

// do sends req to s; it is safe for concurrent use.
func (s *kycdServer) do(req *http.Request) (answer, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, err
}

func (s *kycdServer) mustDo(t *testing.T, req *http.Request) answer {
	t.Helper()
	a, err := s.do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return a
}

// post delivers body to the webhook as Ralio would.
func (s *kycdServer) post(t *testing.T, body []byte) answer {
	t.Helper()
	return s.mustDo(t, webhookRequest(s.URL, s.Secret, body))
}

// deliver posts body and requires that kycd took it.
func (s *kycdServer) deliver(t *testing.T, body []byte) {
	t.Helper()
	wantJSON(t, s.post(t, body), http.StatusOK, `{"received":true}`)
}

// api calls the read API with the admin token.
func (s *kycdServer) api(t *testing.T, method, path string) answer {
	t.Helper()
	return s.mustDo(t, newRequest(method, s.URL+path, nil, http.Header{"Authorization": {"Bearer " + s.Token}}))
}

// getJSON reads an API resource that must exist into v.
func (s *kycdServer) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	a := s.api(t, http.MethodGet, path)
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s = %s (Content-Type %q), want 200 application/json", path, a, a.header.Get("Content-Type"))
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, a.body)
	}
}

func (s *kycdServer) metrics(t *testing.T) string {
	t.Helper()
	a := s.mustDo(t, newRequest(http.MethodGet, s.URL+"/metrics", nil, nil))
	if a.status != http.StatusOK {
		t.Fatalf("GET /metrics = %s", a)
	}
	return string(a.body)
}

// wantMetric waits for /metrics to have line: the webhook counts a request
// just after answering it.
func (s *kycdServer) wantMetric(t *testing.T, line string) {
	t.Helper()
	var m string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m = s.metrics(t); slices.Contains(strings.Split(m, "\n"), line) {
			return
		}
	}
	t.Errorf("GET /metrics has no line %q; it has:\n%s", line, grepLines(m, "kycd_"))
}

func grepLines(text, substr string) string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ---- What the API answers, as DESIGN.md names its fields ----

type subjectRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type reason struct {
	Type     string `json:"type"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Category string `json:"category"`
}

type check struct {
	Type    string   `json:"type"`
	State   string   `json:"state"`
	Reasons []reason `json:"reasons"`
}

type failure struct {
	CheckType string `json:"checkType"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

type historyEntry struct {
	EventID    string    `json:"eventId"`
	Event      string    `json:"event"`
	Timestamp  time.Time `json:"timestamp"`
	ReceivedAt time.Time `json:"receivedAt"`
	Applied    bool      `json:"applied"`
}

type sessionView struct {
	SessionID string         `json:"sessionId"`
	Subject   subjectRef     `json:"subject"`
	Status    string         `json:"status"`
	StatusAt  time.Time      `json:"statusAt"`
	Checks    []check        `json:"checks"`
	Failures  []failure      `json:"failures"`
	History   []historyEntry `json:"history"`
	// SessionVersion is the count of applied events of the session.
	SessionVersion int64 `json:"sessionVersion"`
}

type subjectView struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Level    string `json:"level"`
	Sessions []struct {
		SessionID string `json:"sessionId"`
		Status    string `json:"status"`
	} `json:"sessions"`
}

type eventView struct {
	EventID string          `json:"eventId"`
	Type    string          `json:"type"`
	Outcome string          `json:"outcome"`
	Body    json.RawMessage `json:"body"`
}

type quarantineView struct {
	ID           string          `json:"id"`
	Reason       string          `json:"reason"`
	EventID      string          `json:"eventId"`
	Problem      json.RawMessage `json:"problem"`
	ReplayedAt   time.Time       `json:"replayedAt"`
	ReplayResult string          `json:"replayResult"`
	Body         *string         `json:"body"`
	OriginalBody *string         `json:"originalBody"`
}

func (s *kycdServer) session(t *testing.T, id string) sessionView {
	t.Helper()
	var v sessionView
	s.getJSON(t, "/api/v1/sessions/"+id, &v)
	return v
}

func (s *kycdServer) subject(t *testing.T, id string) subjectView {
	t.Helper()
	var v subjectView
	s.getJSON(t, "/api/v1/subjects/"+id, &v)
	return v
}

func (s *kycdServer) event(t *testing.T, id string) eventView {
	t.Helper()
	var v eventView
	s.getJSON(t, "/api/v1/events/"+id, &v)
	return v
}

func (s *kycdServer) quarantine(t *testing.T, query string) []quarantineView {
	t.Helper()
	var v struct {
		Items []quarantineView `json:"items"`
	}
	s.getJSON(t, "/api/v1/quarantine"+query, &v)
	return v.Items
}

// notifiedEvents returns the source event of each notification in the
// outbox, once per delivery (these servers have one sink, log).
func (s *kycdServer) notifiedEvents(t *testing.T) []string {
	t.Helper()
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	s.getJSON(t, "/api/v1/deliveries", &list)
	var out []string
	for _, d := range list.Items {
		var one struct {
			Notification struct {
				SourceEventID string `json:"sourceEventId"`
			} `json:"notification"`
		}
		s.getJSON(t, "/api/v1/deliveries/"+d.ID, &one)
		out = append(out, one.Notification.SourceEventID)
	}
	return out
}

// onlyQuarantined checks that exactly one body waits in quarantine, for
// reason, and returns it with its bodies.
func (s *kycdServer) onlyQuarantined(t *testing.T, reason string) quarantineView {
	t.Helper()
	items := s.quarantine(t, "")
	if len(items) != 1 || items[0].Reason != reason {
		t.Fatalf("GET /api/v1/quarantine lists %+v, want one body with reason %q", items, reason)
	}
	var item quarantineView
	s.getJSON(t, "/api/v1/quarantine/"+items[0].ID, &item)
	return item
}

func wantStatus(t *testing.T, got sessionView, want string) {
	t.Helper()
	if got.Status != want {
		t.Errorf("session %s status = %q, want %q (history %+v)", got.SessionID, got.Status, want, got.History)
	}
}

// wantJSON checks a JSON answer exactly.
func wantJSON(t *testing.T, a answer, status int, want string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("answer = %s, want %d %s", a, status, want)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got, exp any
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatalf("answer %s is not JSON: %v", a.body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		panic(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("answer body = %s, want %s", bytes.TrimSpace(a.body), want)
	}
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	fields []string
}

// wantProblem checks that a is an RFC 9457 problem with status and returns
// it, with the fields its errors name.
func wantProblem(t *testing.T, a answer, status int) problem {
	t.Helper()
	if a.status != status {
		t.Fatalf("answer = %s, want %d", a, status)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatalf("problem %s is not JSON: %v", a.body, err)
	}
	if p.Status != status || p.Title == "" || p.Type == "" {
		t.Errorf("problem = %s, want type, title and status %d", a.body, status)
	}
	p.fields = errorFields(t, a.body)
	return p
}

// errorFields returns the "field" of each entry of a problem's "errors", or
// nil without errors. The keys are matched exactly, as a client in another
// language would.
func errorFields(t *testing.T, doc []byte) []string {
	t.Helper()
	var v struct {
		Errors []map[string]any `json:"errors"`
	}
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("problem %s: %v", doc, err)
	}
	var out []string
	for _, e := range v.Errors {
		f, ok := e["field"].(string)
		if !ok {
			t.Errorf("problem error %v has no \"field\"", e)
		}
		out = append(out, f)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// ---- Events built for a test ----

const testUser = "0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a"

// sessionEvent is a generation A session event of testUser.
func sessionEvent(id, typ, ts, sessionID string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"event":%q,"timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":[]}}`,
		id, typ, ts, sessionID, testUser)
}

// levelEvent is a kyc_state_updated of user.
func levelEvent(id, ts, user, level string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"event":"kyc_state_updated","timestamp":%q,"data":{"userId":%q,"state":%q}}`,
		id, ts, user, level)
}

// orderedIDs returns two fresh event ids, the smaller first.
func orderedIDs() (lo, hi string) {
	a, b := uuid.NewString(), uuid.NewString()
	if a > b {
		a, b = b, a
	}
	return a, b
}

// ---- 1. The webhook endpoint, row by row of DESIGN.md's table ----

func TestWebhookEndpoint(t *testing.T) {
	t.Parallel()
	failed := example(t, "a-kyc_session_failed.json")
	unknown := example(t, "a-viban_created.json")
	invalid := readFile(t, filepath.Join("testdata", "invalid-fields.json"))
	conflicting := bytes.Replace(failed, []byte("has expired"), []byte("expired last year"), 1)
	reindented := func() []byte {
		var b bytes.Buffer
		if err := json.Compact(&b, failed); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}()
	large := fmt.Appendf(nil, `{"pad":%q}`, strings.Repeat("x", 4096))

	hexSig := func(b []byte) string { return ralio.Sign(b, testSecret) }
	base64Sig := func(b []byte) string {
		h := hmac.New(sha256.New, []byte(testSecret))
		h.Write(b)
		return "sha256=" + base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	wrongSig := func(b []byte) string { return ralio.Sign(b, "not-the-secret") }

	sessionRejected := func(t *testing.T, s *kycdServer) {
		got := s.session(t, failedSession)
		wantStatus(t, got, "REJECTED")
		if !reflect.DeepEqual(got.Failures, failedFailures) {
			t.Errorf("failures = %+v, want %+v", got.Failures, failedFailures)
		}
		if len(got.History) != 1 {
			t.Errorf("history = %+v, want one entry: a duplicate has no second effect", got.History)
		}
		if n := s.notifiedEvents(t); !slices.Equal(n, []string{failedEventID}) {
			t.Errorf("notifications come from events %q, want one from %s", n, failedEventID)
		}
	}
	unsigned := func(t *testing.T, s *kycdServer) {
		s.wantMetric(t, "kycd_signature_failures_total 1")
		wantProblem(t, s.api(t, http.MethodGet, "/api/v1/events/"+failedEventID), http.StatusNotFound)
	}

	tests := []struct {
		name   string
		flags  []string                          // extra serve flags
		before func(t *testing.T, s *kycdServer) // earlier deliveries
		method string                            // POST when empty
		ctype  string                            // application/json when empty; "-" sends none
		body   []byte
		sign   func([]byte) string // X-Signature; none when nil
		status int
		answer string      // exact JSON of a 200; other statuses must be problems
		header http.Header // headers the answer must have
		fields []string    // when set, exactly the bad fields a 400 names
		after  func(t *testing.T, s *kycdServer)
	}{
		{
			name: "processed", body: failed, sign: hexSig,
			status: 200, answer: `{"received":true}`,
			after: sessionRejected,
		},
		{
			name: "unknown event type is stored unhandled", body: unknown, sign: hexSig,
			status: 200, answer: `{"received":true}`,
			after: func(t *testing.T, s *kycdServer) {
				ev := s.event(t, "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f")
				if ev.Type != "viban_created" || ev.Outcome != kycd.OutcomeUnhandled {
					t.Errorf("event = %+v, want type viban_created, outcome unhandled", ev)
				}
			},
		},
		{
			name:   "exact duplicate",
			before: func(t *testing.T, s *kycdServer) { s.deliver(t, failed) },
			body:   failed, sign: hexSig,
			status: 200, answer: `{"received":true,"duplicate":true}`,
			after: sessionRejected,
		},
		{
			name:   "duplicate with other white space",
			before: func(t *testing.T, s *kycdServer) { s.deliver(t, failed) },
			body:   reindented, sign: hexSig,
			status: 200, answer: `{"received":true,"duplicate":true}`,
			after: sessionRejected,
		},
		{
			name: "GET", method: http.MethodGet, status: 405,
			header: http.Header{"Allow": {"POST"}},
		},
		{
			name: "PUT", method: http.MethodPut, body: failed, sign: hexSig, status: 405,
			header: http.Header{"Allow": {"POST"}},
		},
		{
			name: "body over --max-body", flags: []string{"--max-body", "2048"},
			body: large, sign: hexSig, status: 413,
		},
		{
			// Unsigned: a signed body is read as JSON whatever its type
			// (TestSignedEventOfAnyContentTypeOrGzipIsStored).
			name: "content type not JSON, unsigned", ctype: "text/plain", body: failed, status: 415,
			after: func(t *testing.T, s *kycdServer) {
				wantProblem(t, s.api(t, http.MethodGet, "/api/v1/sessions/"+failedSession), http.StatusNotFound)
			},
		},
		{
			name: "no content type at all is read as JSON", ctype: "-", body: failed, sign: hexSig,
			status: 200, answer: `{"received":true}`,
			after: sessionRejected,
		},
		{
			name: "base64 signature with sha256= prefix", body: failed, sign: base64Sig,
			status: 200, answer: `{"received":true}`,
			after: sessionRejected,
		},
		{
			name: "missing X-Signature", body: failed, status: 401,
			after: unsigned,
		},
		{
			name: "wrong X-Signature", body: failed, sign: wrongSig, status: 401,
			after: unsigned,
		},
		{
			name: "not JSON", body: []byte("received: true"), sign: hexSig, status: 400,
			after: func(t *testing.T, s *kycdServer) {
				q := s.onlyQuarantined(t, kycd.QuarantineInvalid)
				if q.Body == nil || *q.Body != "received: true" {
					t.Errorf("quarantined body = %v, want the body sent", q.Body)
				}
			},
		},
		{
			name: "JSON with bad fields", body: invalid, sign: hexSig, status: 400,
			fields: []string{"id", "data.sessionId"},
			after: func(t *testing.T, s *kycdServer) {
				q := s.onlyQuarantined(t, kycd.QuarantineInvalid)
				if q.Body == nil || *q.Body != string(invalid) {
					t.Errorf("quarantined body = %v, want the body sent", q.Body)
				}
				if got := errorFields(t, q.Problem); !sameSet(got, []string{"id", "data.sessionId"}) {
					t.Errorf("quarantined problem %s names fields %q, want id and data.sessionId", q.Problem, got)
				}
			},
		},
		{
			name:   "same event id, different body",
			before: func(t *testing.T, s *kycdServer) { s.deliver(t, failed) },
			body:   conflicting, sign: hexSig, status: 409,
			after: func(t *testing.T, s *kycdServer) {
				q := s.onlyQuarantined(t, kycd.QuarantineConflict)
				if q.EventID != failedEventID {
					t.Errorf("quarantined eventId = %q, want %q", q.EventID, failedEventID)
				}
				if q.Body == nil || *q.Body != string(conflicting) {
					t.Errorf("quarantined body = %v, want the second body", q.Body)
				}
				if q.OriginalBody == nil || *q.OriginalBody != string(failed) {
					t.Errorf("quarantined originalBody = %v, want the body stored first", q.OriginalBody)
				}
				sessionRejected(t, s) // the first body's failures, unchanged
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tt.flags...)
			if tt.before != nil {
				tt.before(t, s)
			}
			method := cmpOr(tt.method, http.MethodPost)
			header := http.Header{}
			if ct := cmpOr(tt.ctype, "application/json"); ct != "-" {
				header.Set("Content-Type", ct)
			}
			if tt.sign != nil {
				header.Set(ralio.SignatureHeader, tt.sign(tt.body))
			}
			a := s.mustDo(t, newRequest(method, s.URL+"/webhooks/ralio", tt.body, header))
			if tt.answer != "" {
				wantJSON(t, a, tt.status, tt.answer)
			} else {
				p := wantProblem(t, a, tt.status)
				if tt.status == http.StatusBadRequest && len(p.fields) == 0 {
					t.Errorf("400 problem %s has no errors naming the bad fields", a.body)
				}
				if tt.fields != nil && !sameSet(p.fields, tt.fields) {
					t.Errorf("400 problem names fields %q, want %q", p.fields, tt.fields)
				}
			}
			for k, v := range tt.header {
				if got := a.header.Values(k); !slices.Equal(got, v) {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.after != nil {
				tt.after(t, s)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ---- 2. Every Ralio example is accepted and has its effect ----

func TestRalioExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		eventID string
		outcome string
		effect  func(t *testing.T, s *kycdServer)
	}{
		{"a-kyc_session_failed.json", failedEventID, "applied", func(t *testing.T, s *kycdServer) {
			got := s.session(t, failedSession)
			wantStatus(t, got, "REJECTED")
			if got.Subject != (subjectRef{"user", failedUser}) {
				t.Errorf("subject = %+v, want user %s", got.Subject, failedUser)
			}
			if !reflect.DeepEqual(got.Failures, failedFailures) {
				t.Errorf("failures = %+v, want %+v", got.Failures, failedFailures)
			}
		}},
		{"a-kyc_state_updated-snake.json", "8e9f0a1b-2c3d-4e5f-9a6b-7c8d9e0f1a2b", "applied", func(t *testing.T, s *kycdServer) {
			got := s.subject(t, failedUser)
			if got.Type != "user" || got.Level != "REGULAR" {
				t.Errorf("subject = %+v, want user at level REGULAR", got)
			}
		}},
		{"b-kyc_expiration_warning.json", "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "applied", nil},
		{"b-kyc_session_failed-related-party.json", "0f4b5e1c-7a2d-4c3e-9b1a-2d6e8f0a1b3c", "applied", func(t *testing.T, s *kycdServer) {
			got := s.session(t, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
			wantStatus(t, got, "REJECTED")
			if got.Subject != (subjectRef{"related-party", "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"}) {
				t.Errorf("subject = %+v, want related-party 3c2b1a09-…", got.Subject)
			}
			want := []check{
				{"document-verification", "Refused", []reason{{"document", "KYC.DOC.DETERIORATED", "The document is damaged and cannot be read", "DOC"}}},
				{"liveness", "Validated", []reason{}},
			}
			if !reflect.DeepEqual(got.Checks, want) {
				t.Errorf("checks = %+v, want %+v", got.Checks, want)
			}
		}},
		{"c-kyb_state_updated.json", "9f0a1b2c-3d4e-4f5a-8b6c-7d8e9f0a1b2c", "applied", func(t *testing.T, s *kycdServer) {
			got := s.subject(t, "0a1b2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d")
			if got.Type != "business" || got.Level != "LIGHT" {
				t.Errorf("subject = %+v, want business at level LIGHT", got)
			}
		}},
		{"c-kyc_session_manual_review.json", "7d1f2e3a-4b5c-4d6e-8f90-a1b2c3d4e5f6", "applied", func(t *testing.T, s *kycdServer) {
			got := s.session(t, "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e")
			wantStatus(t, got, "REVIEW")
			if got.Subject != (subjectRef{"user", "c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f"}) {
				t.Errorf("subject = %+v, want user c3d4e5f6-…", got.Subject)
			}
		}},
		{"c-related_party.kyc_session_created.json", "e1d2c3b4-a596-4877-8695-a4b3c2d1e0f9", "applied", func(t *testing.T, s *kycdServer) {
			const session, party = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e", "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
			got := s.session(t, session)
			wantStatus(t, got, "NOT_STARTED")
			if got.Subject != (subjectRef{"related-party", party}) {
				t.Errorf("subject = %+v, want related-party %s", got.Subject, party)
			}
			sub := s.subject(t, party)
			if sub.Type != "related-party" || len(sub.Sessions) != 1 || sub.Sessions[0].SessionID != session || sub.Sessions[0].Status != "NOT_STARTED" {
				t.Errorf("subject = %+v, want related-party with session %s NOT_STARTED", sub, session)
			}
		}},
		{"a-viban_created.json", "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f", "unhandled", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			s := startServer(t)
			body := example(t, tt.file)
			s.deliver(t, body)
			ev := s.event(t, tt.eventID)
			if ev.EventID != tt.eventID || ev.Outcome != tt.outcome {
				t.Errorf("event = {eventId %s outcome %s}, want {%s %s}", ev.EventID, ev.Outcome, tt.eventID, tt.outcome)
			}
			if !jsonEqual(ev.Body, body) {
				t.Errorf("event body = %s, want the body received", ev.Body)
			}
			if tt.effect != nil {
				tt.effect(t, s)
			}
		})
	}
}

func countOf(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// ---- 3. Events out of order: the newest by (timestamp, id) wins ----

func TestOutOfOrderEvents(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const t1, t2 = "2026-01-01T10:00:00.000Z", "2026-01-01T11:00:00.000Z"
	type delivery struct {
		id, typ, ts string
		applied     bool // as the session's history must record it
	}
	lo1, hi1 := orderedIDs()
	lo2, hi2 := orderedIDs()
	tests := []struct {
		name   string
		events []delivery // in arrival order
		want   string
		wantAt string
	}{
		{"newer verified, then older failed", []delivery{
			{uuid.NewString(), "kyc_session_verified", t2, true},
			{uuid.NewString(), "kyc_session_failed", t1, false},
		}, "VERIFIED", t2},
		{"older failed, then newer verified", []delivery{
			{uuid.NewString(), "kyc_session_failed", t1, true},
			{uuid.NewString(), "kyc_session_verified", t2, true},
		}, "VERIFIED", t2},
		{"manual review overturns a rejection", []delivery{
			{uuid.NewString(), "kyc_session_failed", t1, true},
			{uuid.NewString(), "kyc_session_manual_review", t2, true},
		}, "REVIEW", t2},
		{"equal timestamps, larger id first", []delivery{
			{hi1, "kyc_session_failed", t1, true},
			{lo1, "kyc_session_verified", t1, false},
		}, "REJECTED", t1},
		{"equal timestamps, larger id last", []delivery{
			{lo2, "kyc_session_verified", t1, true},
			{hi2, "kyc_session_failed", t1, true},
		}, "REJECTED", t1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sessionID := uuid.NewString()
			for _, d := range tt.events {
				s.deliver(t, sessionEvent(d.id, d.typ, d.ts, sessionID))
			}
			got := s.session(t, sessionID)
			wantStatus(t, got, tt.want)
			if want, _ := time.Parse(time.RFC3339, tt.wantAt); !got.StatusAt.Equal(want) {
				t.Errorf("statusAt = %s, want %s", got.StatusAt, want)
			}
			if len(got.History) != len(tt.events) {
				t.Fatalf("history = %+v, want all %d events", got.History, len(tt.events))
			}
			notified := s.notifiedEvents(t)
			for _, d := range tt.events {
				i := slices.IndexFunc(got.History, func(h historyEntry) bool { return h.EventID == d.id })
				if i < 0 || got.History[i].Applied != d.applied || got.History[i].Event != d.typ {
					t.Errorf("history = %+v, want %s %s with applied:%t", got.History, d.typ, d.id, d.applied)
				}
				// A stale event has no other effect: no notification.
				if n := countOf(notified, d.id); d.applied && n != 1 || !d.applied && n != 0 {
					t.Errorf("%s %s (applied:%t) produced %d notifications", d.typ, d.id, d.applied, n)
				}
			}
		})
	}

	t.Run("level: LIGHT, then an older REGULAR", func(t *testing.T) {
		t.Parallel()
		user, light, regular := uuid.NewString(), uuid.NewString(), uuid.NewString()
		s.deliver(t, levelEvent(light, t2, user, "LIGHT"))
		s.deliver(t, levelEvent(regular, t1, user, "REGULAR"))
		if got := s.subject(t, user); got.Level != "LIGHT" {
			t.Errorf("level = %q, want LIGHT", got.Level)
		}
		if got := s.event(t, regular); got.Outcome != kycd.OutcomeStale {
			t.Errorf("older level event outcome = %q, want stale", got.Outcome)
		}
		if n := s.notifiedEvents(t); countOf(n, light) != 1 || countOf(n, regular) != 0 {
			t.Errorf("notifications come from %q, want one from %s (LIGHT) and none from %s (stale REGULAR)", n, light, regular)
		}
	})
}

// ---- 4. The same event delivered many times at once ----

func TestConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	body := example(t, "a-kyc_session_failed.json")
	const n = 50
	answers := make([]answer, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i], errs[i] = s.do(webhookRequest(s.URL, s.Secret, body))
		})
	}
	close(start)
	wg.Wait()

	first := 0
	for i, a := range answers {
		if errs[i] != nil {
			t.Fatalf("delivery %d: %v", i, errs[i])
		}
		var got struct{ Received, Duplicate bool }
		if a.status != http.StatusOK || json.Unmarshal(a.body, &got) != nil || !got.Received {
			t.Fatalf("delivery %d = %s, want 200 received", i, a)
		}
		if !got.Duplicate {
			first++
		}
	}
	if first != 1 {
		t.Errorf("%d deliveries answered without duplicate:true, want exactly 1", first)
	}
	if got := s.session(t, failedSession); len(got.History) != 1 {
		t.Errorf("history = %+v, want one entry", got.History)
	}
	if n := s.notifiedEvents(t); len(n) != 1 {
		t.Errorf("notifications come from events %q, want exactly one", n)
	}
	if ev := s.event(t, failedEventID); ev.EventID != failedEventID || ev.Outcome != kycd.OutcomeApplied {
		t.Errorf("event = %+v, want %s applied", ev, failedEventID)
	}
	s.wantMetric(t, fmt.Sprintf(`kycd_events_received_total{outcome="duplicate",type="kyc_session_failed"} %d`, n-1))
}

// ---- 5. Quarantine and replay ----

func TestQuarantineReplay(t *testing.T) {
	t.Parallel()

	t.Run("a body still invalid stays quarantined", func(t *testing.T) {
		t.Parallel()
		s := startServer(t)
		body := readFile(t, filepath.Join("testdata", "invalid-check-state.json"))
		const field = "data.checks[0].state"
		refused := s.post(t, body)
		if p := wantProblem(t, refused, http.StatusBadRequest); !slices.Equal(p.fields, []string{field}) {
			t.Errorf("400 names fields %q, want %q", p.fields, field)
		}
		q := s.onlyQuarantined(t, kycd.QuarantineInvalid)
		if q.EventID != "4d5e6f70-8192-4a3b-9c4d-5e6f708192a3" {
			t.Errorf("quarantined eventId = %q, want the body's id", q.EventID)
		}
		// kycd.Quarantined.Problem is "the RFC 9457 problem answered".
		if !jsonEqual(q.Problem, refused.body) {
			t.Errorf("quarantined problem = %s, want the problem answered: %s", q.Problem, bytes.TrimSpace(refused.body))
		}

		p := wantProblem(t, s.api(t, http.MethodPost, "/api/v1/quarantine/"+q.ID+"/replay"), http.StatusUnprocessableEntity)
		if !slices.Equal(p.fields, []string{field}) {
			t.Errorf("422 replay problem names fields %q, want %q, as the 400 did", p.fields, field)
		}
		out, err := cli(t, "quarantine", "replay", q.ID, "--database", "sqlite:"+s.DB)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("kycd quarantine replay = %v (output %q), want an error naming %s", err, out, field)
		}
		if again := s.onlyQuarantined(t, kycd.QuarantineInvalid); again.ID != q.ID || again.ReplayResult != "" {
			t.Errorf("after failed replays quarantine holds %+v, want %s still pending", again, q.ID)
		}
		wantProblem(t, s.api(t, http.MethodGet, "/api/v1/sessions/5e6f7081-92a3-4b4c-8d5e-6f708192a3b4"), http.StatusNotFound)
	})

	t.Run("a conflicting body stays quarantined", func(t *testing.T) {
		t.Parallel()
		s := startServer(t)
		failed := example(t, "a-kyc_session_failed.json")
		other := bytes.Replace(failed, []byte(`"Refused"`), []byte(`"Validated"`), 1)
		s.deliver(t, failed)
		wantProblem(t, s.post(t, other), http.StatusConflict)
		q := s.onlyQuarantined(t, kycd.QuarantineConflict)
		if q.Body == nil || *q.Body != string(other) || q.OriginalBody == nil || *q.OriginalBody != string(failed) {
			t.Errorf("quarantined body %v / originalBody %v, want the second and the first body", q.Body, q.OriginalBody)
		}
		wantProblem(t, s.api(t, http.MethodPost, "/api/v1/quarantine/"+q.ID+"/replay"), http.StatusConflict)
		s.onlyQuarantined(t, kycd.QuarantineConflict)
	})

	t.Run("a valid body replays", func(t *testing.T) {
		t.Parallel()
		s := startServer(t)
		// No body refused through the webhook becomes valid without a code
		// change, so one is put in quarantine as an older kycd would have.
		body := example(t, "a-kyc_session_verified.json")
		const eventID = "550e8400-e29b-41d4-a716-446655440010"
		qid := uuid.NewString()
		st := openDB(t, s.DB)
		if err := st.AddQuarantine(t.Context(), &kycd.Quarantined{
			ID: qid, ReceivedAt: time.Now(), Reason: kycd.QuarantineInvalid,
			Problem: json.RawMessage(`{"detail":"refused by an older kycd"}`), EventID: eventID, Body: body,
		}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if items := s.quarantine(t, ""); len(items) != 1 || items[0].ID != qid {
			t.Fatalf("quarantine = %+v, want %s", items, qid)
		}

		wantJSON(t, s.api(t, http.MethodPost, "/api/v1/quarantine/"+qid+"/replay"), http.StatusOK,
			fmt.Sprintf(`{"quarantineId":%q,"eventId":%q,"outcome":"applied"}`, qid, eventID))
		wantStatus(t, s.session(t, "550e8400-e29b-41d4-a716-446655440012"), "VERIFIED") // the sample's session
		if items := s.quarantine(t, ""); len(items) != 0 {
			t.Errorf("quarantine after replay = %+v, want none pending", items)
		}
		all := s.quarantine(t, "?all=1")
		if len(all) != 1 || all[0].ID != qid || all[0].ReplayResult != "applied" || all[0].ReplayedAt.IsZero() {
			t.Errorf("quarantine?all=1 = %+v, want %s replayed with result applied", all, qid)
		}
	})
}

// ---- 6. The read API's authentication and unknown ids ----

func TestAPIAuthAndNotFound(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	unknown := uuid.NewString()

	for _, tc := range []struct{ name, auth string }{
		{"no token", ""},
		{"wrong token", "Bearer not-" + testToken},
		{"token without Bearer", testToken},
		{"another scheme", "Basic " + testToken},
		{"Bearer without a space", "Bearer" + testToken},
	} {
		header := http.Header{}
		if tc.auth != "" {
			header.Set("Authorization", tc.auth)
		}
		a := s.mustDo(t, newRequest(http.MethodGet, s.URL+"/api/v1/sessions/"+failedSession, nil, header))
		wantProblem(t, a, http.StatusUnauthorized)
		if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate = %q, want a Bearer challenge", tc.name, a.header.Get("WWW-Authenticate"))
		}
		if bytes.Contains(a.body, []byte("EXPIRED_DOCUMENT")) {
			t.Errorf("%s: the 401 shows the session: %s", tc.name, a.body)
		}
	}
	wantStatus(t, s.session(t, failedSession), "REJECTED") // the right token reads it
	// The scheme is case-insensitive, and spaces may repeat (RFC 9110, 11.4).
	for _, auth := range []string{"bearer " + testToken, "BEARER " + testToken, "Bearer   " + testToken} {
		a := s.mustDo(t, newRequest(http.MethodGet, s.URL+"/api/v1/sessions/"+failedSession, nil, http.Header{"Authorization": {auth}}))
		if a.status != http.StatusOK {
			t.Errorf("Authorization: %q = %s, want 200", auth, a)
		}
	}

	for _, path := range []string{
		"GET /api/v1/sessions/" + unknown,
		"GET /api/v1/subjects/" + unknown,
		"GET /api/v1/events/" + unknown,
		"GET /api/v1/quarantine/" + unknown,
		"POST /api/v1/quarantine/" + unknown + "/replay",
	} {
		method, p, _ := strings.Cut(path, " ")
		if pr := wantProblem(t, s.api(t, method, p), http.StatusNotFound); pr.Detail == "" {
			t.Errorf("%s: 404 problem without detail", path)
		}
	}
}

// ---- 7. A newcomer's first run needs no configuration ----

func TestZeroConfigFirstRun(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "kycd.db")
	flags := []string{"--addr", "127.0.0.1:0", "--database", "sqlite:" + db}
	first := serve(t, nil, flags...)

	// The value printed on the line after "Generated <what>", in the
	// generated-secrets file (stderr is no terminal here; stdout is the
	// log sink's).
	out := generatedSecrets(t, db)
	if n := strings.Count(out, "Generated"); n != 2 {
		t.Fatalf("first start printed %d Generated lines, want 2 (secret and token):\n%s", n, out)
	}
	generated := func(what string) string {
		_, rest, ok := strings.Cut(out, "Generated "+what)
		_, rest, _ = strings.Cut(rest, "\n")
		v, _, _ := strings.Cut(rest, "\n")
		if v = strings.TrimSpace(v); !ok || v == "" {
			t.Fatalf("no generated %s in:\n%s", what, out)
		}
		return v
	}
	secret, token := generated("a Ralio webhook secret"), generated("an admin token")
	first.Secret, first.Token = secret, token

	sent := mustCLI(t, "send", "--addr", first.Addr, "--database", "sqlite:"+db)
	if !strings.Contains(sent, "200") || !strings.Contains(sent, `{"received":true}`) {
		t.Errorf("kycd send printed %q, want a 200 {\"received\":true}", sent)
	}
	wantStatus(t, first.session(t, failedSession), "REJECTED")

	text := mustCLI(t, "sessions", "get", failedSession, "--database", "sqlite:"+db)
	for _, want := range []string{"REJECTED", "EXPIRED_DOCUMENT", "NO_MATCH", "document-verification", "face-matching",
		"The provided document has expired", "Face does not match the document photo"} {
		if !strings.Contains(text, want) {
			t.Errorf("kycd sessions get has no %q:\n%s", want, text)
		}
	}
	var js sessionView
	if err := json.Unmarshal([]byte(mustCLI(t, "sessions", "get", failedSession, "--json", "--database", "sqlite:"+db)), &js); err != nil {
		t.Fatalf("kycd sessions get --json: %v", err)
	}
	if js.Status != "REJECTED" || !reflect.DeepEqual(js.Failures, failedFailures) {
		t.Errorf("kycd sessions get --json = %+v, want REJECTED with %+v", js, failedFailures)
	}

	if err := first.stop(t); err != nil {
		t.Fatalf("first kycd serve returned %v", err)
	}
	second := serve(t, nil, flags...)
	if again := generatedSecrets(t, db); again != out {
		t.Errorf("second start wrote to the generated-secrets file again:\n%s", again)
	}
	if strings.Contains(second.Stderr.String(), "Generated") {
		t.Errorf("second start printed a Generated line:\n%s", second.Stderr)
	}
	// The printed secret and token are the ones kept.
	second.Secret, second.Token = secret, token
	wantJSON(t, second.post(t, example(t, "a-kyc_session_failed.json")), http.StatusOK, `{"received":true,"duplicate":true}`)
	wantStatus(t, second.session(t, failedSession), "REJECTED")
}

// ---- 8. Reachable from other machines only with a chosen admin token ----

func TestNonLoopbackNeedsAdminToken(t *testing.T) {
	t.Parallel()

	t.Run("refused without a token", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "kycd.db")
		_, err := cli(t, "serve", "--addr", "0.0.0.0:0", "--database", "sqlite:"+db)
		if err == nil || !strings.Contains(err.Error(), "KYCD_ADMIN_TOKEN") {
			t.Errorf("serve on 0.0.0.0 without a token = %v, want an error naming KYCD_ADMIN_TOKEN", err)
		}
	})

	t.Run("refused with only a generated token", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "kycd.db")
		local := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db)
		if err := local.stop(t); err != nil {
			t.Fatal(err)
		}
		_, err := cli(t, "serve", "--addr", "0.0.0.0:0", "--database", "sqlite:"+db)
		if err == nil || !strings.Contains(err.Error(), "KYCD_ADMIN_TOKEN") {
			t.Errorf("serve on 0.0.0.0 with a generated token = %v, want an error naming KYCD_ADMIN_TOKEN", err)
		}
	})

	for _, tc := range []struct {
		name   string
		getenv func(string) string
		flags  []string
	}{
		{"starts with --admin-token", nil, []string{"--admin-token", chosenToken}},
		{"starts with KYCD_ADMIN_TOKEN", func(k string) string {
			if k == "KYCD_ADMIN_TOKEN" {
				return chosenToken
			}
			return ""
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "kycd.db")
			s := serve(t, tc.getenv, append([]string{"--addr", "0.0.0.0:0", "--database", "sqlite:" + db}, tc.flags...)...)
			s.Token = chosenToken
			wantProblem(t, s.api(t, http.MethodGet, "/api/v1/sessions/"+failedSession), http.StatusNotFound)
		})
	}
}

// chosenToken is an admin token long enough for an address other machines
// reach; chosenSecret is such a Ralio secret.
const (
	chosenToken  = "chosen-admin-token-of-32-letters"
	chosenSecret = "chosen-ralio-secret-of-32-letter"
)

func TestNonLoopbackRefusesWeakSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
	}{
		{"a one-letter admin token", []string{"--admin-token", "a", "--ralio-secret", chosenSecret},
			[]string{"--admin-token", "1 characters", "at least 32", "openssl rand"}},
		{"a 31-letter admin token", []string{"--admin-token", chosenToken[1:], "--ralio-secret", chosenSecret},
			[]string{"--admin-token", "31 characters"}},
		{"a one-letter Ralio secret", []string{"--admin-token", chosenToken, "--ralio-secret", "a"},
			[]string{"--ralio-secret", "secret 1 of 1 is 1 characters", "at least 32"}},
		{"a 31-letter Ralio secret", []string{"--admin-token", chosenToken, "--ralio-secret", chosenToken[1:]},
			[]string{"--ralio-secret", "secret 1 of 1 is 31 characters", "at least 32"}},
		{"a short second Ralio secret", []string{"--admin-token", chosenToken, "--ralio-secret", chosenSecret + ",short"},
			[]string{"--ralio-secret", "secret 2 of 2"}},
		{"a short sink secret", []string{"--admin-token", chosenToken, "--sink-secret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("sixteen bytes!!!"))},
			[]string{"--sink-secret", "16 bytes, want at least 24"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "kycd.db")
			_, err := cli(t, append([]string{"serve", "--addr", "0.0.0.0:0", "--database", "sqlite:" + db}, tc.flags...)...)
			if err == nil {
				t.Fatalf("serve on 0.0.0.0 with %s started", tc.name)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("serve on 0.0.0.0 with %s = %q, want it to say %q", tc.name, err, w)
				}
			}
			if strings.Contains(err.Error(), tc.flags[1]) && len(tc.flags[1]) > 1 {
				t.Errorf("the error %q shows the secret", err)
			}
		})
	}

	t.Run("a loopback address starts, with a warning", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "kycd.db")
		s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db, "--admin-token", "a", "--ralio-secret", "a")
		s.Token = "a"
		wantProblem(t, s.api(t, http.MethodGet, "/api/v1/sessions/"+failedSession), http.StatusNotFound)
		if err := s.stop(t); err != nil {
			t.Fatal(err)
		}
		if out := s.Stderr.String(); strings.Count(out, "weak secret") != 2 {
			t.Errorf("serve on loopback with weak secrets logged %q, want two weak-secret warnings", out)
		}
	})
}

// ---- 9. kycd send retries like Ralio ----

func TestSendRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []int // the answers, in order; the last repeats
		attempts string
		requests int
		wantErr  string
		output   []string
	}{
		{"5xx twice, then 200", []int{503, 503, 200}, "6", 3, "",
			[]string{"attempt 1: 503", "retrying in 10ms", "attempt 2: 503", "retrying in 20ms", "attempt 3: 200"}},
		{"400 is not retried", []int{400}, "6", 1, "400", []string{"attempt 1: 400"}},
		{"gives up after --attempts", []int{500}, "3", 3, "3 attempts", []string{"attempt 3: 500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			type request struct{ method, path, ctype, sig, body string }
			var mu sync.Mutex
			var got []request
			ralioLike := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got = append(got, request{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get(ralio.SignatureHeader), string(b)})
				status := tt.statuses[min(len(got), len(tt.statuses))-1]
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				fmt.Fprint(w, `{"received":true}`)
			}))
			defer ralioLike.Close()

			out, err := cli(t, "send", "--url", ralioLike.URL+"/webhooks/ralio", "--ralio-secret", testSecret,
				"--backoff", "10ms", "--attempts", tt.attempts)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("kycd send = %v, want error %q", err, tt.wantErr)
			}
			for _, want := range tt.output {
				if !strings.Contains(out, want) {
					t.Errorf("kycd send output has no %q:\n%s", want, out)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != tt.requests {
				t.Fatalf("server got %d requests, want %d", len(got), tt.requests)
			}
			v, _ := ralio.NewVerifier(testSecret)
			for i, r := range got {
				if r.method != http.MethodPost || r.path != "/webhooks/ralio" || !strings.HasPrefix(r.ctype, "application/json") {
					t.Errorf("request %d: %s %s (%s), want POST /webhooks/ralio JSON", i, r.method, r.path, r.ctype)
				}
				if err := v.Verify([]byte(r.body), r.sig); err != nil {
					t.Errorf("request %d: X-Signature %q: %v", i, r.sig, err)
				}
				if r.body != got[0].body {
					t.Errorf("request %d sent another body than the first", i)
				}
			}
			if _, err := ralio.Parse([]byte(got[0].body)); err != nil {
				t.Errorf("kycd send sent an invalid event: %v", err)
			}
		})
	}
}

// ---- 10. Graceful shutdown loses nothing it acknowledged ----

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()

	t.Run("a request in flight finishes", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "--shutdown-drain", "1s")
		body := example(t, "a-kyc_session_failed.json")

		// Expect: 100-continue holds the body back until the handler reads
		// it, so the request is surely in the handler when serve is told to
		// stop; the body follows only once the listener is closed.
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.CloseWithError(errors.New("test ended")) }) // runs before serve is stopped
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/webhooks/ralio", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Expect", "100-continue")
		req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, s.Secret))
		inHandler := make(chan struct{})
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got100Continue: func() { close(inHandler) },
		}))
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Second}}
		defer client.CloseIdleConnections()
		type result struct {
			a   answer
			err error
		}
		answered := make(chan result, 1)
		go func() {
			resp, err := client.Do(req)
			if err != nil {
				answered <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			answered <- result{answer{resp.StatusCode, resp.Header, b}, err}
		}()

		select {
		case <-inHandler:
		case <-time.After(10 * time.Second):
			t.Fatal("the webhook handler never started reading the body")
		}
		s.cancel()
		eventually(t, "kycd to stop accepting connections", func() bool {
			c, err := (&net.Dialer{Timeout: time.Second}).DialContext(t.Context(), "tcp", s.Addr)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
		select {
		case <-s.done:
			t.Fatalf("kycd serve returned (%v) with a request in flight", s.err)
		default:
		}
		go func() {
			pw.Write(body) // an error shows as the request's
			pw.Close()
		}()

		var r result
		select {
		case r = <-answered:
		case <-time.After(15 * time.Second):
			t.Fatal("no answer to the request in flight")
		}
		if r.err != nil {
			t.Fatalf("request in flight at shutdown: %v", r.err)
		}
		wantJSON(t, r.a, http.StatusOK, `{"received":true}`)
		if err := s.stop(t); err != nil {
			t.Fatalf("kycd serve returned %v", err)
		}
		var got sessionView
		if err := json.Unmarshal([]byte(mustCLI(t, "sessions", "get", failedSession, "--json", "--database", "sqlite:"+s.DB)), &got); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, got, "REJECTED")
	})

	t.Run("a burst cut short", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "--shutdown-drain", "1s")
		const n = 20
		ids := make([]string, n)
		answers := make([]answer, n)
		errs := make([]error, n)
		var written, wg sync.WaitGroup
		written.Add(n)
		for i := range n {
			ids[i] = uuid.NewString()
			body := sessionEvent(ids[i], "kyc_session_failed", "2026-01-01T10:00:00.000Z", uuid.NewString())
			req := webhookRequest(s.URL, s.Secret, body)
			var once sync.Once
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(written.Done) },
			}))
			wg.Go(func() {
				answers[i], errs[i] = s.do(req)
				once.Do(written.Done) // failed before writing
			})
		}
		allWritten := make(chan struct{})
		go func() { written.Wait(); close(allWritten) }()
		select {
		case <-allWritten:
		case <-time.After(15 * time.Second):
			t.Fatal("the burst was not sent within 15s")
		}
		if err := s.stop(t); err != nil {
			t.Fatalf("kycd serve returned %v", err)
		}
		wg.Wait()

		st := openDB(t, s.DB)
		acked := 0
		for i := range n {
			switch {
			case errs[i] != nil: // never answered: Ralio retries
			case answers[i].status == http.StatusOK:
				acked++
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				_, err := st.Event(ctx, ids[i])
				cancel()
				if err != nil {
					t.Errorf("event %s was answered 200 but is not stored: %v", ids[i], err)
				}
			case answers[i].status != http.StatusServiceUnavailable:
				t.Errorf("event %s answered %s during shutdown, want 200 or 503", ids[i], answers[i])
			}
		}
		t.Logf("%d of %d events acknowledged before shutdown", acked, n)
	})
}

// ---- 11. Health, readiness and metrics ----

func TestOperationsEndpoints(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if a := s.mustDo(t, newRequest(http.MethodGet, s.URL+path, nil, nil)); a.status != http.StatusOK {
			t.Errorf("GET %s = %s, want 200", path, a)
		}
	}
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	s.wantMetric(t, `kycd_events_received_total{outcome="applied",type="kyc_session_failed"} 1`)
	s.wantMetric(t, `kycd_ingest_duration_seconds_count 1`)
}

// ---- 12. version ----

func TestVersion(t *testing.T) {
	t.Parallel()
	out := mustCLI(t, "version")
	if !strings.HasPrefix(out, "kycd ") {
		t.Errorf("kycd version printed %q, want it to start with \"kycd \"", out)
	}
}

// kycd serve on a port already taken fails at once, naming the address,
// with no database created and no secret generated or printed.
func TestServeOnTakenPortCreatesNothing(t *testing.T) {
	t.Parallel()
	taken, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	db := filepath.Join(t.TempDir(), "kycd.db")
	var stdout, stderr syncBuffer
	err = run(t.Context(), []string{"serve", "--addr", addr, "--database", "sqlite:" + db}, noEnv, strings.NewReader(""), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--addr "+addr) {
		t.Fatalf("serve on the taken %s = %v, want an error naming --addr %s", addr, err, addr)
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "Generated") {
		t.Errorf("serve on a taken port printed a secret:\n%s", out)
	}
	entries, err := os.ReadDir(filepath.Dir(db))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("serve on a taken port left %s behind", e.Name())
	}
}
