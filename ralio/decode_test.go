package ralio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kycd/kycd/ralio"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// withoutData checks that ev.Data is body's data object and returns ev
// without it, so that events can be compared whatever the data's spelling.
func withoutData(t *testing.T, ev ralio.Event, body []byte) ralio.Event {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ev.Data, env["data"]) {
		t.Errorf("Data = %s, want %s", ev.Data, env["data"])
	}
	ev.Data = nil
	return ev
}

func TestParseTestdata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want ralio.Event
	}{
		{"a-kyc_session_failed.json", ralio.Event{
			ID: "550e8400-e29b-41d4-a716-446655440000", Type: ralio.TypeSessionFailed,
			Timestamp: at("2025-06-19T17:14:13.123Z"), Known: true,
			SessionID: "550e8400-e29b-41d4-a716-446655440002",
			Subject:   ralio.Subject{Type: ralio.SubjectUser, ID: "550e8400-e29b-41d4-a716-446655440001"},
			Checks: []ralio.Check{
				{Type: "document-verification", State: ralio.CheckRefused, Data: json.RawMessage(`{}`), Reasons: []ralio.Reason{
					{Type: "document", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired"},
				}},
				{Type: "face-matching", State: ralio.CheckRefused, Data: json.RawMessage(`{}`), Reasons: []ralio.Reason{
					{Type: "face-match", Code: "NO_MATCH", Message: "Face does not match the document photo"},
				}},
			},
		}},
		{"a-kyc_state_updated-snake.json", ralio.Event{
			ID: "8e9f0a1b-2c3d-4e5f-9a6b-7c8d9e0f1a2b", Type: ralio.TypeKYCStateUpdated,
			Timestamp: at("2025-06-19T17:20:01.004Z"), Known: true,
			Subject: ralio.Subject{Type: ralio.SubjectUser, ID: "550e8400-e29b-41d4-a716-446655440001"},
			Level:   ralio.LevelRegular, KYCID: 12345,
		}},
		{"a-kyc_session_verified.json", ralio.Event{
			ID: "550e8400-e29b-41d4-a716-446655440010", Type: ralio.TypeSessionVerified,
			Timestamp: at("2025-06-20T09:30:00.000Z"), Known: true,
			SessionID: "550e8400-e29b-41d4-a716-446655440012",
			Subject:   ralio.Subject{Type: ralio.SubjectUser, ID: "550e8400-e29b-41d4-a716-446655440001"},
			Checks: []ralio.Check{
				{Type: "document-verification", State: ralio.CheckValidated, Data: json.RawMessage(`{}`)},
				{Type: "face-matching", State: ralio.CheckValidated, Data: json.RawMessage(`{}`)},
			},
		}},
		{"a-kyc_state_updated.json", ralio.Event{
			ID: "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d", Type: ralio.TypeKYCStateUpdated,
			Timestamp: at("2025-06-19T17:20:01.004Z"), Known: true,
			Subject: ralio.Subject{Type: ralio.SubjectUser, ID: "550e8400-e29b-41d4-a716-446655440001"},
			Level:   ralio.LevelRegular, KYCID: 12345,
		}},
		{"a-viban_created.json", ralio.Event{
			ID: "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f", Type: "viban_created",
			Timestamp: at("2026-02-02T10:10:10.100Z"),
		}},
		{"b-kyc_expiration_warning.json", ralio.Event{
			ID: "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", Type: ralio.TypeKYCExpirationWarning,
			Timestamp: at("2026-06-01T08:00:00.000Z"), Known: true,
			Subject:    ralio.Subject{Type: ralio.SubjectUser, ID: "550e8400-e29b-41d4-a716-446655440001"},
			KYCID:      12345,
			Expiration: &ralio.Expiration{Date: "2026-06-15", DaysRemaining: 14, Action: "RENEW_DOCUMENT"},
		}},
		{"b-kyc_session_failed-related-party.json", ralio.Event{
			ID: "0f4b5e1c-7a2d-4c3e-9b1a-2d6e8f0a1b3c", Type: ralio.TypeSessionFailed,
			Timestamp: at("2026-03-17T16:52:40.918Z"), Known: true,
			SessionID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
			Subject:   ralio.Subject{Type: ralio.SubjectRelatedParty, ID: "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"},
			Checks: []ralio.Check{
				{Type: "document-verification", State: ralio.CheckRefused, Data: json.RawMessage(`{"provider": "MOCK"}`), Reasons: []ralio.Reason{
					{Type: "document", Code: "KYC.DOC.DETERIORATED", Message: "The document is damaged and cannot be read", Category: "DOC"},
				}},
				{Type: "liveness", State: ralio.CheckValidated, Data: json.RawMessage(`{"provider": "MOCK"}`)},
			},
		}},
		{"c-kyb_state_updated.json", ralio.Event{
			ID: "9f0a1b2c-3d4e-4f5a-8b6c-7d8e9f0a1b2c", Type: ralio.TypeKYBStateUpdated,
			Timestamp: at("2026-05-02T09:00:00.000Z"), Known: true,
			Subject: ralio.Subject{Type: ralio.SubjectBusiness, ID: "0a1b2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d"},
			Level:   ralio.LevelLight, KYBID: 778,
		}},
		{"c-kyc_session_expired.json", ralio.Event{
			ID: "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8c", Type: ralio.TypeSessionExpired,
			Timestamp: at("2026-03-24T16:41:28.447Z"), Known: true,
			SessionID: "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6f",
			Subject:   ralio.Subject{Type: ralio.SubjectUser, ID: "c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f"},
		}},
		{"c-kyc_session_manual_review.json", ralio.Event{
			ID: "7d1f2e3a-4b5c-4d6e-8f90-a1b2c3d4e5f6", Type: ralio.TypeSessionManualReview,
			Timestamp: at("2026-03-17T16:41:28.447Z"), Known: true,
			SessionID: "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
			Subject:   ralio.Subject{Type: ralio.SubjectUser, ID: "c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f"},
		}},
		{"c-related_party.kyc_session_created.json", ralio.Event{
			ID: "e1d2c3b4-a596-4877-8695-a4b3c2d1e0f9", Type: ralio.TypeRelatedPartyInvited,
			Timestamp: at("2026-04-29T12:50:22.227Z"), Known: true,
			SessionID: "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e",
			Subject:   ralio.Subject{Type: ralio.SubjectRelatedParty, ID: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"},
			Invitation: &ralio.Invitation{
				BusinessUserID: 4821, BusinessName: "Example Trading S.L.", RoleType: "UBO",
				FirstName: "Ana", LastName: "Example", Email: "ana@example.com", PhoneNumber: "+34900000000",
				VerificationURL: "https://verify.example.com/session/6b7c8d9e", Provider: "mati",
				ExpiresAt: at("2026-05-06T12:50:22.227Z"),
			},
		}},
	}

	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("testdata has %d events, the table %d: add the new ones", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body := readTestdata(t, tt.file)
			ev, err := ralio.Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := withoutData(t, ev, body); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestParseSpellings checks that every way Ralio has written the seed event
// decodes into the same Event.
func TestParseSpellings(t *testing.T) {
	t.Parallel()
	base := readTestdata(t, "a-kyc_session_failed.json")
	want, err := ralio.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	want = withoutData(t, want, base)

	const (
		checks = `[
			{"type":"document-verification","state":"Refused","data":{},"reasons":[{"type":"document","code":"EXPIRED_DOCUMENT","message":"The provided document has expired"}]},
			{"type":"face-matching","state":"Refused","data":{},"reasons":[{"type":"face-match","code":"NO_MATCH","message":"Face does not match the document photo"}]}]`
		intChecks = `[
			{"type":"document-verification","state":2,"data":{},"reasons":[{"type":"document","code":"EXPIRED_DOCUMENT","message":"The provided document has expired"}]},
			{"type":"face-matching","state":2,"data":{},"reasons":[{"type":"face-match","code":"NO_MATCH","message":"Face does not match the document photo"}]}]`
		session = `"550e8400-e29b-41d4-a716-446655440002"`
		user    = `"550e8400-e29b-41d4-a716-446655440001"`
	)
	bodies := map[string]string{
		"generation C envelope": `{"eventId":"550e8400-e29b-41d4-a716-446655440000","eventType":"kyc_session_failed","timestamp":"2025-06-19T17:14:13.123Z",
			"data":{"sessionId":` + session + `,"entityType":"user","userId":` + user + `,"checks":` + checks + `}}`,
		"snake_case envelope": `{"event_id":"550e8400-e29b-41d4-a716-446655440000","event_type":"kyc_session_failed","timestamp":"2025-06-19T17:14:13.123Z",
			"data":{"session_id":` + session + `,"entity_type":"user","user_id":` + user + `,"checks":` + checks + `}}`,
		"dotted name": `{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc.session_failed","timestamp":"2025-06-19T17:14:13.123Z",
			"data":{"sessionId":` + session + `,"userId":` + user + `,"checks":` + checks + `}}`,
		"integer states": `{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc_session_failed","timestamp":"2025-06-19T17:14:13.123Z",
			"data":{"sessionId":` + session + `,"userId":` + user + `,"checks":` + intChecks + `}}`,
		"lower-case state": `{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc_session_failed","timestamp":"2025-06-19T17:14:13.123Z",
			"data":{"sessionId":` + session + `,"userId":` + user + `,"checks":` + strings.ReplaceAll(checks, `"Refused"`, `"refused"`) + `}}`,
		"nested user, upper-case UUIDs, offset, both id spellings agreeing": `{"id":"550E8400-E29B-41D4-A716-446655440000","eventId":"550E8400-E29B-41D4-A716-446655440000",
			"event":"kyc_session_failed","timestamp":"2025-06-19T19:14:13.123+02:00",
			"data":{"sessionId":"550E8400-E29B-41D4-A716-446655440002","user":{"id":` + user + `},"checks":` + checks + `}}`,
		"unknown fields and nulls": `{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc_session_failed","timestamp":"2025-06-19T17:14:13.123Z",
			"version":3,"eventType":null,"data":{"sessionId":` + session + `,"userId":` + user + `,"relatedPartyId":null,"extra":{"a":[1,2]},"session_id":` + session + `,
			"checks":` + strings.ReplaceAll(checks, `"data":{},`, `"data":{},"id":7,"created_at":"x",`) + `}}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev, err := ralio.Parse([]byte(body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := withoutData(t, ev, []byte(body)); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseKYCStateSpellings(t *testing.T) {
	t.Parallel()
	snake := readTestdata(t, "a-kyc_state_updated-snake.json")
	want, err := ralio.Parse(snake)
	if err != nil {
		t.Fatal(err)
	}
	want = withoutData(t, want, snake)
	for _, data := range []string{
		`{"kycId":12345,"userId":"550e8400-e29b-41d4-a716-446655440001","state":"REGULAR"}`,
		`{"kycId":12345,"entityType":"user","userId":"550e8400-e29b-41d4-a716-446655440001","state":1}`,
		`{"kyc_id":12345,"user":{"id":"550e8400-e29b-41d4-a716-446655440001"},"state":"regular"}`,
	} {
		for _, typ := range []string{"kyc_state_updated", "kyc.state_updated"} {
			body := `{"id":"8e9f0a1b-2c3d-4e5f-9a6b-7c8d9e0f1a2b","event":"` + typ + `","timestamp":"2025-06-19T17:20:01.004Z","data":` + data + `}`
			ev, err := ralio.Parse([]byte(body))
			if err != nil {
				t.Errorf("Parse(%s): %v", body, err)
				continue
			}
			if got := withoutData(t, ev, []byte(body)); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%s) =\n%+v\nwant\n%+v", body, got, want)
			}
		}
	}
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	const (
		id   = `"id":"550e8400-e29b-41d4-a716-446655440000","timestamp":"2026-01-01T00:00:00Z"`
		sess = `"sessionId":"550e8400-e29b-41d4-a716-446655440002"`
		user = `"userId":"550e8400-e29b-41d4-a716-446655440001"`
		rp   = `"relatedPartyId":"3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"`
	)
	tests := []struct {
		name  string
		body  string
		check func(ralio.Event) bool
	}{
		{"unknown type without data", `{` + id + `,"event":"payment_received"}`,
			func(e ralio.Event) bool { return !e.Known && e.Type == "payment_received" && e.Data == nil }},
		{"unknown type keeps data unvalidated", `{` + id + `,"event":"viban_created","data":{"sessionId":"nope"}}`,
			func(e ralio.Event) bool { return !e.Known && string(e.Data) == `{"sessionId":"nope"}` }},
		{"unknown dotted type kept as sent", `{` + id + `,"event":"payment.received","data":{}}`,
			func(e ralio.Event) bool { return e.Type == "payment.received" && !e.Known }},
		{"all dotted names", `{` + id + `,"event":"kyc.session_verified","data":{` + sess + `,` + user + `}}`,
			func(e ralio.Event) bool { return e.Type == ralio.TypeSessionVerified && e.Known }},
		{"dotted expired", `{` + id + `,"event":"kyc.session_expired","data":{` + sess + `,` + user + `}}`,
			func(e ralio.Event) bool { return e.Type == ralio.TypeSessionExpired }},
		{"dotted manual review", `{` + id + `,"event":"kyc.session_manual_review","data":{` + sess + `,` + user + `}}`,
			func(e ralio.Event) bool { return e.Type == ralio.TypeSessionManualReview }},
		{"dotted kyb", `{` + id + `,"event":"kyb.state_updated","data":{` + user + `,"state":2}}`,
			func(e ralio.Event) bool { return e.Type == ralio.TypeKYBStateUpdated && e.Level == ralio.LevelLight }},
		{"dotted expiration warning", `{` + id + `,"event":"kyc.expiration_warning","data":{` + user + `,"expiration_date":"2026-02-28"}}`,
			func(e ralio.Event) bool {
				return e.Type == ralio.TypeKYCExpirationWarning && *e.Expiration == ralio.Expiration{Date: "2026-02-28"}
			}},
		{"without entityType relatedPartyId is the subject", `{` + id + `,"event":"kyc_session_verified","data":{` + sess + `,` + rp + `}}`,
			func(e ralio.Event) bool { return e.Subject.Type == ralio.SubjectRelatedParty }},
		{"without entityType userId wins", `{` + id + `,"event":"kyc_session_verified","data":{` + sess + `,` + rp + `,` + user + `}}`,
			func(e ralio.Event) bool { return e.Subject.Type == ralio.SubjectUser }},
		{"entityType chooses", `{` + id + `,"event":"kyc_session_verified","data":{` + sess + `,` + user + `,` + rp + `,"entity_type":"related_party"}}`,
			func(e ralio.Event) bool {
				return e.Subject == ralio.Subject{Type: ralio.SubjectRelatedParty, ID: "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"}
			}},
		{"nested related party", `{` + id + `,"event":"kyc_session_expired","data":{` + sess + `,"related_party":{"id":"3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"}}}`,
			func(e ralio.Event) bool { return e.Subject.Type == ralio.SubjectRelatedParty }},
		{"other check state kept, null reasons", `{` + id + `,"event":"kyc_session_manual_review","data":{` + sess + `,` + user + `,
			"checks":[{"type":"liveness","state":"Pending","reasons":null},{"type":"aml","state":"VALIDATED"}]}}`,
			func(e ralio.Event) bool {
				return len(e.Checks) == 2 && e.Checks[0].State == "Pending" && e.Checks[0].Reasons == nil &&
					e.Checks[0].Data == nil && e.Checks[1].State == ralio.CheckValidated
			}},
		{"null checks", `{` + id + `,"event":"kyc_session_verified","data":{` + sess + `,` + user + `,"checks":null}}`,
			func(e ralio.Event) bool { return e.Checks == nil }},
		{"minimal invitation", `{` + id + `,"event":"related_party.kyc_session_created","data":{"relatedParty":{"id":"3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"},
			"kyc_session":{"id":"550e8400-e29b-41d4-a716-446655440002"}}}`,
			func(e ralio.Event) bool {
				return e.SessionID == "550e8400-e29b-41d4-a716-446655440002" && *e.Invitation == ralio.Invitation{}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := ralio.Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(ev) {
				t.Errorf("Parse = %+v", ev)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	const (
		head   = `"id":"550e8400-e29b-41d4-a716-446655440000","timestamp":"2026-01-01T00:00:00Z"`
		failed = head + `,"event":"kyc_session_failed"`
		sess   = `"sessionId":"550e8400-e29b-41d4-a716-446655440002"`
		user   = `"userId":"550e8400-e29b-41d4-a716-446655440001"`
		uuid   = `"550e8400-e29b-41d4-a716-446655440009"`
	)
	check := func(c string) string {
		return `{` + failed + `,"data":{` + sess + `,` + user + `,"checks":[` + c + `]}}`
	}
	tests := []struct {
		name   string
		body   string
		fields []string
	}{
		{"empty", ``, []string{""}},
		{"white space", " \n\t", []string{""}},
		{"not JSON", `{"id":`, []string{""}},
		{"not JSON either", `id=1&event=x`, []string{""}},
		{"array", `[{` + failed + `}]`, []string{""}},
		{"string", `"hello"`, []string{""}},
		{"null", `null`, []string{""}},
		{"trailing garbage", `{` + head + `,"event":"x"} x`, []string{""}},
		{"two objects", `{` + head + `,"event":"x"}{}`, []string{""}},
		{"empty object", `{}`, []string{"id", "event", "timestamp"}},
		{"missing id", `{"event":"x","timestamp":"2026-01-01T00:00:00Z"}`, []string{"id"}},
		{"bad uuid", `{"id":"550e8400-e29b-41d4-a716-44665544000g","event":"x","timestamp":"2026-01-01T00:00:00Z"}`, []string{"id"}},
		{"uuid without hyphens", `{"id":"550e8400e29b41d4a716446655440000","event":"x","timestamp":"2026-01-01T00:00:00Z"}`, []string{"id"}},
		{"braced uuid", `{"id":"{550e8400-e29b-41d4-a716-446655440000}","event":"x","timestamp":"2026-01-01T00:00:00Z"}`, []string{"id"}},
		{"number id", `{"id":12,"event":"x","timestamp":"2026-01-01T00:00:00Z"}`, []string{"id"}},
		{"bad eventId", `{"eventId":"12","eventType":"x","timestamp":"2026-01-01T00:00:00Z"}`, []string{"eventId"}},
		{"conflicting id and eventId", `{"id":"550e8400-e29b-41d4-a716-446655440000","eventId":` + uuid + `,"event":"x","timestamp":"2026-01-01T00:00:00Z"}`, []string{"id"}},
		{"conflicting event and eventType", `{` + head + `,"event":"x","eventType":"y"}`, []string{"event"}},
		{"empty type", `{` + head + `,"event":" "}`, []string{"event"}},
		{"type not a string", `{` + head + `,"event":["kyc_session_failed"]}`, []string{"event"}},
		{"timestamp without zone", `{"id":` + uuid + `,"event":"x","timestamp":"2025-06-19T17:14:13.123"}`, []string{"timestamp"}},
		{"timestamp with space", `{"id":` + uuid + `,"event":"x","timestamp":"2025-06-19 17:14:13Z"}`, []string{"timestamp"}},
		{"timestamp as number", `{"id":` + uuid + `,"event":"x","timestamp":1750353253}`, []string{"timestamp"}},
		{"zero timestamp", `{"id":` + uuid + `,"event":"x","timestamp":"0001-01-01T00:00:00Z"}`, []string{"timestamp"}},
		{"unknown type with data not an object", `{` + head + `,"event":"x","data":"y"}`, []string{"data"}},
		{"known type without data", `{` + failed + `}`, []string{"data"}},
		{"known type with data array", `{` + failed + `,"data":[]}`, []string{"data"}},
		{"missing sessionId", `{` + failed + `,"data":{` + user + `}}`, []string{"data.sessionId"}},
		{"bad session_id", `{` + failed + `,"data":{"session_id":"x",` + user + `}}`, []string{"data.session_id"}},
		{"conflicting sessionId spellings", `{` + failed + `,"data":{` + sess + `,"session_id":` + uuid + `,` + user + `}}`, []string{"data.sessionId"}},
		{"no subject", `{` + failed + `,"data":{` + sess + `}}`, []string{"data.userId"}},
		{"bad userId", `{` + failed + `,"data":{` + sess + `,"userId":"u-1"}}`, []string{"data.userId"}},
		{"related party without its id", `{` + failed + `,"data":{` + sess + `,"entityType":"related-party",` + user + `}}`, []string{"data.relatedPartyId"}},
		{"user without its id", `{` + failed + `,"data":{` + sess + `,"entityType":"user","relatedPartyId":` + uuid + `}}`, []string{"data.userId"}},
		{"unknown entityType", `{` + failed + `,"data":{` + sess + `,"entityType":"robot",` + user + `}}`, []string{"data.entityType"}},
		{"nested user not an object", `{` + failed + `,"data":{` + sess + `,"user":"abc"}}`, []string{"data.user"}},
		{"nested user bad id", `{` + failed + `,"data":{` + sess + `,"user":{"id":42}}}`, []string{"data.user.id"}},
		{"nested user without id", `{` + failed + `,"data":{` + sess + `,"user":{}}}`, []string{"data.user.id"}},
		{"checks not an array", `{` + failed + `,"data":{` + sess + `,` + user + `,"checks":{}}}`, []string{"data.checks"}},
		{"check null", check(`null`), []string{"data.checks[0]"}},
		{"check state 3", check(`{"type":"liveness","state":3}`), []string{"data.checks[0].state"}},
		{"check state 1.0", check(`{"type":"liveness","state":1.0}`), []string{"data.checks[0].state"}},
		{"check state boolean", check(`{"type":"liveness","state":true}`), []string{"data.checks[0].state"}},
		{"check state empty", check(`{"type":"liveness","state":""}`), []string{"data.checks[0].state"}},
		{"check without type and state", check(`{}`), []string{"data.checks[0].type", "data.checks[0].state"}},
		{"second check wrong", check(`{"type":"a","state":1},{"type":"b","state":"Refused","reasons":"none"}`), []string{"data.checks[1].reasons"}},
		{"reason without code", check(`{"type":"a","state":2,"reasons":[{"type":"document","message":"m"}]}`), []string{"data.checks[0].reasons[0].code"}},
		{"reason not an object", check(`{"type":"a","state":2,"reasons":["EXPIRED"]}`), []string{"data.checks[0].reasons[0]"}},
		{"reason fields of wrong types", check(`{"type":"a","state":2,"reasons":[{"code":"X","type":1,"message":{},"category":[]}]}`),
			[]string{"data.checks[0].reasons[0].type", "data.checks[0].reasons[0].message", "data.checks[0].reasons[0].category"}},
		{"level GOLD", `{` + head + `,"event":"kyc_state_updated","data":{` + user + `,"state":"GOLD"}}`, []string{"data.state"}},
		{"level 3", `{` + head + `,"event":"kyc_state_updated","data":{` + user + `,"state":3}}`, []string{"data.state"}},
		{"level missing", `{` + head + `,"event":"kyb_state_updated","data":{` + user + `}}`, []string{"data.state"}},
		{"kyb without user", `{` + head + `,"event":"kyb_state_updated","data":{"kybId":1,"state":"LIGHT"}}`, []string{"data.userId"}},
		{"number as string", `{` + head + `,"event":"kyc_state_updated","data":{` + user + `,"state":"LIGHT","kycId":"12345"}}`, []string{"data.kycId"}},
		{"fractional kyc_id", `{` + head + `,"event":"kyc_state_updated","data":{` + user + `,"state":"LIGHT","kyc_id":1.5}}`, []string{"data.kyc_id"}},
		{"kybId too large", `{` + head + `,"event":"kyb_state_updated","data":{` + user + `,"state":"LIGHT","kybId":99999999999999999999}}`, []string{"data.kybId"}},
		{"missing expirationDate", `{` + head + `,"event":"kyc_expiration_warning","data":{` + user + `,"daysRemaining":3}}`, []string{"data.expirationDate"}},
		{"bad expirationDate and daysRemaining", `{` + head + `,"event":"kyc_expiration_warning","data":{` + user + `,"expirationDate":"2026-02-30","daysRemaining":"3","action":1}}`,
			[]string{"data.expirationDate", "data.daysRemaining", "data.action"}},
		{"empty invitation", `{` + head + `,"event":"related_party.kyc_session_created","data":{}}`, []string{"data.relatedParty.id", "data.kycSession.id"}},
		{"bad invitation", `{` + head + `,"event":"related_party.kyc_session_created","data":{"businessUser":{"id":"4821"},"relatedParty":{"id":` + uuid + `,"email":false},
			"kycSession":{"id":` + uuid + `,"url":7,"expiresAt":"tomorrow"}}}`,
			[]string{"data.businessUser.id", "data.relatedParty.email", "data.kycSession.url", "data.kycSession.expiresAt"}},
		{"invitation parts not objects", `{` + head + `,"event":"related_party.kyc_session_created","data":{"businessUser":1,"relatedParty":[],"kycSession":"s"}}`,
			[]string{"data.businessUser", "data.relatedParty", "data.kycSession"}},
		{"several at once", `{"id":"nope","event":"kyc.session_failed","data":{"sessionId":"x",` + user + `,"checks":[{"type":"a","state":3}]}}`,
			[]string{"id", "timestamp", "data.sessionId", "data.checks[0].state"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ralio.Parse([]byte(tt.body))
			var verr *ralio.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse error = %v, want a *ValidationError", err)
			}
			var got []string
			for _, f := range verr.Fields {
				got = append(got, f.Field)
				if f.Reason == "" {
					t.Errorf("%q has no reason", f.Field)
				}
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields = %q, want %q (%v)", got, tt.fields, err)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := ralio.Parse([]byte(`{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc_session_failed",
		"data":{"sessionId":"42","userId":"550e8400-e29b-41d4-a716-446655440001","checks":[{"type":"a","state":"Refused","reasons":[{}]}]}}`))
	const want = "ralio: invalid event: timestamp is required; data.sessionId must be a UUID; data.checks[0].reasons[0].code is required"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}

	_, err = ralio.Parse([]byte(`{"id":1} x`))
	const wantJSON = "ralio: invalid event: body is not valid JSON: invalid character 'x' after top-level value at byte 10"
	if err == nil || err.Error() != wantJSON {
		t.Errorf("error = %v\nwant    %s", err, wantJSON)
	}

	_, err = ralio.Parse([]byte(`{"id":"x","eventId":"y","event":"e","timestamp":"2026-01-01T00:00:00Z","data":{"kycId":"1"}}`))
	const wantConflict = "ralio: invalid event: id conflicts with eventId"
	if err == nil || err.Error() != wantConflict {
		t.Errorf("error = %v\nwant    %s", err, wantConflict)
	}
}

// TestParseInvalidKeepsID checks that the event id of a refused body is
// still available, for the quarantine and the logs.
func TestParseInvalidKeepsID(t *testing.T) {
	t.Parallel()
	ev, err := ralio.Parse([]byte(`{"eventId":"550E8400-E29B-41D4-A716-446655440000","eventType":"kyc_session_failed","timestamp":"2026-01-01T00:00:00Z","data":{}}`))
	if err == nil {
		t.Fatal("Parse accepted a session event without session")
	}
	if ev.ID != "550e8400-e29b-41d4-a716-446655440000" || ev.Type != ralio.TypeSessionFailed {
		t.Errorf("Parse = %+v, want the envelope decoded", ev)
	}
}

func BenchmarkParse(b *testing.B) {
	body := readTestdata(b, "b-kyc_session_failed-related-party.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ralio.Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// Every known event type has a sample, and each sample is a valid event of
// its type: kycd send --type sends them.
func TestSamples(t *testing.T) {
	t.Parallel()
	types := ralio.SampleTypes()
	for _, want := range []string{ralio.TypeSessionFailed, ralio.TypeSessionVerified, ralio.TypeSessionManualReview,
		ralio.TypeSessionExpired, ralio.TypeRelatedPartyInvited, ralio.TypeKYCStateUpdated, ralio.TypeKYBStateUpdated,
		ralio.TypeKYCExpirationWarning, "viban_created"} {
		if !slices.Contains(types, want) {
			t.Errorf("SampleTypes() = %v: no %s", types, want)
		}
	}
	for _, typ := range types {
		body, err := ralio.Sample(typ)
		if err != nil {
			t.Fatalf("Sample(%q): %v", typ, err)
		}
		ev, err := ralio.Parse(body)
		if err != nil || ev.Type != typ {
			t.Errorf("Sample(%q) parses as %q, %v", typ, ev.Type, err)
		}
	}
	for _, typ := range []string{"kyc_session_failed-related-party", "*", "nope"} {
		if _, err := ralio.Sample(typ); err == nil || !strings.Contains(err.Error(), ralio.TypeSessionFailed) {
			t.Errorf("Sample(%q) = %v, want an error listing the sample types", typ, err)
		}
	}
}
