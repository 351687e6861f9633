package main

// A person known to kycd only through a quarantined body (issue 15): their
// event was refused, so no session, level or event names them, but the
// body holds their contact details for the quarantine's retention. The
// export and the erasure reach it, through the API and the CLI.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// quarantineOnlyEmail is what the refused bodies say about their person.
const quarantineOnlyEmail = "zoe@example.com"

// quarantineOnlyRun refuses a body naming a user by id and e-mail (its
// event id is no UUID), then exports and erases that user through the API
// and another the same way through the CLI on database db, and checks
// each answer, the items left and the audit trail. It returns what it saw,
// for the fault suite's row.
func quarantineOnlyRun(t *testing.T, s *kycdServer, db string) string {
	t.Helper()
	refuse := func(user string) {
		t.Helper()
		body := fmt.Appendf(nil, `{"eventId":"not-a-uuid","eventType":"user.kyc_session_created","data":{"user":{"id":%q,"email":%q}}}`,
			strings.ToUpper(user), quarantineOnlyEmail)
		wantProblem(t, s.post(t, body), http.StatusBadRequest)
	}
	type exported struct {
		Subject    struct{ Type, ID string }
		Sessions   []json.RawMessage
		Events     []json.RawMessage
		Quarantine []struct {
			ID, Reason, ReplayResult string
			Body                     *string
		}
	}
	export := func(a answer) exported {
		t.Helper()
		var x exported
		if a.status != http.StatusOK || json.Unmarshal(a.body, &x) != nil {
			t.Fatalf("export = %s", a)
		}
		return x
	}
	var seen []string
	byAPI, byCLI := uuid.NewString(), uuid.NewString()
	refuse(byAPI)
	refuse(byCLI)

	// Without a type: a body does not say it.
	p := wantProblem(t, s.api(t, http.MethodGet, "/api/v1/subjects/"+byAPI+"/export"), http.StatusBadRequest)
	if !strings.Contains(p.Detail, "only through quarantined bodies") {
		t.Errorf("export without a type: %+v", p)
	}
	wantProblem(t, s.api(t, http.MethodDelete, "/api/v1/subjects/"+byAPI), http.StatusBadRequest)
	if _, err := cli(t, "subjects", "export", byCLI, "--database", db); err == nil || !strings.Contains(err.Error(), "give it") {
		t.Errorf("kycd subjects export without --type: %v", err)
	}
	seen = append(seen, "no type: 400, and the CLI says to give it")
	// An id no body names is not found, whatever the type.
	nowhere := uuid.NewString()
	wantProblem(t, s.api(t, http.MethodGet, "/api/v1/subjects/"+nowhere+"/export?type=user"), http.StatusNotFound)
	wantProblem(t, s.api(t, http.MethodDelete, "/api/v1/subjects/"+nowhere), http.StatusNotFound)
	if _, err := cli(t, "subjects", "erase", nowhere, "--type", "user", "--yes", "--database", db); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("kycd subjects erase of an id named nowhere: %v", err)
	}
	seen = append(seen, "an id named nowhere: 404")

	// The export holds the body; the erasure empties it; a second export
	// shows the item, erased.
	before := []exported{export(s.api(t, http.MethodGet, "/api/v1/subjects/"+byAPI+"/export?type=user"))}
	var x exported
	if err := json.Unmarshal([]byte(mustCLI(t, "subjects", "export", byCLI, "--type", "user", "--database", db)), &x); err != nil {
		t.Fatal(err)
	}
	before = append(before, x)
	for i, x := range before {
		if x.Subject.Type != kycd.SubjectUser || x.Subject.ID != []string{byAPI, byCLI}[i] || len(x.Sessions) != 0 || len(x.Events) != 0 ||
			len(x.Quarantine) != 1 || x.Quarantine[0].Reason != kycd.QuarantineInvalid || x.Quarantine[0].Body == nil ||
			!strings.Contains(*x.Quarantine[0].Body, quarantineOnlyEmail) {
			t.Errorf("export %d = %+v, want the user with the refused body alone", i, x)
		}
	}
	seen = append(seen, "export: 200, the body with the e-mail")

	erase := s.api(t, http.MethodDelete, "/api/v1/subjects/"+byAPI+"?type=user")
	var receipt struct {
		Erased         map[string]int
		NotificationID string
	}
	if erase.status != http.StatusOK || json.Unmarshal(erase.body, &receipt) != nil || receipt.Erased["quarantine"] != 1 || receipt.NotificationID == "" {
		t.Errorf("erasure = %s", erase)
	}
	if out := mustCLI(t, "subjects", "erase", byCLI, "--type", "user", "--yes", "--database", db); !strings.Contains(out, "1 quarantined bodies") {
		t.Errorf("kycd subjects erase:\n%s", out)
	}
	seen = append(seen, "erasure: 200, 1 quarantined body, kyc.subject.erased notified")

	after := []answer{s.api(t, http.MethodGet, "/api/v1/subjects/"+byAPI+"/export?type=user"), {status: http.StatusOK,
		body: []byte(mustCLI(t, "subjects", "export", byCLI, "--type", "user", "--database", db))}}
	for i, a := range after {
		x := export(a)
		if strings.Contains(string(a.body), quarantineOnlyEmail) || len(x.Quarantine) != 1 || x.Quarantine[0].ReplayResult != kycd.ErasedReplayResult ||
			x.Quarantine[0].ID != before[i].Quarantine[0].ID {
			t.Errorf("export %d after the erasure = %s, want the item, erased", i, a.body)
		}
	}
	seen = append(seen, "export again: the item, erased, no e-mail")

	for _, c := range []struct{ user, actor string }{{byAPI, "admin"}, {byCLI, "cli:"}} {
		var actions []string
		for _, e := range s.auditTrail(t, "&target=subject:user:"+c.user) {
			if strings.HasPrefix(e.Actor, c.actor) {
				actions = append(actions, e.Action+" "+e.Outcome+" "+e.Detail)
			}
		}
		want := []string{
			"subject.export ok sessions=0 events=0 notifications=0 quarantine=1",
			"subject.erase ok eventBodies=0 sessions=0 notifications=0 quarantine=1",
			"subject.export ok sessions=0 events=0 notifications=0 quarantine=1",
		}
		if strings.Join(actions, "\n") != strings.Join(want, "\n") {
			t.Errorf("the audit trail of %s by %s, newest first:\n%s\nwant\n%s", c.user, c.actor, strings.Join(actions, "\n"), strings.Join(want, "\n"))
		}
	}
	seen = append(seen, "audited as for a known subject")
	return strings.Join(seen, "; ")
}

