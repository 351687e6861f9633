package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/ralio"
)

// bearer is the Authorization header of the test servers' admin token.
const bearer = "Bearer token"

// Tokens of the other roles, as the test of the document creates them.
const (
	viewerBearer   = "Bearer viewer-token"
	operatorBearer = "Bearer operator-token"
)

// loadSpec loads and validates server/openapi.json.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadSpec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	for _, name := range []string{
		"Session", "Check", "Reason", "Failure", "HistoryEntry", "Subject", "SubjectRef", "SessionSummary",
		"SessionPage", "SessionListItem", "EventRecord", "EventPage", "Stats", "CodeCount", "Quarantined",
		"QuarantinedDetail", "ReplayResult", "Delivery", "Attempt", "Notification", "Invitation", "Expiration",
		"Problem", "FieldProblem",
	} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("components/schemas has no %s", name)
		}
	}
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
		t.Error("components/securitySchemes has no http bearer scheme bearerAuth")
	}
}

// goRoute is one pattern of routes.go.
type goRoute struct {
	method string // "" when the pattern names none: every method reaches the handler
	path   string // in OpenAPI's spelling
}

var (
	handleRE   = regexp.MustCompile(`mux\.Handle(?:Func)?\("(?:([A-Z]+) )?(/[^"]*)"`)
	wildcardRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(?:\.\.\.)?\}`)
)

// routesOfRoutesGo parses the patterns registered in routes.go. Subtree
// patterns (ending in "/", such as the /api/ catch-all) are not routes of
// their own and are left out.
func routesOfRoutesGo(t *testing.T) []goRoute {
	t.Helper()
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []goRoute
	for _, m := range handleRE.FindAllStringSubmatch(string(src), -1) {
		method, path := m[1], m[2]
		path = strings.TrimSuffix(path, "{$}")
		if strings.HasSuffix(path, "/") {
			continue
		}
		out = append(out, goRoute{method: method, path: wildcardRE.ReplaceAllString(path, "{$1}")})
	}
	if len(out) < 10 {
		t.Fatalf("found %d routes in routes.go; has the way routes are registered changed? %v", len(out), out)
	}
	return out
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadSpec(t)
	routes := routesOfRoutesGo(t)

	for _, r := range routes {
		item := doc.Paths.Value(r.path)
		switch {
		case item == nil:
			t.Errorf("routes.go serves %s %s; the document has no path %s", r.method, r.path, r.path)
		case r.method == "" && len(item.Operations()) == 0:
			t.Errorf("routes.go serves %s; the document has no operation on it", r.path)
		case r.method != "" && item.GetOperation(r.method) == nil:
			t.Errorf("routes.go serves %s %s; the document does not", r.method, r.path)
		}
	}

	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !slices.ContainsFunc(routes, func(r goRoute) bool {
				return r.path == path && (r.method == method || r.method == "")
			}) {
				t.Errorf("the document has %s %s; routes.go does not serve it", method, path)
			}
		}
	}
}

func TestOpenAPISecurity(t *testing.T) {
	doc := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			public := !strings.HasPrefix(path, "/api/v1/") || path == "/api/v1/openapi.json"
			switch {
			case public && len(sec) != 0:
				t.Errorf("%s %s: public, but the document asks for %v", method, path, sec)
			case !public && (len(sec) != 1 || len(sec[0]) != 1 || sec[0]["bearerAuth"] == nil):
				t.Errorf("%s %s: needs the admin token, but the document asks for %v", method, path, sec)
			case !public && op.Responses.Status(http.StatusUnauthorized) == nil:
				t.Errorf("%s %s: needs the admin token, but documents no 401", method, path)
			}
		}
	}
}

// specValidator checks answers of the real handler against the document.
type specValidator struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	seen   map[string]bool // "METHOD /path status" validated
}

func newSpecValidator(t *testing.T) *specValidator {
	t.Helper()
	doc := loadSpec(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &specValidator{
		doc:    doc,
		router: router,
		seen:   map[string]bool{},
		opts: &openapi3filter.Options{
			// A status the document does not list fails.
			IncludeResponseStatus: true,
			MultiError:            true,
			// Requests are validated only when they were answered 2xx: then
			// a secured operation must have been called with the token.
			AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
				if in.SecuritySchemeName != "bearerAuth" {
					return fmt.Errorf("unexpected security scheme %q", in.SecuritySchemeName)
				}
				switch in.RequestValidationInput.Request.Header.Get("Authorization") {
				case bearer, viewerBearer, operatorBearer:
				default:
					return errors.New("no token")
				}
				return nil
			},
		},
	}
}

func newRequest(method, path string, body []byte, hdr []string) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequestWithContext(context.Background(), method, path, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// do sends a request to h, wants status want, and validates the answer
// against the document. hdr lists header names and values.
func (v *specValidator) do(t *testing.T, h http.Handler, want int, method, path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	return v.doAs(t, h, want, "", method, path, body, hdr...)
}

// doAs is do, validating the answer against the operation of method as
// rather than of the request's own method (for a 405).
func (v *specValidator) doAs(t *testing.T, h http.Handler, want int, as, method, path string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest(method, path, body, hdr))
	if rec.Code != want {
		t.Fatalf("%s %s = %d, want %d; body %s", method, path, rec.Code, want, rec.Body)
	}
	if as == "" {
		as = method
	}
	v.validate(t, as, path, body, hdr, rec)
	return rec
}

func (v *specValidator) validate(t *testing.T, method, path string, body []byte, hdr []string, rec *httptest.ResponseRecorder) {
	t.Helper()
	ctx := context.Background()
	req := newRequest(method, path, body, hdr)
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s: not in the document: %v", method, path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: v.opts}
	if rec.Code < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s %s was answered %d, but the document does not allow the request: %v", method, path, rec.Code, err)
		}
		// OpenAPI lets undeclared query parameters through; a parameter
		// the handler acted on must be declared.
		for name := range req.URL.Query() {
			if route.Operation.Parameters.GetByInAndName(openapi3.ParameterInQuery, name) == nil &&
				route.PathItem.Parameters.GetByInAndName(openapi3.ParameterInQuery, name) == nil {
				t.Errorf("%s %s: query parameter %q is not in the document", method, path, name)
			}
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Options:                v.opts,
	}
	out.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s %s answered %d (%s), not as documented: %v\nbody: %s", method, path, rec.Code, rec.Header().Get("Content-Type"), err, rec.Body)
	}
	v.seen[route.Method+" "+route.Path+" "+strconv.Itoa(rec.Code)] = true
}

// newSpecServer is a server on a new SQLite store with the test's secret and
// token, guidance for failure codes, and the Draining and MaxBody of o.
func newSpecServer(t *testing.T, o server.Options) (http.Handler, *sqlite.Store) {
	t.Helper()
	s := sqlitetest.Open(t)
	v, err := ralio.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return server.New(server.Options{
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store:      s,
		Verifier:   v,
		Ingester:   startIngester(t, s, ingest.Options{Sinks: kycd.Routes("log"), Guide: kycd.DefaultGuidance().For}),
		AdminToken: "token",
		Sinks:      kycd.Routes("log"),
		MaxBody:    o.MaxBody,
		Draining:   o.Draining,
	}), s
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("answer is not the JSON expected: %v; body %s", err, rec.Body)
	}
	return v
}

// TestOpenAPIMatchesAnswers drives the real handler through every route and
// validates each answer (status, content type, headers, body) against the
// document.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	v := newSpecValidator(t)
	var draining atomic.Bool
	h, store := newSpecServer(t, server.Options{MaxBody: 8 << 10, Draining: &draining})
	auth := []string{"Authorization", bearer}
	signed := func(body []byte) []string {
		return []string{"Content-Type", "application/json", ralio.SignatureHeader, ralio.Sign(body, secret)}
	}
	const (
		sessionID = "550e8400-e29b-41d4-a716-446655440002"
		subjectID = "550e8400-e29b-41d4-a716-446655440001"
		eventID   = "550e8400-e29b-41d4-a716-446655440000"
	)
	unknownID := uuid.NewString()

	// The webhook.
	first := seed(t)
	v.do(t, h, 200, "POST", "/webhooks/ralio", first, signed(first)...)
	dup := v.do(t, h, 200, "POST", "/webhooks/ralio", first, signed(first)...)
	if got := decode[map[string]bool](t, dup); !got["duplicate"] {
		t.Errorf("a duplicate is answered %v", got)
	}
	files, err := filepath.Glob("../../ralio/testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("Ralio's examples: %d files, %v", len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v.do(t, h, 200, "POST", "/webhooks/ralio", b, signed(b)...)
	}
	bad := []byte(`{"id":"not-a-uuid","event":"kyc_session_failed","timestamp":"yesterday"}`)
	v.do(t, h, 400, "POST", "/webhooks/ralio", bad, signed(bad)...)
	notJSON := []byte("\xffnot json at all")
	v.do(t, h, 400, "POST", "/webhooks/ralio", notJSON, signed(notJSON)...)
	conflict := bytes.Replace(first, []byte("EXPIRED_DOCUMENT"), []byte("BLURRY_DOCUMENT"), 1)
	v.do(t, h, 409, "POST", "/webhooks/ralio", conflict, signed(conflict)...)
	v.do(t, h, 401, "POST", "/webhooks/ralio", first, "Content-Type", "application/json")
	v.do(t, h, 401, "POST", "/webhooks/ralio", first, "Content-Type", "application/json", ralio.SignatureHeader, ralio.Sign(first, "another secret"))
	v.doAs(t, h, 405, "POST", "GET", "/webhooks/ralio", nil)
	v.doAs(t, h, 405, "POST", "PUT", "/webhooks/ralio", first, signed(first)...)
	big := append(append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), 9<<10)...), `"}`...)
	v.do(t, h, 413, "POST", "/webhooks/ralio", big, signed(big)...)
	// 415 is for unsigned requests only: a signed body is read as JSON
	// whatever its type.
	v.do(t, h, 415, "POST", "/webhooks/ralio", first, "Content-Type", "text/plain")
	// An event stamped far after its receipt: its history entry is flagged.
	skewedSession := uuid.NewString()
	skewed := fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_failed","timestamp":"2099-01-01T00:00:00.000Z","data":{"sessionId":%q,"userId":%q,"checks":[]}}`,
		uuid.NewString(), skewedSession, subjectID)
	v.do(t, h, 200, "POST", "/webhooks/ralio", skewed, signed(skewed)...)
	if s := decode[kycd.Session](t, v.do(t, h, 200, "GET", "/api/v1/sessions/"+skewedSession, nil, auth...)); len(s.History) != 1 || !s.History[0].ClockSkew || s.History[0].OrderedAt.IsZero() {
		t.Errorf("the 2099 session's history = %+v, want its entry flagged clockSkew with orderedAt", s.History)
	}

	// Sessions, subjects, events, stats.
	sess := decode[kycd.Session](t, v.do(t, h, 200, "GET", "/api/v1/sessions/"+sessionID, nil, auth...))
	if len(sess.Failures) == 0 || len(sess.History) == 0 {
		t.Errorf("the seeded session has no failures or history: %+v", sess)
	}
	v.do(t, h, 200, "GET", "/api/v1/sessions/"+strings.ToUpper(sessionID), nil, auth...)
	v.do(t, h, 200, "GET", "/api/v1/sessions", nil, auth...)
	v.do(t, h, 200, "GET", "/api/v1/sessions?status=REJECTED&subject="+subjectID+"&limit=10", nil, auth...)
	if f := sess.Failures; len(f) == 0 || f[0].Code != "EXPIRED_DOCUMENT" || f[0].Guidance != kycd.DefaultGuidance().For("EXPIRED_DOCUMENT") {
		t.Errorf("the seeded session's failures = %+v, want each with the guidance the user is given", f)
	}
	found := decode[kycd.SessionPage](t, v.do(t, h, 200, "GET", "/api/v1/sessions?code=EXPIRED_DOCUMENT&since=2025-06-19T00:00:00Z&until=2025-06-20T00:00:00Z", nil, auth...))
	if len(found.Sessions) != 1 || found.Sessions[0].ID != sessionID {
		t.Errorf("sessions rejected for EXPIRED_DOCUMENT on 2025-06-19 = %+v, want the seeded one", found.Sessions)
	}
	for _, q := range []string{"since=yesterday", "until=2025-06-19", "since=2025-06-20T00:00:00Z&until=2025-06-19T00:00:00Z"} {
		v.do(t, h, 400, "GET", "/api/v1/sessions?"+q, nil, auth...)
	}
	page := decode[kycd.SessionPage](t, v.do(t, h, 200, "GET", "/api/v1/sessions?limit=1", nil, auth...))
	if page.NextCursor == "" {
		t.Fatal("no nextCursor with limit=1 and several sessions")
	}
	v.do(t, h, 200, "GET", "/api/v1/sessions?limit=1&cursor="+page.NextCursor, nil, auth...)
	for _, q := range []string{"status=GOLD", "limit=x", "limit=0", "cursor=zzz"} {
		v.do(t, h, 400, "GET", "/api/v1/sessions?"+q, nil, auth...)
	}
	// Stalled sessions: the samples' review (March 2026) and invitation
	// (expired in May 2026) are long past the line.
	const invitedSession = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"
	if s := decode[kycd.Session](t, v.do(t, h, 200, "GET", "/api/v1/sessions/"+invitedSession, nil, auth...)); s.ExpiresAt.IsZero() {
		t.Errorf("the invitation's session has no expiresAt: %+v", s)
	}
	stalled := decode[kycd.StalledPage](t, v.do(t, h, 200, "GET", "/api/v1/sessions/stalled", nil, auth...))
	reasons := map[string]string{}
	for _, s := range stalled.Sessions {
		reasons[s.ID] = s.Reason
	}
	if reasons["b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"] != kycd.StalledReviewOverdue || reasons[invitedSession] != kycd.StalledInvitationExpired {
		t.Errorf("stalled sessions = %+v, want the sample review overdue and the sample invitation expired", stalled.Sessions)
	}
	firstStalled := decode[kycd.StalledPage](t, v.do(t, h, 200, "GET", "/api/v1/sessions/stalled?limit=1", nil, auth...))
	if firstStalled.NextCursor == "" {
		t.Fatal("no nextCursor with limit=1 and two stalled sessions")
	}
	v.do(t, h, 200, "GET", "/api/v1/sessions/stalled?limit=1&cursor="+firstStalled.NextCursor, nil, auth...)
	for _, q := range []string{"limit=x", "cursor=zzz"} {
		v.do(t, h, 400, "GET", "/api/v1/sessions/stalled?"+q, nil, auth...)
	}
	v.do(t, h, 200, "GET", "/api/v1/subjects/"+subjectID, nil, auth...)
	v.do(t, h, 200, "GET", "/api/v1/subjects/"+subjectID+"?type=user", nil, auth...)
	v.do(t, h, 404, "GET", "/api/v1/subjects/"+subjectID+"?type=business", nil, auth...)
	v.do(t, h, 200, "GET", "/api/v1/subjects/0a1b2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d", nil, auth...) // a business with a level
	ev := decode[kycd.EventRecord](t, v.do(t, h, 200, "GET", "/api/v1/events/"+eventID, nil, auth...))
	if len(ev.Body) == 0 {
		t.Error("GET /api/v1/events/{id} shows no body")
	}
	v.do(t, h, 200, "GET", "/api/v1/events", nil, auth...)
	events := decode[kycd.EventPage](t, v.do(t, h, 200, "GET", "/api/v1/events?type=kyc_session_failed&limit=1", nil, auth...))
	if events.NextCursor == "" {
		t.Fatal("no nextCursor with limit=1 and two kyc_session_failed events")
	}
	v.do(t, h, 200, "GET", "/api/v1/events?limit=1&cursor="+events.NextCursor, nil, auth...)
	for _, q := range []string{"limit=-1", "cursor=zzz"} {
		v.do(t, h, 400, "GET", "/api/v1/events?"+q, nil, auth...)
	}
	v.do(t, h, 200, "GET", "/api/v1/stats", nil, auth...)
	st := decode[kycd.Stats](t, v.do(t, h, 200, "GET", "/api/v1/stats?window=87600h&limit=1", nil, auth...))
	if len(st.TopFailureCodes) != 1 {
		t.Errorf("stats with limit=1: %+v", st)
	}
	for _, q := range []string{"window=yesterday", "window=-1h", "limit=x"} {
		v.do(t, h, 400, "GET", "/api/v1/stats?"+q, nil, auth...)
	}

	// Reconciliation runs: none yet, and a bad limit.
	v.do(t, h, 200, "GET", "/api/v1/reconciliations", nil, auth...)
	v.do(t, h, 400, "GET", "/api/v1/reconciliations?limit=x", nil, auth...)

	// The quarantine: two invalid bodies, a conflict and the body whose
	// signature failed (held off the request, so it may take a moment).
	list := decode[struct{ Items []kycd.Quarantined }](t, v.do(t, h, 200, "GET", "/api/v1/quarantine", nil, auth...))
	for deadline := time.Now().Add(5 * time.Second); len(list.Items) < 4 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		list = decode[struct{ Items []kycd.Quarantined }](t, v.do(t, h, 200, "GET", "/api/v1/quarantine", nil, auth...))
	}
	if len(list.Items) != 4 || list.Items[0].Reason != kycd.QuarantineSignature {
		t.Fatalf("quarantine lists %d items (newest %+v), want 4, the newest held for its signature", len(list.Items), list.Items[0])
	}
	for _, it := range decode[struct{ Items []server.QuarantineView }](t, v.do(t, h, 200, "GET", "/api/v1/quarantine", nil, auth...)).Items {
		if it.Replayable || it.ReplayBlocked == "" {
			t.Errorf("quarantined %s (%s) is offered for replay (%v, %q); none of these can succeed", it.ID, it.Reason, it.Replayable, it.ReplayBlocked)
		}
	}
	for _, it := range list.Items {
		v.do(t, h, 200, "GET", "/api/v1/quarantine/"+it.ID, nil, auth...)
		switch it.Reason {
		case kycd.QuarantineInvalid:
			v.do(t, h, 422, "POST", "/api/v1/quarantine/"+it.ID+"/replay", nil, auth...)
		case kycd.QuarantineConflict:
			v.do(t, h, 409, "POST", "/api/v1/quarantine/"+it.ID+"/replay", nil, auth...)
		}
	}
	// A body that is valid now (as after a fix of kycd) replays; replayed
	// twice, it is a duplicate.
	fixed := []byte(`{"id":"` + uuid.NewString() + `","event":"kyc_session_verified","timestamp":"2026-01-02T03:04:05Z","data":{"sessionId":"` + uuid.NewString() + `","userId":"` + subjectID + `","checks":[]}}`)
	q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: time.Now(), Reason: kycd.QuarantineInvalid, Problem: []byte(`{"type":"about:blank","title":"Invalid Ralio event","status":400}`), Body: fixed}
	if err := store.AddQuarantine(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	res := decode[server.ReplayResult](t, v.do(t, h, 200, "POST", "/api/v1/quarantine/"+q.ID+"/replay", nil, auth...))
	if res.Outcome != kycd.OutcomeApplied {
		t.Errorf("replay: %+v", res)
	}
	v.do(t, h, 200, "POST", "/api/v1/quarantine/"+q.ID+"/replay", nil, auth...)
	v.do(t, h, 200, "GET", "/api/v1/quarantine/"+q.ID, nil, auth...)
	v.do(t, h, 200, "GET", "/api/v1/quarantine?all=1&limit=10", nil, auth...)
	// A conflict can never be replayed: it is discarded, once, and kept.
	for _, it := range list.Items {
		if it.Reason != kycd.QuarantineConflict {
			continue
		}
		gone := decode[server.Discarded](t, v.do(t, h, 200, "POST", "/api/v1/quarantine/"+it.ID+"/discard", nil, auth...))
		if gone.ID != it.ID || gone.DiscardedBy != "admin" || gone.DiscardedAt.IsZero() {
			t.Errorf("discard = %+v", gone)
		}
		v.do(t, h, 409, "POST", "/api/v1/quarantine/"+it.ID+"/discard", nil, auth...)
		v.do(t, h, 409, "POST", "/api/v1/quarantine/"+it.ID+"/replay", nil, auth...)
		kept := decode[server.QuarantineView](t, v.do(t, h, 200, "GET", "/api/v1/quarantine/"+it.ID, nil, auth...))
		if kept.Body == nil || kept.DiscardedAt.IsZero() || kept.Replayable {
			t.Errorf("discarded item = %+v, want kept with its body, marked, not replayable", kept)
		}
	}
	v.do(t, h, 409, "POST", "/api/v1/quarantine/"+q.ID+"/discard", nil, auth...) // replayed

	// Deliveries: one per notification, to the "log" sink. Record attempts
	// as the dispatcher would: one failed (retried), one dead, one delivered.
	deliveries := decode[struct{ Items []*kycd.Delivery }](t, v.do(t, h, 200, "GET", "/api/v1/deliveries", nil, auth...))
	if len(deliveries.Items) < 3 {
		t.Fatalf("%d deliveries, want at least 3", len(deliveries.Items))
	}
	ctx := context.Background()
	now := time.Now()
	claimed, err := store.ClaimDeliveries(ctx, "test", []string{"log"}, now, time.Minute, 3)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	recs := []kycd.AttemptRecord{
		{DeliveryID: claimed[0].ID, Attempt: kycd.Attempt{At: now, DurationMS: 12, Outcome: kycd.AttemptFailed, StatusCode: 503, Error: "status 503"},
			Next: kycd.DeliveryUpdate{State: kycd.DeliveryPending, NextAttemptAt: now.Add(time.Minute), Error: "status 503"}},
		{DeliveryID: claimed[1].ID, Attempt: kycd.Attempt{At: now, DurationMS: 3, Outcome: kycd.AttemptRejected, StatusCode: 400, Error: "status 400"},
			Next: kycd.DeliveryUpdate{State: kycd.DeliveryDead, Error: "status 400"}},
		{DeliveryID: claimed[2].ID, Attempt: kycd.Attempt{At: now, DurationMS: 1, Outcome: kycd.AttemptDelivered},
			Next: kycd.DeliveryUpdate{State: kycd.DeliveryDelivered}},
	}
	if errs, err := store.RecordAttempts(ctx, "test", recs); err != nil || errors.Join(errs...) != nil {
		t.Fatalf("record attempts: %v %v", errs, err)
	}
	for _, d := range deliveries.Items {
		v.do(t, h, 200, "GET", "/api/v1/deliveries/"+d.ID, nil, auth...)
	}
	for _, state := range []string{kycd.DeliveryPending, kycd.DeliveryDelivered, kycd.DeliveryDead} {
		v.do(t, h, 200, "GET", "/api/v1/deliveries?state="+state+"&limit=50", nil, auth...)
	}
	named := 0
	for _, d := range decode[kycd.DeliveryPage](t, v.do(t, h, 200, "GET", "/api/v1/deliveries?limit=500", nil, auth...)).Items {
		if strings.HasPrefix(d.NotificationType, "kyc.session.") {
			named++
			if d.SessionID == "" || d.Subject.IsZero() {
				t.Errorf("delivery %s of %s names session %q and subject %+v; want both", d.ID, d.NotificationType, d.SessionID, d.Subject)
			}
		}
	}
	if named == 0 {
		t.Error("no delivery of a session notification listed")
	}
	notes := decode[server.SessionNotifications](t, v.do(t, h, 200, "GET", "/api/v1/sessions/"+sessionID+"/notifications", nil, auth...))
	if len(notes.Items) != 1 || notes.Items[0].Type != kycd.NotifySessionRejected || len(notes.Items[0].Deliveries) != 1 || notes.Items[0].Deliveries[0].Sink != "log" {
		t.Errorf("the seeded session's notifications = %+v, want its rejection with the log sink's delivery", notes.Items)
	}
	invited := decode[server.SessionNotifications](t, v.do(t, h, 200, "GET", "/api/v1/sessions/"+invitedSession+"/notifications", nil, auth...))
	if len(invited.Items) != 1 || strings.Contains(string(invited.Items[0].Payload), "@") || strings.Contains(string(invited.Items[0].Payload), "verificationUrl") {
		t.Errorf("the invitation's notifications = %+v, want its one notification without contact details", invited.Items)
	}
	v.do(t, h, 400, "GET", "/api/v1/deliveries?state=lost", nil, auth...)
	v.do(t, h, 202, "POST", "/api/v1/deliveries/"+claimed[1].ID+"/retry", nil, auth...)

	// Pages, filters, sinks: the log sink is configured, crm too; moves,
	// drops and a resume.
	sinkApp := &app.Service{Store: store, Now: func() time.Time { return now }}
	if err := sinkApp.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "log", Type: "log"},
		{Name: "crm", Type: "http", Target: "https://merchant.example/kyc?token=xxxxx", Events: []string{"kyc.session.*"}}}); err != nil {
		t.Fatal(err)
	}
	one := decode[kycd.DeliveryPage](t, v.do(t, h, 200, "GET", "/api/v1/deliveries?limit=1&sink=log&orphaned=false", nil, auth...))
	if one.NextCursor == "" || len(one.Items) != 1 {
		t.Fatalf("deliveries with limit=1 = %+v, want one and a nextCursor", one)
	}
	v.do(t, h, 200, "GET", "/api/v1/deliveries?limit=1&cursor="+one.NextCursor, nil, auth...)
	v.do(t, h, 200, "GET", "/api/v1/deliveries?orphaned=true&state=dropped", nil, auth...)
	for _, q := range []string{"orphaned=maybe", "cursor=zzz", "limit=0"} {
		v.do(t, h, 400, "GET", "/api/v1/deliveries?"+q, nil, auth...)
	}
	jsonBody := []string{"Content-Type", "application/json", "Authorization", bearer}
	// Triage: the summary, and retry and drop by filter (of a sink that has
	// no delivery: triage_test.go acts on real ones).
	v.do(t, h, 200, "GET", "/api/v1/deliveries/summary?state=dead&sink=log", nil, auth...)
	v.do(t, h, 202, "POST", "/api/v1/deliveries/retry", []byte(`{"sink":"nowhere"}`), jsonBody...)
	v.do(t, h, 200, "POST", "/api/v1/deliveries/drop", []byte(`{"sink":"nowhere"}`), jsonBody...)
	moved := decode[server.DeliveryChange](t, v.do(t, h, 202, "POST", "/api/v1/deliveries/"+claimed[1].ID+"/move", []byte(`{"sink":"crm"}`), jsonBody...))
	if moved.Sink != "crm" || moved.State != kycd.DeliveryPending {
		t.Errorf("move = %+v", moved)
	}
	v.do(t, h, 400, "POST", "/api/v1/deliveries/"+claimed[0].ID+"/move", []byte(`{"sink":"nowhere"}`), jsonBody...)
	v.do(t, h, 400, "POST", "/api/v1/deliveries/"+claimed[0].ID+"/move", []byte(`not json`), jsonBody...)
	v.do(t, h, 409, "POST", "/api/v1/deliveries/"+claimed[2].ID+"/move", []byte(`{"sink":"crm"}`), jsonBody...) // delivered
	v.do(t, h, 200, "POST", "/api/v1/deliveries/"+claimed[0].ID+"/drop", nil, auth...)
	v.do(t, h, 409, "POST", "/api/v1/deliveries/"+claimed[0].ID+"/drop", nil, auth...)
	full := decode[kycd.Delivery](t, v.do(t, h, 200, "GET", "/api/v1/deliveries/"+claimed[1].ID, nil, auth...))
	if len(full.Actions) != 1 || full.Actions[0].Action != kycd.ActionMove || full.Actions[0].Actor == "" || full.Actions[0].From != "log" {
		t.Errorf("moved delivery's actions = %+v, want the move noted with its actor", full.Actions)
	}
	if err := sinkApp.PauseSink(ctx, "crm", "status 410: gone"); err != nil {
		t.Fatal(err)
	}
	sinks := decode[struct{ Items []kycd.SinkInfo }](t, v.do(t, h, 200, "GET", "/api/v1/sinks", nil, auth...))
	if len(sinks.Items) != 2 || sinks.Items[0].Name != "crm" || sinks.Items[0].PausedAt.IsZero() {
		t.Errorf("sinks = %+v, want crm paused and log", sinks.Items)
	}
	res2 := decode[server.Resumed](t, v.do(t, h, 200, "POST", "/api/v1/sinks/crm/resume", nil, auth...))
	if res2.Pending != 1 {
		t.Errorf("resume = %+v, want the moved delivery due again", res2)
	}
	v.do(t, h, 404, "POST", "/api/v1/sinks/nowhere/resume", nil, auth...)

	// Resends: to every configured sink that takes the type, or to one.
	resendPath := "/api/v1/notifications/" + claimed[2].NotificationID + "/resend"
	routes := []kycd.SinkRoute{{Name: "log"}, {Name: "crm", Events: []string{"kyc.session.*"}}}
	resent := decode[server.Resent](t, v.do(t, h, 202, "POST", resendPath, nil, auth...))
	if want := kycd.SinksFor(routes, claimed[2].NotificationType); resent.NotificationID != claimed[2].NotificationID ||
		len(resent.Deliveries) != len(want) || resent.Deliveries[0] != (kycd.Resent{Sink: "log", DeliveryID: claimed[2].ID}) {
		t.Errorf("resend of a %s = %+v, want log's delivery again, then the other sinks of %v", claimed[2].NotificationType, resent, want)
	}
	v.do(t, h, 202, "POST", resendPath, []byte(`{"sink":"log"}`), jsonBody...)
	v.do(t, h, 400, "POST", resendPath, []byte(`{"sink":"nowhere"}`), jsonBody...)
	v.do(t, h, 400, "POST", resendPath, []byte(`not json`), jsonBody...)

	// Roles: a viewer reads, and is refused (403) what needs more; an
	// operator acts on deliveries, and is refused what needs an admin.
	for _, tok := range []kycd.Token{
		{Name: "support", Role: kycd.RoleViewer, Hash: kycd.TokenHash(strings.TrimPrefix(viewerBearer, "Bearer ")), CreatedAt: now},
		{Name: "ops", Role: kycd.RoleOperator, Hash: kycd.TokenHash(strings.TrimPrefix(operatorBearer, "Bearer ")), CreatedAt: now},
	} {
		if err := (&app.Service{Store: store}).AddToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
	}
	viewer := []string{"Authorization", viewerBearer}

	// The search, with the viewer's token: every kind by its whole id, in
	// upper case, and by its first 8 digits, each hit's API path readable
	// by the viewer; nothing audited.
	newestAudit := func() int64 {
		t.Helper()
		return decode[kycd.AuditPage](t, v.do(t, h, 200, "GET", "/api/v1/audit?limit=1", nil, auth...)).Items[0].ID
	}
	auditedBefore := newestAudit()
	for _, want := range []kycd.Found{
		{Kind: kycd.FoundSession, ID: sessionID},
		{Kind: kycd.FoundSubject, ID: subjectID},
		{Kind: kycd.FoundEvent, ID: eventID},
		{Kind: kycd.FoundNotification, ID: claimed[2].NotificationID},
		{Kind: kycd.FoundDelivery, ID: claimed[2].ID},
		{Kind: kycd.FoundQuarantined, ID: q.ID},
	} {
		for _, query := range []string{want.ID, strings.ToUpper(want.ID), want.ID[:8]} {
			res := decode[app.SearchResult](t, v.do(t, h, 200, "GET", "/api/v1/search?q="+url.QueryEscape(query), nil, viewer...))
			var hit *kycd.Found
			for i, f := range res.Items {
				if f.Kind == want.Kind && f.ID == want.ID {
					hit = &res.Items[i]
				}
			}
			if hit == nil {
				t.Errorf("search %q as a viewer = %+v, lacking %s %s", query, res.Items, want.Kind, want.ID)
				continue
			}
			if got := v.do(t, h, 200, "GET", hit.API, nil, viewer...).Body.String(); strings.Contains(got, `"body"`) || strings.Contains(got, `"originalBody"`) {
				t.Errorf("%s, the API path of a %s hit, shows a viewer a body: %s", hit.API, hit.Kind, got)
			}
		}
	}
	for _, bad := range []string{"q=550e840", "q=ana.garcia%40example.com", ""} {
		p := decode[server.Problem](t, v.do(t, h, 400, "GET", "/api/v1/search?"+bad, nil, viewer...))
		if !strings.Contains(p.Detail, "8") {
			t.Errorf("search ?%s answers %q; want it to say a search takes 8 digits", bad, p.Detail)
		}
	}
	if nothing := decode[app.SearchResult](t, v.do(t, h, 200, "GET", "/api/v1/search?q="+unknownID, nil, viewer...)); len(nothing.Items) != 0 {
		t.Errorf("search of an unknown id = %+v, want nothing", nothing)
	}
	if after := newestAudit(); after != auditedBefore {
		t.Errorf("the viewer's searches added audit entries (newest id %d, was %d)", after, auditedBefore)
	}
	operator := []string{"Authorization", operatorBearer}
	if who := decode[server.Whoami](t, v.do(t, h, 200, "GET", "/api/v1/whoami", nil, viewer...)); who.Name != "support" || who.Role != kycd.RoleViewer {
		t.Errorf("whoami with the viewer token = %+v", who)
	}
	if who := decode[server.Whoami](t, v.do(t, h, 200, "GET", "/api/v1/whoami", nil, auth...)); who.Name != "admin" || who.Role != kycd.RoleAdmin {
		t.Errorf("whoami with the admin token = %+v", who)
	}
	v.do(t, h, 200, "GET", "/api/v1/sessions/"+sessionID, nil, viewer...)
	invitedDeliveries := decode[struct{ Items []*kycd.Delivery }](t, v.do(t, h, 200, "GET", "/api/v1/deliveries?limit=500", nil, viewer...))
	for _, d := range invitedDeliveries.Items {
		if d.NotificationType != kycd.NotifySessionInvited {
			continue
		}
		if got := v.do(t, h, 200, "GET", "/api/v1/deliveries/"+d.ID, nil, viewer...); strings.Contains(got.Body.String(), "invitation") {
			t.Errorf("a viewer reads an invitation's contact data: %s", got.Body)
		}
		if got := v.do(t, h, 200, "GET", "/api/v1/deliveries/"+d.ID, nil, auth...); !strings.Contains(got.Body.String(), `"invitation"`) {
			t.Errorf("an admin does not read an invitation's contact data: %s", got.Body)
		}
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/events/" + eventID},
		{"GET", "/api/v1/quarantine/" + q.ID},
		{"POST", "/api/v1/quarantine/" + q.ID + "/replay"},
		{"POST", "/api/v1/deliveries/" + claimed[1].ID + "/retry"},
		{"POST", "/api/v1/deliveries/" + claimed[1].ID + "/move"},
		{"POST", "/api/v1/deliveries/" + claimed[1].ID + "/drop"},
		{"POST", "/api/v1/sinks/crm/resume"},
		{"GET", "/api/v1/subjects/" + subjectID + "/export"},
		{"DELETE", "/api/v1/subjects/" + subjectID},
		{"GET", "/api/v1/tokens"},
		{"POST", "/api/v1/tokens"},
		{"DELETE", "/api/v1/tokens/ops"},
		{"GET", "/api/v1/audit"},
	} {
		v.do(t, h, 403, r.method, r.path, nil, viewer...)
	}
	v.do(t, h, 202, "POST", "/api/v1/deliveries/"+claimed[1].ID+"/retry", nil, operator...)
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/events/" + eventID},
		{"GET", "/api/v1/subjects/" + subjectID + "/export"},
		{"DELETE", "/api/v1/subjects/" + subjectID},
		{"GET", "/api/v1/tokens"},
		{"GET", "/api/v1/audit"},
	} {
		v.do(t, h, 403, r.method, r.path, nil, operator...)
	}

	// Tokens.
	created := decode[server.CreatedToken](t, v.do(t, h, 201, "POST", "/api/v1/tokens", []byte(`{"name":"ci","role":"operator"}`), jsonBody...))
	if created.Name != "ci" || created.Role != kycd.RoleOperator || len(created.Secret) < 40 {
		t.Errorf("created token = %+v", created)
	}
	v.do(t, h, 409, "POST", "/api/v1/tokens", []byte(`{"name":"ci","role":"viewer"}`), jsonBody...)
	for _, body := range []string{`{"name":"CI","role":"viewer"}`, `{"name":"x","role":"root"}`, `not json`} {
		v.do(t, h, 400, "POST", "/api/v1/tokens", []byte(body), jsonBody...)
	}
	tokens := decode[struct{ Items []kycd.Token }](t, v.do(t, h, 200, "GET", "/api/v1/tokens", nil, auth...))
	if len(tokens.Items) != 3 || strings.Contains(fmt.Sprint(tokens), created.Secret) {
		t.Errorf("tokens = %+v, want ci, ops and support, without secrets", tokens.Items)
	}
	v.do(t, h, 204, "DELETE", "/api/v1/tokens/ci", nil, auth...)
	v.do(t, h, 404, "DELETE", "/api/v1/tokens/ci", nil, auth...)
	v.do(t, h, 401, "GET", "/api/v1/whoami", nil, "Authorization", "Bearer "+created.Secret)

	// Export and erasure of the seeded user.
	export := decode[kycd.SubjectExport](t, v.do(t, h, 200, "GET", "/api/v1/subjects/"+subjectID+"/export?type=user", nil, auth...))
	if len(export.Sessions) == 0 || len(export.Events) == 0 || len(export.Events[0].Body) == 0 || len(export.Notifications) == 0 {
		t.Errorf("export = %+v, want sessions, events with bodies, notifications", export)
	}
	v.do(t, h, 400, "GET", "/api/v1/subjects/"+subjectID+"/export?type=people", nil, auth...)
	receipt := decode[kycd.ErasureReceipt](t, v.do(t, h, 200, "DELETE", "/api/v1/subjects/"+subjectID, nil, auth...))
	if receipt.Subject.ID != subjectID || receipt.Erased.EventBodies == 0 || receipt.NotificationID == "" {
		t.Errorf("erasure receipt = %+v", receipt)
	}
	v.do(t, h, 400, "DELETE", "/api/v1/subjects/"+subjectID+"?type=people", nil, auth...)
	if ev := decode[kycd.EventRecord](t, v.do(t, h, 200, "GET", "/api/v1/events/"+eventID, nil, auth...)); ev.Body != nil {
		t.Errorf("an erased event still shows its body: %s", ev.Body)
	}

	// The audit trail holds each of these, refusals too.
	trail := decode[kycd.AuditPage](t, v.do(t, h, 200, "GET", "/api/v1/audit?limit=500", nil, auth...))
	seen := map[string]bool{}
	for _, e := range trail.Items {
		seen[e.Actor+" "+e.Action+" "+e.Outcome] = true
	}
	for _, want := range []string{"support event.read refused", "support subject.erase refused", "support delivery.retry refused",
		"ops delivery.retry ok", "ops subject.erase refused", "admin subject.export ok", "admin subject.erase ok", "admin token.create ok",
		"admin token.create failed", "admin token.revoke ok", "admin delivery.read ok", "admin event.read ok"} {
		if !seen[want] {
			t.Errorf("the audit trail lacks %q", want)
		}
	}
	refused := decode[kycd.AuditPage](t, v.do(t, h, 200, "GET", "/api/v1/audit?actor=support&action=subject.erase&target=subject:&limit=1", nil, auth...))
	if len(refused.Items) != 1 || refused.Items[0].Outcome != kycd.AuditRefused || refused.Items[0].Target != "subject:"+subjectID {
		t.Errorf("the viewer's erasure = %+v", refused.Items)
	}
	firstAudit := decode[kycd.AuditPage](t, v.do(t, h, 200, "GET", "/api/v1/audit?limit=1", nil, auth...))
	v.do(t, h, 200, "GET", "/api/v1/audit?limit=1&cursor="+firstAudit.NextCursor, nil, auth...)
	for _, q := range []string{"cursor=zzz", "limit=0"} {
		v.do(t, h, 400, "GET", "/api/v1/audit?"+q, nil, auth...)
	}

	// Unknown ids, and no token, on every route that takes them.
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			p := strings.NewReplacer("{id}", unknownID, "{name}", "nobody").Replace(path)
			if strings.HasPrefix(path, "/api/v1/") && path != "/api/v1/openapi.json" {
				v.do(t, h, 401, method, p, nil)
				v.do(t, h, 401, method, p, nil, "Authorization", "Bearer wrong")
			}
			if strings.Contains(path, "{id}") {
				v.do(t, h, 404, method, p, nil, auth...)
			}
		}
	}

	// Operations, and the document itself, without a token.
	v.do(t, h, 200, "GET", "/healthz", nil)
	v.do(t, h, 200, "GET", "/readyz", nil)
	v.do(t, h, 200, "GET", "/metrics", nil)
	served := v.do(t, h, 200, "GET", "/api/v1/openapi.json", nil)
	if file, _ := os.ReadFile("openapi.json"); !bytes.Equal(served.Body.Bytes(), file) {
		t.Error("GET /api/v1/openapi.json does not serve server/openapi.json")
	}

	// Shutting down: the webhook and /readyz answer 503 with Retry-After.
	draining.Store(true)
	v.do(t, h, 503, "POST", "/webhooks/ralio", first, signed(first)...)
	v.do(t, h, 503, "GET", "/readyz", nil)
	draining.Store(false)

	// The store gone: every store-backed route answers a documented 503.
	store.Close()
	v.do(t, h, 503, "POST", "/webhooks/ralio", conflict, signed(conflict)...)
	v.do(t, h, 503, "GET", "/readyz", nil)
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			// whoami answers from the token alone, and the configured
			// admin token needs no store.
			if strings.HasPrefix(path, "/api/v1/") && path != "/api/v1/openapi.json" && path != "/api/v1/whoami" {
				var body []byte
				hdr := auth
				if method == "POST" && path == "/api/v1/tokens" {
					body, hdr = []byte(`{"name":"late","role":"viewer"}`), jsonBody
				}
				p := strings.NewReplacer("{id}", unknownID, "{name}", "nobody").Replace(path)
				if path == "/api/v1/search" {
					p += "?q=" + unknownID // without q, a 400 before any read
				}
				v.do(t, h, 503, method, p, body, hdr...)
			}
		}
	}

	// Every operation was seen answering 2xx.
	for path, item := range v.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				if code[0] == '2' && !v.seen[method+" "+path+" "+code] {
					t.Errorf("%s %s %s: never exercised", method, path, code)
				}
			}
		}
	}
}

// TestAPIAnswersAreNotStored sends every operation of the document, with
// the admin token and without one, and wants every answer, data or
// problem, marked Cache-Control: no-store: an answer may hold personal
// data, which no cache may keep.
func TestAPIAnswersAreNotStored(t *testing.T) {
	doc := loadSpec(t)
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/api/") {
			continue
		}
		url := wildcardRE.ReplaceAllString(path, "x")
		for method := range item.Operations() {
			for _, hdr := range [][]string{{"Authorization", bearer, "Content-Type", "application/json"}, nil} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, newRequest(method, url, []byte("{}"), hdr))
				if got := rec.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("%s %s (token %v) = %d with Cache-Control %q, want no-store", method, url, hdr != nil, rec.Code, got)
				}
			}
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest(http.MethodGet, "/api/v1/no-such-thing", nil, []string{"Authorization", bearer}))
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("an unknown API path answered %d with Cache-Control %q, want no-store", rec.Code, got)
	}
}
