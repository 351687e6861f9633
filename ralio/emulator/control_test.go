package emulator_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
)

func TestOutcomeRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "http://127.0.0.1:1/webhooks/ralio", nil)
	s := f.newSession(t, userID)
	outcome := "/emulator/v1/sessions/" + s.ID + "/outcome"
	for _, c := range []struct {
		path, body string
		status     int
		says       string
	}{
		{outcome, `{"event":"kyc_session_approved"}`, 400, "event must be one of"},
		{outcome, `{}`, 400, "event must be one of"},
		{outcome, `{"event":"kyc_session_failed","chekcs":[]}`, 400, "unknown field"},
		{outcome, `{"event":"kyc_session_failed","checks":[{"type":"liveness","state":"Passed"}]}`, 400, "checks[0].state must be Refused or Validated"},
		{outcome, `{"event":"kyc_session_failed","checks":[{"state":"Refused"}]}`, 400, "checks[0].type is required"},
		{outcome, `{"event":"kyc_session_failed","checks":[{"type":"x","state":"Refused","reasons":[{"type":"document"}]}]}`, 400, "checks[0].reasons[0].code is required"},
		{outcome, `{"event":"kyc_session_verified","checks":[{"type":"x","state":"Validated","reasons":[{"code":"NO_MATCH"}]}]}`, 400, "only a Refused check has reasons"},
		{outcome, `{"event":"kyc_session_failed","userId":"` + otherUser + `"}`, 409, "belongs to user " + userID},
		{"/emulator/v1/sessions/" + uuid.NewString() + "/outcome", `{"event":"kyc_session_failed"}`, 404, "give userId"},
		{"/emulator/v1/sessions/" + uuid.NewString() + "/outcome", `{"event":"kyc_session_failed","userId":"x"}`, 400, "userId must be a UUID"},
		{"/emulator/v1/sessions/" + uuid.NewString() + "/outcome", `{"event":"kyc_session_failed","userId":"` + userID + `","relatedPartyId":"` + otherUser + `"}`, 400, "not both"},
		{"/emulator/v1/sessions/nope/outcome", `{"event":"kyc_session_failed"}`, 400, "sessionId must be a UUID"},
		{"/emulator/v1/users/" + userID + "/kyc-level", `{"level":"FULL"}`, 400, "level must be REGULAR or LIGHT"},
		{"/emulator/v1/business-users/" + userID + "/kyb-level", `{}`, 400, "level must be REGULAR or LIGHT"},
		{"/emulator/v1/users/" + userID + "/expiration-warning", `{"expirationDate":"15/06/2026"}`, 400, "expirationDate must be YYYY-MM-DD"},
		{"/emulator/v1/business-users/" + userID + "/related-parties", `{"relatedPartyId":"` + userID + `"}`, 409, "is a user"},
	} {
		status, body := f.call(t, http.MethodPost, c.path, "", c.body)
		if status != c.status || !strings.Contains(string(body), c.says) {
			t.Errorf("POST %s %s = %d %s, want %d saying %q", c.path, c.body, status, body, c.status, c.says)
		}
	}
	var d struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	f.must(t, http.MethodGet, "/emulator/v1/deliveries", nil, http.StatusOK, &d)
	if len(d.Deliveries) != 0 {
		t.Errorf("refused calls emitted webhooks: %+v", d.Deliveries)
	}
	var h historyJSON
	f.must(t, http.MethodGet, "/api/v1/account/users/"+userID+"/identity-verifications/"+s.ID+"/state-history", nil, http.StatusOK, &h)
	if len(h.Logs) != 1 {
		t.Errorf("refused outcomes changed the history: %+v", h.Logs)
	}
}

