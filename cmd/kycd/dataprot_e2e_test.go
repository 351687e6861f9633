package main

// End-to-end tests of access and data protection (issue 9): named tokens
// with roles, the audit trail, export and erasure, through the real kycd
// serve, its API and its CLI.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kycd/kycd"
)

// auditView is an audit entry as the API and the CLI show it.
type auditView struct {
	ID      int64  `json:"id"`
	At      string `json:"at"`
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	Target  string `json:"target"`
	Remote  string `json:"remote"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail"`
}

// as calls the API with token.
func (s *kycdServer) as(t *testing.T, token, method, path string) answer {
	t.Helper()
	return s.mustDo(t, newRequest(method, s.URL+path, nil, http.Header{"Authorization": {"Bearer " + token}}))
}

// auditTrail reads the whole audit trail with the admin token.
func (s *kycdServer) auditTrail(t *testing.T, query string) []auditView {
	t.Helper()
	var page struct {
		Items []auditView `json:"items"`
	}
	s.getJSON(t, "/api/v1/audit?limit=500"+query, &page)
	return page.Items
}

// dbFiles are the files of a SQLite store: the projection, the event log,
// and their write-ahead logs.
func dbFiles(path string) []string {
	return []string{path, path + "-wal", path + "-log", path + "-log-wal"}
}

// TestRolesAreEnforcedAndAudited: a viewer reads a session and is refused
// a raw body, an export, a retry and an erasure; an operator retries but
// does not erase; the audit trail names each attempt's token.
func TestRolesAreEnforcedAndAudited(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	db := "sqlite:" + s.DB
	viewer := strings.TrimSpace(mustCLI(t, "tokens", "create", "support", "--role", "viewer", "--database", db))
	operator := strings.TrimSpace(mustCLI(t, "tokens", "create", "ops", "--role", "operator", "--database", db))
	if len(viewer) < 40 || len(operator) < 40 || viewer == operator || strings.ContainsAny(viewer, " \n") {
		t.Fatalf("kycd tokens create printed %q and %q, want one token each", viewer, operator)
	}
	if _, err := cli(t, "tokens", "create", "support", "--role", "admin", "--database", db); err == nil {
		t.Error("a second token named support was created")
	}
	if _, err := cli(t, "tokens", "create", "Bad Name", "--role", "viewer", "--database", db); err == nil {
		t.Error("a token named \"Bad Name\" was created")
	}

	var who struct{ Name, Role string }
	if a := s.as(t, viewer, http.MethodGet, "/api/v1/whoami"); a.status != http.StatusOK || json.Unmarshal(a.body, &who) != nil || who.Name != "support" || who.Role != "viewer" {
		t.Fatalf("whoami with the viewer token = %s", a)
	}
	if a := s.as(t, viewer, http.MethodGet, "/api/v1/sessions/"+failedSession); a.status != http.StatusOK || !bytes.Contains(a.body, []byte("REJECTED")) {
		t.Fatalf("a viewer reading a session = %s, want 200 REJECTED", a)
	}
	deliveries := s.deliveries(t, "")
	if len(deliveries) != 1 {
		t.Fatalf("%d deliveries, want 1", len(deliveries))
	}
	retry := "/api/v1/deliveries/" + deliveries[0].ID + "/retry"
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/events/" + failedEventID},
		{http.MethodGet, "/api/v1/subjects/" + failedUser + "/export"},
		{http.MethodPost, retry},
		{http.MethodDelete, "/api/v1/subjects/" + failedUser},
	} {
		p := wantProblem(t, s.as(t, viewer, r.method, r.path), http.StatusForbidden)
		if !strings.Contains(p.Detail, "support") || !strings.Contains(p.Detail, "viewer") {
			t.Errorf("%s %s: 403 detail %q does not say which token and role", r.method, r.path, p.Detail)
		}
	}
	if a := s.as(t, operator, http.MethodPost, retry); a.status != http.StatusAccepted {
		t.Errorf("an operator's retry = %s, want 202", a)
	}
	wantProblem(t, s.as(t, operator, http.MethodDelete, "/api/v1/subjects/"+failedUser), http.StatusForbidden)
	wantStatus(t, s.session(t, failedSession), "REJECTED") // nothing was erased

	got := map[string]auditView{}
	for _, e := range s.auditTrail(t, "") {
		got[e.Actor+" "+e.Action+" "+e.Outcome] = e
	}
	for _, want := range []struct{ key, target string }{
		{"support event.read refused", "event:" + failedEventID},
		{"support subject.export refused", "subject:" + failedUser},
		{"support delivery.retry refused", "delivery:" + deliveries[0].ID},
		{"support subject.erase refused", "subject:" + failedUser},
		{"ops delivery.retry ok", "delivery:" + deliveries[0].ID},
		{"ops subject.erase refused", "subject:" + failedUser},
	} {
		e, ok := got[want.key]
		if !ok || e.Target != want.target || e.At == "" || e.Remote != "127.0.0.1" {
			t.Errorf("audit entry %q = %+v (found %v), want target %s, a time and the remote address", want.key, e, ok, want.target)
		}
	}
	// The CLI reads the same trail, and records its own actions as cli:USER.
	var page struct{ Items []auditView }
	if err := json.Unmarshal([]byte(mustCLI(t, "audit", "list", "--actor", "support", "--json", "--database", db)), &page); err != nil || len(page.Items) != 4 {
		t.Fatalf("kycd audit list --actor support = %+v, %v; want the viewer's 4 refusals", page.Items, err)
	}
	text := mustCLI(t, "audit", "list", "--action", "token.create", "--database", db)
	if strings.Count(text, "token:support") != 2 || !strings.Contains(text, "cli:") || !strings.Contains(text, "failed") {
		t.Errorf("kycd audit list --action token.create does not show the CLI creating support, then failing to:\n%s", text)
	}

	// Tokens are listed without their secrets, and no file of the
	// database holds one in the clear.
	list := mustCLI(t, "tokens", "list", "--database", db)
	for _, want := range []string{"admin", "support", "viewer", "ops", "operator"} {
		if !strings.Contains(list, want) {
			t.Errorf("kycd tokens list lacks %q:\n%s", want, list)
		}
	}
	for _, secret := range []string{viewer, operator, testToken} {
		if strings.Contains(list, secret) {
			t.Errorf("kycd tokens list shows a token:\n%s", list)
		}
		for _, f := range dbFiles(s.DB) {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds a token in the clear", filepath.Base(f))
			}
		}
	}

	// A revoked token works no more.
	mustCLI(t, "tokens", "revoke", "support", "--database", db)
	wantProblem(t, s.as(t, viewer, http.MethodGet, "/api/v1/sessions/"+failedSession), http.StatusUnauthorized)
}

