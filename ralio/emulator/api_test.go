package emulator_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
)

const ralioTime = "2006-01-02T15:04:05.000Z"

// keys returns the sorted field names of a JSON object.
func keys(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%v in %s", err, raw)
	}
	return slices.Sorted(maps.Keys(m))
}

func wantKeys(t *testing.T, what string, raw []byte, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(t, raw); !slices.Equal(got, want) {
		t.Errorf("%s has fields %v, want %v (CONTRACT.md)", what, got, want)
	}
}

func TestCreateSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "http://127.0.0.1:1/webhooks/ralio", nil)
	var raw json.RawMessage
	f.must(t, http.MethodPost, "/api/v1/account/users/"+userID+"/identity-verifications", nil, http.StatusCreated, &raw)
	wantKeys(t, "a created session", raw, "id", "state", "type", "created_at", "updated_at", "expiresAt", "hostedUrl", "flow", "data")
	var s sessionJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if _, err := uuid.Parse(s.ID); err != nil {
		t.Errorf("id %q is not a UUID", s.ID)
	}
	want := sessionJSON{
		ID: s.ID, State: "NOT_STARTED", Type: "KYC", Flow: "default", Data: json.RawMessage(`{}`),
		CreatedAt: t0.Format(ralioTime), UpdatedAt: t0.Format(ralioTime),
		ExpiresAt: t0.Add(7 * 24 * time.Hour).Format(ralioTime), HostedURL: f.URL + "/hosted/" + s.ID,
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("created session = %+v\nwant %+v", s, want)
	}

	// The hosted URL answers, as the page a user is sent to.
	if status, body := f.call(t, http.MethodGet, "/hosted/"+s.ID, "", nil); status != http.StatusOK {
		t.Errorf("GET hostedUrl = %d %s", status, body)
	}

	// Type, flow and data may be chosen; unknown fields are refused.
	var custom sessionJSON
	f.must(t, http.MethodPost, "/api/v1/account/users/"+userID+"/identity-verifications",
		`{"type":"KYC_LIGHT","flow":"mobile","data":{"ref":"A-1"}}`, http.StatusCreated, &custom)
	if custom.Type != "KYC_LIGHT" || custom.Flow != "mobile" || string(custom.Data) != `{"ref":"A-1"}` {
		t.Errorf("session created with type, flow and data = %+v", custom)
	}
	f.must(t, http.MethodPost, "/api/v1/account/users/"+userID+"/identity-verifications", `{"flw":"x"}`, http.StatusBadRequest, nil)
	f.must(t, http.MethodPost, "/api/v1/account/users/not-a-uuid/identity-verifications", nil, http.StatusBadRequest, nil)
}

func TestAPIKeyRequired(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "http://127.0.0.1:1/webhooks/ralio", nil)
	for _, path := range []string{
		"/api/v1/account/users/" + userID + "/identity-verifications",
		"/api/v1/account/business-user/" + userID + "/kyb-sessions",
		"/api/v1/not-an-endpoint",
	} {
		for _, key := range []string{"", "wrong-key"} {
			status, body := f.call(t, http.MethodGet, path, key, nil)
			if status != http.StatusUnauthorized {
				t.Errorf("GET %s with key %q = %d %s, want 401", path, key, status, body)
				continue
			}
			wantKeys(t, "a 401", body, "statusCode", "error", "message")
		}
	}
	if status, body := f.call(t, http.MethodGet, "/api/v1/account/users/"+userID+"/identity-verifications", testAPIKey, nil); status != http.StatusOK {
		t.Errorf("GET with the API key = %d %s, want 200", status, body)
	}
	// The control API is open, outside Ralio's paths.
	if status, body := f.call(t, http.MethodGet, "/emulator/v1/deliveries", "", nil); status != http.StatusOK {
		t.Errorf("GET /emulator/v1/deliveries without a key = %d %s, want 200", status, body)
	}
}

type listJSON struct {
	Data       []sessionJSON `json:"data"`
	Pagination struct {
		Page     int  `json:"page"`
		PageSize int  `json:"pageSize"`
		NumPages int  `json:"numPages"`
		Total    int  `json:"total"`
		Next     *int `json:"next"`
		Previous *int `json:"previous"`
	} `json:"pagination"`
}

func intp(i int) *int { return &i }