func TestOutcomeOpensAnUnknownSession(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, nil)
	f := newFixture(t, recv.URL, nil)
	sid := uuid.NewString()
	f.outcome(t, strings.ToUpper(sid), map[string]any{"event": "kyc_session_manual_review", "userId": userID})
	var l listJSON
	f.must(t, http.MethodGet, "/api/v1/account/users/"+userID+"/identity-verifications", nil, http.StatusOK, &l)
	if len(l.Data) != 1 || l.Data[0].ID != sid || l.Data[0].State != "REVIEW" || l.Data[0].HostedURL != f.URL+"/hosted/"+sid {
		t.Fatalf("sessions of the user = %+v, want %s in REVIEW", l.Data, sid)
	}
	var h historyJSON
	f.must(t, http.MethodGet, "/api/v1/account/users/"+userID+"/identity-verifications/"+sid+"/state-history", nil, http.StatusOK, &h)
	if len(h.Logs) != 2 || h.Logs[0].NewState != "NOT_STARTED" || h.Logs[1].NewState != "REVIEW" || h.Logs[0].CreatedAt >= h.Logs[1].CreatedAt {
		t.Errorf("history = %+v, want NOT_STARTED then REVIEW a millisecond later", h.Logs)
	}
	f.must(t, http.MethodPost, "/emulator/v1/sessions/"+sid+"/start", nil, http.StatusConflict, nil)
}

func TestTimestampsStrictlyIncrease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "http://127.0.0.1:1/webhooks/ralio", nil)
	s := f.newSession(t, userID)
	var stamps []string
	for _, ev := range []string{"kyc_session_failed", "kyc_session_verified", "kyc_session_manual_review"} {
		var a struct{ Timestamp string }
		f.must(t, http.MethodPost, "/emulator/v1/sessions/"+s.ID+"/outcome", map[string]any{"event": ev}, http.StatusOK, &a)
		stamps = append(stamps, a.Timestamp)
	}
	// The clock did not move: each fact is a millisecond after the last.
	want := []string{
		t0.Add(time.Millisecond).Format(ralioTime),
		t0.Add(2 * time.Millisecond).Format(ralioTime),
		t0.Add(3 * time.Millisecond).Format(ralioTime),
	}
	if strings.Join(stamps, " ") != strings.Join(want, " ") {
		t.Errorf("timestamps %v, want %v", stamps, want)
	}
}

func TestInvitation(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, nil)
	f := newFixture(t, recv.URL, nil)
	business := uuid.NewString()
	var a struct {
		EventID, Type, Timestamp, RelatedPartyID, SessionID, State, HostedURL, ExpiresAt string
	}
	f.must(t, http.MethodPost, "/emulator/v1/business-users/"+business+"/related-parties",
		`{"roleType":"DIRECTOR","firstName":"Rui","email":"rui@example.com"}`, http.StatusOK, &a)
	if a.Type != ralio.TypeRelatedPartyInvited || a.State != "NOT_STARTED" || a.Timestamp != t0.Format(ralioTime) ||
		a.ExpiresAt != t0.Add(7*24*time.Hour).Format(ralioTime) || a.HostedURL != f.URL+"/hosted/"+a.SessionID {
		t.Errorf("invitation answered %+v", a)
	}
	f.deliver(t)
	bodies := recv.received()
	if len(bodies) != 1 {
		t.Fatalf("%d webhooks, want 1", len(bodies))
	}
	ev, err := ralio.Parse(bodies[0])
	if err != nil {
		t.Fatal(err)
	}
	inv := ev.Invitation
	if ev.ID != a.EventID || ev.SessionID != a.SessionID || ev.Subject != (ralio.Subject{Type: ralio.SubjectRelatedParty, ID: a.RelatedPartyID}) ||
		inv == nil || inv.RoleType != "DIRECTOR" || inv.FirstName != "Rui" || inv.LastName != "Example" || inv.Email != "rui@example.com" ||
		inv.VerificationURL != a.HostedURL || !inv.ExpiresAt.Equal(t0.Add(7*24*time.Hour)) || inv.BusinessUserID == 0 {
		t.Errorf("invitation webhook parses to %+v / %+v", ev, inv)
	}

	// The party's sessions are listed under its id; it is the subject of
	// their outcomes.
	var l listJSON
	f.must(t, http.MethodGet, "/api/v1/account/users/"+a.RelatedPartyID+"/identity-verifications", nil, http.StatusOK, &l)
	if len(l.Data) != 1 || l.Data[0].ID != a.SessionID || l.Data[0].State != "NOT_STARTED" {
		t.Fatalf("the party's sessions = %+v", l.Data)
	}
	var h historyJSON
	f.must(t, http.MethodGet, "/api/v1/account/users/"+a.RelatedPartyID+"/identity-verifications/"+a.SessionID+"/state-history", nil, http.StatusOK, &h)
	if len(h.Logs) != 1 || h.Logs[0].CreatedAt != a.Timestamp {
		t.Errorf("history = %+v, want NOT_STARTED at the invitation's timestamp %s", h.Logs, a.Timestamp)
	}
	f.outcome(t, a.SessionID, map[string]any{"event": "kyc_session_verified"})
	f.deliver(t)
	ev, _ = ralio.Parse(recv.received()[1])
	if ev.Subject.Type != ralio.SubjectRelatedParty || ev.Subject.ID != a.RelatedPartyID {
		t.Errorf("the party's outcome is about %+v", ev.Subject)
	}
}