// TestQuarantineOnlySubject: on SQLite, through the API and the CLI.
func TestQuarantineOnlySubject(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	quarantineOnlyRun(t, s, "sqlite:"+s.DB)
}

// quarantineOnlyScenario runs quarantineOnlyRun on both stores.
func quarantineOnlyScenario(t *testing.T, _ string, rows *scenarioRows) {
	var per []string
	for _, store := range []string{"SQLite", "PostgreSQL"} {
		ok := t.Run(store, func(t *testing.T) {
			if store == "SQLite" {
				s := startServer(t)
				per = append(per, store+": "+quarantineOnlyRun(t, s, "sqlite:"+s.DB))
				return
			}
			if os.Getenv("KYCD_TEST_POSTGRES") == "" && os.Getenv("KYCD_TEST_REQUIRE_SERVICES") != "1" {
				rows.report.skip("a quarantine-only subject on PostgreSQL", "KYCD_TEST_POSTGRES not set")
				t.Skip("KYCD_TEST_POSTGRES not set")
			}
			db := postgrestest.URL(t)
			s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", db, "--ralio-secret", testSecret, "--admin-token", testToken)
			s.Secret, s.Token = testSecret, testToken
			per = append(per, store+": "+quarantineOnlyRun(t, s, db))
		})
		if !ok {
			per = append(per, store+": failed")
		}
	}
	observed := strings.Join(per, " — ")
	if len(per) == 2 && strings.TrimPrefix(per[0], "SQLite: ") == strings.TrimPrefix(per[1], "PostgreSQL: ") {
		observed = "both stores: " + strings.TrimPrefix(per[0], "SQLite: ")
	}
	rows.add(t, faultRow{
		Fault: "a person known only through a quarantined body (a refused event naming a user by id and e-mail), exported and erased " +
			"through the API and `kycd subjects export|erase`",
		Expected: "without a type 400 (a body does not say it); an id no body names 404; with `type=user` the export holds the body, " +
			"the erasure empties it (kyc.subject.erased notified) and a later export shows the item erased; audited as for a known subject",
		Observed: observed,
	})
}