func TestListSessionsPaginates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "http://127.0.0.1:1/webhooks/ralio", nil)
	var created []string
	for range 25 {
		f.clock.Add(time.Second)
		created = append(created, f.newSession(t, userID).ID)
	}
	f.newSession(t, otherUser)
	list := "/api/v1/account/users/" + userID + "/identity-verifications"

	var raw json.RawMessage
	f.must(t, http.MethodGet, list+"?page=1&pageSize=10", nil, http.StatusOK, &raw)
	wantKeys(t, "a list", raw, "data", "pagination")
	var first struct {
		Data       []json.RawMessage `json:"data"`
		Pagination json.RawMessage   `json:"pagination"`
	}
	if err := json.Unmarshal(raw, &first); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	wantKeys(t, "pagination", first.Pagination, "page", "pageSize", "numPages", "total", "next", "previous")
	wantKeys(t, "a listed session", first.Data[0], "id", "state", "type", "created_at", "updated_at", "expiresAt", "hostedUrl", "flow", "data")

	var seen []string
	for p, want := range []struct {
		n              int
		next, previous *int
	}{{10, intp(2), nil}, {10, intp(3), intp(1)}, {5, nil, intp(2)}} {
		var l listJSON
		f.must(t, http.MethodGet, fmt.Sprintf("%s?page=%d&pageSize=10", list, p+1), nil, http.StatusOK, &l)
		pg := l.Pagination
		if len(l.Data) != want.n || pg.Page != p+1 || pg.PageSize != 10 || pg.NumPages != 3 || pg.Total != 25 ||
			!reflect.DeepEqual(pg.Next, want.next) || !reflect.DeepEqual(pg.Previous, want.previous) {
			t.Errorf("page %d: %d items, pagination %+v (next %v, previous %v); want %d items of 25 in 3 pages, next %v, previous %v",
				p+1, len(l.Data), pg, deref(pg.Next), deref(pg.Previous), want.n, deref(want.next), deref(want.previous))
		}
		for _, s := range l.Data {
			seen = append(seen, s.ID)
		}
	}
	if !slices.Equal(seen, created) {
		t.Errorf("pages list %v, want every session once, oldest first: %v", seen, created)
	}

	var def, beyond, none listJSON
	f.must(t, http.MethodGet, list, nil, http.StatusOK, &def)
	if len(def.Data) != 20 || def.Pagination.PageSize != 20 || def.Pagination.Page != 1 {
		t.Errorf("default page: %d items, pagination %+v; want 20 items, page 1 of size 20", len(def.Data), def.Pagination)
	}
	f.must(t, http.MethodGet, list+"?page=4&pageSize=10", nil, http.StatusOK, &beyond)
	if len(beyond.Data) != 0 || beyond.Pagination.Next != nil || deref(beyond.Pagination.Previous) != 3 {
		t.Errorf("page past the end: %+v", beyond)
	}
	f.must(t, http.MethodGet, "/api/v1/account/users/"+uuid.NewString()+"/identity-verifications", nil, http.StatusOK, &none)
	if none.Data == nil || len(none.Data) != 0 || none.Pagination.Total != 0 || none.Pagination.NumPages != 0 {
		t.Errorf("a user without sessions: %+v, want an empty list", none)
	}
	var most listJSON
	f.must(t, http.MethodGet, list+"?pageSize=100", nil, http.StatusOK, &most)
	if len(most.Data) != 25 || most.Pagination.NumPages != 1 {
		t.Errorf("pageSize=100: %d items, %+v", len(most.Data), most.Pagination)
	}
	for _, q := range []string{"pageSize=101", "pageSize=0", "page=0", "page=x", "pageSize=-1"} {
		status, body := f.call(t, http.MethodGet, list+"?"+q, testAPIKey, nil)
		if status != http.StatusBadRequest {
			t.Errorf("?%s = %d %s, want 400", q, status, body)
		}
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

type checksJSON struct {
	SessionID string `json:"session_id"`
	Checks    []struct {
		ID             string          `json:"id"`
		Type           string          `json:"type"`
		State          string          `json:"state"`
		Data           json.RawMessage `json:"data"`
		CreatedAt      string          `json:"created_at"`
		UpdatedAt      string          `json:"updated_at"`
		RefusedReasons []struct {
			ID          string          `json:"id"`
			Type        string          `json:"type"`
			Code        string          `json:"code"`
			Message     string          `json:"message"`
			MappedError json.RawMessage `json:"mappedError"`
		} `json:"refused_reasons"`
	} `json:"checks"`
}

type historyJSON struct {
	Logs []struct {
		ID        string `json:"id"`
		NewState  string `json:"new_state"`
		CreatedAt string `json:"created_at"`
	} `json:"logs"`
}

func TestChecksAndStateHistory(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, nil)
	f := newFixture(t, recv.URL, nil)
	s := f.newSession(t, userID)
	base := "/api/v1/account/users/" + userID + "/identity-verifications/" + s.ID

	f.clock.Add(90 * time.Second)
	f.must(t, http.MethodPost, "/emulator/v1/sessions/"+s.ID+"/start", nil, http.StatusOK, nil)
	f.clock.Add(90 * time.Second)
	failed := f.outcome(t, s.ID, map[string]any{"event": "kyc_session_failed", "checks": []any{
		map[string]any{"type": "document-verification", "state": "Refused", "data": map[string]any{"provider": "MOCK"}, "reasons": []any{
			map[string]any{"type": "document", "code": "KYC.DOC.DETERIORATED", "message": "The document is damaged and cannot be read",
				"mappedError": map[string]any{"action": "RETRY", "category": "DOC", "code": "DOC_DAMAGED", "reason": "damaged"}},
		}},
		map[string]any{"type": "liveness", "state": "Validated"},
	}})
	failedAt := t0.Add(3 * time.Minute).Format(ralioTime)

	var raw json.RawMessage
	f.must(t, http.MethodGet, base+"/checks", nil, http.StatusOK, &raw)
	wantKeys(t, "checks", raw, "session_id", "checks")
	var c checksJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if c.SessionID != s.ID || len(c.Checks) != 2 {
		t.Fatalf("checks = %s", raw)
	}
	var first struct {
		Checks []json.RawMessage `json:"checks"`
	}
	if err := json.Unmarshal(raw, &first); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	wantKeys(t, "a check", first.Checks[0], "id", "type", "state", "data", "created_at", "updated_at", "refused_reasons")
	doc, live := c.Checks[0], c.Checks[1]
	if doc.Type != "document-verification" || doc.State != "Refused" || string(doc.Data) != `{"provider":"MOCK"}` ||
		doc.CreatedAt != failedAt || doc.UpdatedAt != failedAt || len(doc.RefusedReasons) != 1 {
		t.Errorf("refused check = %+v", doc)
	} else if r := doc.RefusedReasons[0]; r.Type != "document" || r.Code != "KYC.DOC.DETERIORATED" ||
		r.Message != "The document is damaged and cannot be read" || r.ID == "" ||
		string(r.MappedError) != `{"action":"RETRY","category":"DOC","code":"DOC_DAMAGED","reason":"damaged"}` {
		t.Errorf("refused reason = %+v", r)
	}
	if live.Type != "liveness" || live.State != "Validated" || string(live.Data) != `{}` || live.RefusedReasons == nil || len(live.RefusedReasons) != 0 {
		t.Errorf("validated check = %+v, want no refused_reasons ([])", live)
	}

	var h historyJSON
	f.must(t, http.MethodGet, base+"/state-history", nil, http.StatusOK, &raw)
	wantKeys(t, "state history", raw, "logs")
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	var states []string
	for _, l := range h.Logs {
		states = append(states, l.NewState+"@"+l.CreatedAt)
		if l.ID == "" || l.ID == failed {
			t.Errorf("log entry id %q: want its own id, not empty nor the webhook's", l.ID)
		}
	}
	want := []string{
		"NOT_STARTED@" + t0.Format(ralioTime),
		"STARTED@" + t0.Add(90*time.Second).Format(ralioTime),
		"REJECTED@" + failedAt,
	}
	if !slices.Equal(states, want) {
		t.Errorf("state history = %v, want %v", states, want)
	}

	// The webhook's timestamp is the created_at of the entry it announces.
	f.deliver(t)
	bodies := recv.received()
	if len(bodies) != 1 {
		t.Fatalf("receiver got %d webhooks, want 1", len(bodies))
	}
	ev, err := ralio.Parse(bodies[0])
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != failed || ev.Timestamp.Format(ralioTime) != h.Logs[2].CreatedAt {
		t.Errorf("webhook %s at %s; want %s at the history entry's created_at %s", ev.ID, ev.Timestamp.Format(ralioTime), failed, h.Logs[2].CreatedAt)
	}

	// A later outcome replaces the checks; the list shows the newest state.
	f.clock.Add(time.Hour)
	f.outcome(t, s.ID, map[string]any{"event": "kyc_session_verified"})
	f.must(t, http.MethodGet, base+"/checks", nil, http.StatusOK, &c)
	if len(c.Checks) != 2 || c.Checks[0].State != "Validated" || c.Checks[1].State != "Validated" {
		t.Errorf("checks after verification = %+v, want the default two Validated", c.Checks)
	}
	var l listJSON
	f.must(t, http.MethodGet, "/api/v1/account/users/"+userID+"/identity-verifications", nil, http.StatusOK, &l)
	verifiedAt := t0.Add(time.Hour + 3*time.Minute).Format(ralioTime)
	if len(l.Data) != 1 || l.Data[0].State != "VERIFIED" || l.Data[0].UpdatedAt != verifiedAt || l.Data[0].CreatedAt != t0.Format(ralioTime) {
		t.Errorf("listed session = %+v, want VERIFIED updated at %s", l.Data, verifiedAt)
	}

	// A session is found only under its own user.
	for _, path := range []string{
		"/api/v1/account/users/" + otherUser + "/identity-verifications/" + s.ID + "/checks",
		"/api/v1/account/users/" + otherUser + "/identity-verifications/" + s.ID + "/state-history",
		"/api/v1/account/users/" + userID + "/identity-verifications/" + uuid.NewString() + "/checks",
		"/api/v1/account/users/" + userID + "/identity-verifications/nope/state-history",
	} {
		status, body := f.call(t, http.MethodGet, path, testAPIKey, nil)
		if status != http.StatusNotFound {
			t.Errorf("GET %s = %d %s, want 404", path, status, body)
		}
	}
}

func TestKYBSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "http://127.0.0.1:1/webhooks/ralio", nil)
	business := uuid.NewString()
	for i := range 3 {
		f.clock.Add(time.Minute)
		body := map[string]any{"state": "VERIFIED", "documents": []any{map[string]any{"type": "ARTICLES", "n": i}}}
		f.must(t, http.MethodPost, "/emulator/v1/business-users/"+business+"/kyb-sessions", body, http.StatusCreated, nil)
	}
	list := "/api/v1/account/business-user/" + business + "/kyb-sessions"
	var raw json.RawMessage
	f.must(t, http.MethodGet, list+"?pageSize=2", nil, http.StatusOK, &raw)
	var l struct {
		Data []struct {
			ID        string          `json:"id"`
			KYBID     int64           `json:"kybId"`
			State     string          `json:"state"`
			Documents json.RawMessage `json:"documents"`
			CreatedAt string          `json:"createdAt"`
			UpdatedAt string          `json:"updatedAt"`
		} `json:"data"`
		Pagination struct {
			Total, NumPages int
		} `json:"pagination"`
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	var items struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if len(items.Data) != 2 || l.Pagination.Total != 3 || l.Pagination.NumPages != 2 {
		t.Fatalf("KYB list = %s, want 2 of 3 in 2 pages", raw)
	}
	wantKeys(t, "a KYB session", items.Data[0], "id", "kybId", "state", "documents", "createdAt", "updatedAt")
	k := l.Data[0]
	if k.KYBID == 0 || k.State != "VERIFIED" || string(k.Documents) != `[{"n":0,"type":"ARTICLES"}]` || k.CreatedAt != t0.Add(time.Minute).Format(ralioTime) {
		t.Errorf("KYB session = %+v", k)
	}
	var empty listJSON
	f.must(t, http.MethodGet, "/api/v1/account/business-user/"+uuid.NewString()+"/kyb-sessions", nil, http.StatusOK, &empty)
	if len(empty.Data) != 0 || empty.Pagination.Total != 0 {
		t.Errorf("unknown business: %+v, want an empty list", empty)
	}
	f.must(t, http.MethodPost, "/emulator/v1/business-users/"+business+"/kyb-sessions", `{"state":"DONE"}`, http.StatusBadRequest, nil)
}