func TestLevelsAndWarnings(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, nil)
	f := newFixture(t, recv.URL, nil)
	business := uuid.NewString()
	f.must(t, http.MethodPost, "/emulator/v1/users/"+userID+"/kyc-level", `{"level":"light"}`, http.StatusOK, nil)
	f.must(t, http.MethodPost, "/emulator/v1/users/"+userID+"/kyc-level", `{"level":"REGULAR"}`, http.StatusOK, nil)
	f.must(t, http.MethodPost, "/emulator/v1/business-users/"+business+"/kyb-level", `{"level":"LIGHT"}`, http.StatusOK, nil)
	f.must(t, http.MethodPost, "/emulator/v1/users/"+userID+"/expiration-warning", nil, http.StatusOK, nil)
	f.must(t, http.MethodPost, "/emulator/v1/users/"+userID+"/expiration-warning", `{"expirationDate":"2026-03-27","action":"UPLOAD_NEW_ID"}`, http.StatusOK, nil)
	f.deliver(t)
	got := map[string]ralio.Event{}
	var kycIDs []int64
	for _, b := range recv.received() {
		ev, err := ralio.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		got[ev.Type+" "+ev.Level+" "+ev.Timestamp.Format(ralioTime)] = ev
		if ev.KYCID != 0 {
			kycIDs = append(kycIDs, ev.KYCID)
		}
	}
	stamp := func(ms int) string { return t0.Add(time.Duration(ms) * time.Millisecond).Format(ralioTime) }
	for _, k := range []string{
		"kyc_state_updated LIGHT " + stamp(0), "kyc_state_updated REGULAR " + stamp(1), "kyb_state_updated LIGHT " + stamp(2),
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("no webhook %q among %v", k, got)
		}
	}
	if ev := got["kyb_state_updated LIGHT "+stamp(2)]; ev.Subject != (ralio.Subject{Type: ralio.SubjectBusiness, ID: business}) || ev.KYBID == 0 {
		t.Errorf("kyb_state_updated = %+v", ev)
	}
	w1, w2 := got["kyc_expiration_warning  "+stamp(3)].Expiration, got["kyc_expiration_warning  "+stamp(4)].Expiration
	if w1 == nil || *w1 != (ralio.Expiration{Date: "2026-03-31", DaysRemaining: 14, Action: "RENEW_DOCUMENT"}) {
		t.Errorf("default expiration warning = %+v, want 14 days from 2026-03-17", w1)
	}
	if w2 == nil || *w2 != (ralio.Expiration{Date: "2026-03-27", DaysRemaining: 10, Action: "UPLOAD_NEW_ID"}) {
		t.Errorf("expiration warning = %+v", w2)
	}
	for _, id := range kycIDs {
		if id != kycIDs[0] {
			t.Errorf("one user has kycIds %v, want one", kycIDs)
			break
		}
	}
}