// The related party of c-related_party.kyc_session_created.json.
const (
	partyID      = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
	partySession = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"
	partyEventID = "e1d2c3b4-a596-4877-8695-a4b3c2d1e0f9"
)

// personal is what the invitation says about the related party.
var personal = []string{"ana@example.com", "+34900000000", "https://verify.example.com/session/6b7c8d9e", "1 Example Street"}

// holdsPersonal names the first of the party's personal data that b holds.
func holdsPersonal(b []byte) string {
	for _, p := range personal {
		if bytes.Contains(b, []byte(p)) {
			return p
		}
	}
	return ""
}

// TestExportThenEraseARelatedParty: the export taken before an erasure
// holds the party's contact details; after it, no API answer, CLI output,
// notification stored by kycd or file of the database does; the session
// still reads back with its status; the original webhook again is a
// duplicate; the sink was told kyc.subject.erased; the audit trail lists
// the export and the erasure.
func TestExportThenEraseARelatedParty(t *testing.T) {
	t.Parallel()
	m := newMerchant(t, testSinkSecret)
	s := startServer(t, "--sink", "http="+m.URL, "--sink-secret", testSinkSecret)
	db := "sqlite:" + s.DB
	invitation := example(t, "c-related_party.kyc_session_created.json")
	s.deliver(t, invitation)
	// A refused body that names the party is kept in quarantine.
	refused := []byte(fmt.Sprintf(`{"eventId":"not-a-uuid","eventType":"related_party.kyc_session_created","data":{"relatedParty":{"id":%q,"email":"ana@example.com"}}}`, partyID))
	wantProblem(t, s.post(t, refused), http.StatusBadRequest)
	// The merchant's notifications of a type. (The sample's invitation
	// expired long ago, so the watchdog may notify kyc.session.stalled
	// too, at a moment of its own.)
	ofType := func(typ string) []map[string]any {
		var out []map[string]any
		for _, n := range m.notifications() {
			if n["type"] == typ {
				out = append(out, n)
			}
		}
		return out
	}
	eventually(t, "the invitation to reach the merchant", func() bool { return len(ofType(kycd.NotifySessionInvited)) == 1 })

	// The export, before: everything, contact details included.
	export := s.api(t, http.MethodGet, "/api/v1/subjects/"+partyID+"/export")
	if export.status != http.StatusOK {
		t.Fatalf("export = %s", export)
	}
	for _, p := range personal[:3] {
		if !bytes.Contains(export.body, []byte(p)) {
			t.Errorf("the export lacks %q", p)
		}
	}
	var x struct {
		Subject       struct{ Type, ID string }
		Sessions      []sessionView
		Events        []eventView
		Notifications []struct {
			Type       string
			Deliveries []deliveryView
		}
		Quarantine []quarantineView
	}
	if err := json.Unmarshal(export.body, &x); err != nil {
		t.Fatal(err)
	}
	if x.Subject.Type != kycd.SubjectRelatedParty || len(x.Sessions) != 1 || x.Sessions[0].Status != "NOT_STARTED" || len(x.Events) != 1 ||
		len(x.Notifications) == 0 || x.Notifications[0].Type != kycd.NotifySessionInvited || len(x.Notifications[0].Deliveries) != 1 ||
		len(x.Quarantine) != 1 {
		t.Fatalf("export = %s", export.body)
	}
	if cliExport := mustCLI(t, "subjects", "export", partyID, "--database", db); !strings.Contains(cliExport, "ana@example.com") {
		t.Errorf("kycd subjects export lacks the e-mail address:\n%s", cliExport)
	}

	// The files hold the data now (so the search for it afterwards can
	// find it).
	found := ""
	for _, f := range dbFiles(s.DB) {
		if b, err := os.ReadFile(f); err == nil && found == "" {
			found = holdsPersonal(b)
		}
	}
	if found == "" {
		t.Fatal("no file of the database holds the party's e-mail address before the erasure")
	}

	// The erasure.
	erase := s.api(t, http.MethodDelete, "/api/v1/subjects/"+partyID)
	var receipt struct {
		Subject        struct{ Type, ID string }
		ErasedAt       string
		Erased         map[string]int
		NotificationID string
	}
	if erase.status != http.StatusOK || json.Unmarshal(erase.body, &receipt) != nil {
		t.Fatalf("erasure = %s", erase)
	}
	if receipt.Subject.ID != partyID || receipt.ErasedAt == "" || receipt.NotificationID == "" ||
		receipt.Erased["eventBodies"] != 1 || receipt.Erased["notifications"] != 1 || receipt.Erased["quarantine"] != 1 {
		t.Errorf("receipt = %s", erase.body)
	}
	eventually(t, "kyc.subject.erased to reach the merchant", func() bool { return len(ofType(kycd.NotifySubjectErased)) == 1 })
	n := ofType(kycd.NotifySubjectErased)[0]
	if sub, _ := n["subject"].(map[string]any); n["type"] != kycd.NotifySubjectErased || n["id"] != receipt.NotificationID ||
		sub["id"] != partyID || sub["type"] != kycd.SubjectRelatedParty || len(n) != 4 {
		t.Errorf("the merchant was told %v, want kyc.subject.erased with the subject only", n)
	}

	// The session still reads back, with its status.
	wantStatus(t, s.session(t, partySession), "NOT_STARTED")
	// The original webhook again: a duplicate, that brings nothing back.
	wantJSON(t, s.post(t, invitation), http.StatusOK, `{"received":true,"duplicate":true}`)

	// No API answer holds the party's personal data.
	var answers []answer
	for _, path := range []string{
		"/api/v1/sessions/" + partySession, "/api/v1/subjects/" + partyID, "/api/v1/events/" + partyEventID, "/api/v1/events",
		"/api/v1/subjects/" + partyID + "/export", "/api/v1/quarantine?all=1", "/api/v1/deliveries", "/api/v1/audit",
	} {
		answers = append(answers, s.api(t, http.MethodGet, path))
	}
	for _, q := range s.quarantine(t, "?all=1") {
		answers = append(answers, s.api(t, http.MethodGet, "/api/v1/quarantine/"+q.ID))
	}
	for _, d := range s.deliveries(t, "") {
		answers = append(answers, s.api(t, http.MethodGet, "/api/v1/deliveries/"+d.ID))
	}
	for _, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("an answer after the erasure: %s", a)
		}
		if p := holdsPersonal(a.body); p != "" {
			t.Errorf("an API answer after the erasure holds %q: %s", p, a.body)
		}
	}
	// No CLI output does.
	for _, args := range [][]string{
		{"sessions", "get", partySession}, {"subjects", "get", partyID}, {"subjects", "export", partyID},
		{"quarantine", "list", "--all"}, {"deliveries", "list"}, {"audit", "list"}, {"tokens", "list"},
	} {
		for _, format := range [][]string{nil, {"--json"}} {
			out := mustCLI(t, append(append(args, format...), "--database", db)...)
			if p := holdsPersonal([]byte(out)); p != "" {
				t.Errorf("kycd %s after the erasure prints %q:\n%s", strings.Join(args, " "), p, out)
			}
		}
	}
	for _, q := range s.quarantine(t, "?all=1") {
		if out := mustCLI(t, "quarantine", "show", q.ID, "--database", db); holdsPersonal([]byte(out)) != "" {
			t.Errorf("kycd quarantine show %s after the erasure:\n%s", q.ID, out)
		}
	}
	// No file of the database does.
	for _, f := range dbFiles(s.DB) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if p := holdsPersonal(b); p != "" {
			t.Errorf("%s still holds %q", filepath.Base(f), p)
		}
	}

	// The audit trail lists the export and the erasure: actor, time, target.
	trail := s.auditTrail(t, "&target=subject:related-party:"+partyID)
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Actor+" "+e.Action+" "+e.Outcome)
		if e.At == "" {
			t.Errorf("audit entry without a time: %+v", e)
		}
	}
	joined := strings.Join(actions, "\n")
	for _, want := range []string{"admin subject.erase ok", "admin subject.export ok"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the audit trail of the party lacks %q:\n%s", want, joined)
		}
	}
	if !strings.Contains(joined, "cli:") {
		t.Errorf("the CLI's export is not in the audit trail as cli:USER:\n%s", joined)
	}
}
