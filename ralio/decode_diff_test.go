package ralio

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The tests in this file check that Parse decodes every body exactly as
// oldParse, the map-based decoder it replaced (decode_old_test.go), did: the
// same Event and the same ValidationError, field by field.

// checkSameAsOld fails unless Parse and oldParse agree on body, and unless
// the Event that Parse returns still holds when the caller reuses body's
// buffer, as it did when every value was copied out of it.
func checkSameAsOld(t testing.TB, body []byte) {
	t.Helper()
	in := bytes.Clone(body)
	got, gotErr := Parse(in)
	for i := range in {
		in[i] = 'x'
	}
	want, wantErr := oldParse(body)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(%q) =\n%#v\nwant\n%#v", body, got, want)
	}
	if !reflect.DeepEqual(gotErr, wantErr) {
		t.Fatalf("Parse(%q) error =\n%v\nwant\n%v", body, gotErr, wantErr)
	}
}

const (
	diffID   = `"550e8400-e29b-41d4-a716-446655440000"`
	diffSess = `"550e8400-e29b-41d4-a716-446655440002"`
	diffUser = `"550e8400-e29b-41d4-a716-446655440001"`
	diffRP   = `"3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"`
	diffTime = `"2026-01-01T00:00:00Z"`
)

// diffEvent returns an envelope of type typ around data.
func diffEvent(typ, data string) string {
	return `{"id":` + diffID + `,"event":"` + typ + `","timestamp":` + diffTime + `,"data":` + data + `}`
}

// oddBodies are bodies written to reach the corners of the decoder: nulls,
// both spellings, wrong types, duplicate keys, escapes, invalid UTF-8,
// numbers, deep nesting and broken JSON.
func oddBodies() []string {
	failed := func(data string) string { return diffEvent("kyc_session_failed", data) }
	check := func(c string) string {
		return failed(`{"sessionId":` + diffSess + `,"userId":` + diffUser + `,"checks":[` + c + `]}`)
	}
	bodies := []string{
		// Not an object, not JSON, or more than one value.
		``, ` `, "\t\r\n", `null`, `true`, `false`, `0`, `-1.5e3`, `"x"`, `[]`, `[{}]`, `{}`, `{} `, ` {}`,
		`{}{}`, `{} {}`, `{} x`, `{}]`, `{`, `}`, `{"id"`, `{"id":`, `{"id":}`, `{"id" 1}`, `{"id":1,}`,
		`{,}`, `{"a":1 "b":2}`, `{'a':1}`, `{a:1}`, "\xef\xbb\xbf{}", "{}\x00", "{\x00}", `[1,]`, `[,1]`,
		`{"a":[1 2]}`, `{"a":tru}`, `{"a":nul}`, `{"a":truex}`, `{"a":nulll}`, `{"a":True}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":+1}`, `{"a":1e}`, `{"a":1e+}`, `{"a":-0}`,
		`{"a":0.0e-0}`, `{"a":1E400}`, `{"a":-01}`, `{"a":2.e3}`, `{"a":1ee2}`, `{"a":NaN}`, `{"a":Infinity}`,
		"{\"a\":\v1}", "{\"a\":\f1}", "{\"a\"\u00a0:1}", "{\"a\":\"\x7f\"}", "{\"a\":\"\u2028\"}", `{"a":"\x01"}`, "{\"a\":\"\t\"}", `{"a":"\q"}`, `{"a":"\u12"}`,
		`{"a":"\u12g4"}`, `{"a":"\ud800"}`, `{"a":"\udc00\ud800"}`, `{"a":"\ud83d\ude00"}`, "{\"a\":\"\xff\xfe\"}",
		"{\"\xff\":1}", `{"a":"unterminated}`, `{"a":[}`, `{"a":{]}`, `{"a":{"b"}}`, `{"a":{"b":}}`,
		"{\"id\":1}\n", "{\"id\":1}\n\n \t", `{"id":1} x`, `{"id":1}}`,
		strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000),
		strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001),
		`{"x":` + strings.Repeat(`[`, 9999) + strings.Repeat(`]`, 9999) + `}`,
		`{"x":` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `}`,
		`{"x":` + strings.Repeat(`{"a":`, 9999) + `1` + strings.Repeat(`}`, 9999) + `}`,
		`{"x":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000) + `}`,
		`{"x":` + strings.Repeat(`[`, 10000) + `}`,

		// Envelopes.
		`{"id":null,"eventId":` + diffID + `,"event":null,"eventType":"x","timestamp":` + diffTime + `}`,
		`{"event_id":` + diffID + `,"event_type":"x","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"id":"550e8400-e29b-41d4-a716-44665544000A","event":"x","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"id":null,"event":"x","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"eventId":` + diffID + `,"event_id":"550E8400-E29B-41D4-A716-446655440000","event":"x","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"event":"x","eventType":"x","event_type":"y","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"event":"x","eventType":"x","timestamp":` + diffTime + `,"timestamp":"2026-01-01T00:00:00+01:00"}`,
		`{"id":` + diffID + `,"event":{"a":1},"event_type":{ "a" : 1 },"timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"event":[1,2],"eventType":[1, 3],"timestamp":` + diffTime + `}`,
		`{"i\u0064":` + diffID + `,"\u0065vent":"x","timestamp":` + diffTime + `}`,
		`{"id":"550e8400-e29b-41d4-a716-44665544000\u0030","event":"kyc\u005fsession_verified","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"event":"kyc.session.failed","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"event":"related.party.kyc.session.created","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"event":"related_party_kyc_session_created","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + `,"event":"KYC_SESSION_FAILED","timestamp":` + diffTime + `}`,
		`{"id":` + diffID + "," + `"event":"caf\xe9","timestamp":` + diffTime + `,"data":[1]}`,
		`{"id":` + diffID + `,"event":"","timestamp":` + diffTime + `,"data":{"x":1}}`,
		`{"id":` + diffID + `,"event":"x","timestamp":"2026-01-01T00:00:00.123456789+14:00"}`,
		`{"id":` + diffID + `,"event":"x","timestamp":"2026-02-30T00:00:00Z"}`,
		`{"id":` + diffID + `,"event":"x","timestamp":"0001-01-01T01:00:00+01:00"}`,
		`{"id":` + diffID + `,"event":"x","timestamp":` + diffTime + `,"data":null}`,
		`{"id":` + diffID + `,"event":"x","timestamp":` + diffTime + `,"data":{"a":1},"data":{"b":2}}`,
		`{"id":` + diffID + `,"event":"x","timestamp":` + diffTime + `,"data":{"a":1},"data":null}`,
		`{"data":{"sessionId":` + diffSess + `,"userId":` + diffUser + `},"timestamp":` + diffTime + `,"event":"kyc.session_verified","id":` + diffID + `}`,
		`{"id":` + diffID + `,"event":"kyc_session_verified","timestamp":` + diffTime + `,"data":{ "sessionId" : ` + diffSess + ` , "userId" : ` + diffUser + ` } }`,

		// Session events and their subjects.
		failed(`null`), failed(`[]`), failed(`"x"`), failed(`{}`),
		failed(`{"session_id":` + diffSess + `,"user_id":` + diffUser + `,"entity_type":"USER"}`),
		failed(`{"sessionId":` + diffSess + `,"sessionId":null,"userId":` + diffUser + `}`),
		failed(`{"sessionId":` + diffSess + `,"session_id":` + diffSess + `,"userId":` + diffUser + `}`),
		failed(`{"sessionId":null,"session_id":null,"userId":` + diffUser + `}`),
		failed(`{"sessionId":` + diffSess + `,"entityType":null,"relatedPartyId":` + diffRP + `}`),
		failed(`{"sessionId":` + diffSess + `,"entityType":1,"userId":` + diffUser + `}`),
		failed(`{"sessionId":` + diffSess + `,"entityType":"user","entity_type":"related-party","userId":` + diffUser + `}`),
		failed(`{"sessionId":` + diffSess + `,"entityType":"Related_Party","related_party_id":` + diffRP + `}`),
		failed(`{"sessionId":` + diffSess + `,"entityType":"related-party","relatedParty":{"id":` + diffRP + `}}`),
		failed(`{"sessionId":` + diffSess + `,"entityType":"related-party","relatedParty":{"id":null}}`),
		failed(`{"sessionId":` + diffSess + `,"entityType":"related-party","relatedParty":[` + diffRP + `]}`),
		failed(`{"sessionId":` + diffSess + `,"user":null,"relatedParty":{"id":` + diffRP + `}}`),
		failed(`{"sessionId":` + diffSess + `,"user":{"id":` + diffUser + `,"id":null},"relatedPartyId":` + diffRP + `}`),
		failed(`{"sessionId":` + diffSess + `,"user":{"id":` + diffUser + `},"userId":` + diffUser + `}`),
		failed(`{"sessionId":` + diffSess + `,"user":{"id":"x"},"relatedParty":{"id":"y"}}`),
		failed(`{"sessionId":` + diffSess + `,"userId":"x","user_id":"y","relatedPartyId":` + diffRP + `}`),
		failed(`{"sessionId":` + diffSess + `,"relatedPartyId":"x","related_party_id":"y"}`),
		failed(`{"sessionId":` + diffSess + `,"relatedParty":"x"}`),
		failed(`{"sessionId":` + diffSess + `,"relatedParty":{}}`),
		failed(`{"sessionId":` + diffSess + `,"userId":` + diffUser + `,"checks":[]}`),
		failed(`{"sessionId":` + diffSess + `,"userId":` + diffUser + `,"checks":"x"}`),
		failed(`{"sessionId":` + diffSess + `,"userId":` + diffUser + `,"checks":[],"checks":null}`),
		failed(`{"sessionId":` + diffSess + `,"userId":` + diffUser + `,"checks":[1],"checks":[{"type":"a","state":1}]}`),
		check(`{"type":"a","state":"1"}`), check(`{"type":"a","state":"Refus\u0065d"}`), check(`{"type":"a","state":" Refused "}`),
		check(`{"type":"a","state":-1}`), check(`{"type":"a","state":2.0}`), check(`{"type":"a","state":1e0}`),
		check(`{"type":"a","state":"VALIDATED","data":null,"reasons":[]}`), check(`{"type":"a","state":"x","data":[1, 2 ]}`),
		check(`{"type":"a","state":"x","data":"s"}`), check(`{"type":" ","state":" "}`), check(`{"type":"a","state":null}`),
		check(`{"type":1,"state":{}}`), check(`{"type":"a","state":1,"reasons":[null,{},[]]}`),
		check(`{"type":"a","state":1,"reasons":[{"code":"X","category":null,"message":"\u00e9\n"}]}`),
		check(`{"type":"a","state":1,"reasons":[{"code":" "}]}`), check(`{"type":"a","state":1,"reasons":{}}`),
		check(`{"type":"a","state":1},{"type":"b","state":2},null,{"type":"c","state":"Validated"}`),
		check(`{"Type":"a","STATE":1}`), check(`{"type":"a","type":"b","state":1,"state":2}`),
		check("{\"type\":\"\xff\",\"state\":\"\xfe\",\"reasons\":[{\"code\":\"\xfd\"}]}"),
		check(`{"type":"a","state":1,"data":{"deep":` + strings.Repeat(`[`, 9990) + strings.Repeat(`]`, 9990) + `}}`),

		// Levels, ids and numbers.
		diffEvent("kyc_state_updated", `{"userId":`+diffUser+`,"state":"regular","kycId":-9223372036854775808}`),
		diffEvent("kyc_state_updated", `{"userId":`+diffUser+`,"state":"1","kycId":9223372036854775808}`),
		diffEvent("kyc_state_updated", `{"userId":`+diffUser+`,"state":1.0,"kycId":1e2}`),
		diffEvent("kyc_state_updated", `{"userId":`+diffUser+`,"state":true,"kycId":true}`),
		diffEvent("kyc_state_updated", `{"userId":`+diffUser+`,"state":"L\u0049GHT","kycId":-0}`),
		diffEvent("kyc_state_updated", `{"userId":`+diffUser+`,"state":2,"kycId":1,"kyc_id":2}`),
		diffEvent("kyc_state_updated", `{"userId":`+diffUser+`,"state":2,"kycId":1,"kyc_id":1.0}`),
		diffEvent("kyc_state_updated", `{"entityType":"business","userId":`+diffUser+`,"state":2}`),
		diffEvent("kyb_state_updated", `{"user":{"id":`+diffUser+`},"state":"LIGHT","kyb_id":778}`),
		diffEvent("kyb_state_updated", `{"relatedPartyId":`+diffRP+`,"state":"LIGHT","kybId":"778"}`),
		diffEvent("kyb_state_updated", `{"user":[],"state":[],"kybId":[]}`),
		diffEvent("kyc_expiration_warning", `{"userId":`+diffUser+`,"expiration_date":"2026-02-28","days_remaining":-3,"action":"RENEW"}`),
		diffEvent("kyc_expiration_warning", `{"userId":`+diffUser+`,"expirationDate":"2026-2-28","daysRemaining":9223372036854775807}`),
		diffEvent("kyc_expiration_warning", `{"userId":`+diffUser+`,"expirationDate":20260228,"daysRemaining":1.5,"action":null}`),
		diffEvent("kyc_expiration_warning", `{"userId":`+diffUser+`,"expirationDate":"2026-02-28","kycId":12,"kyc_id":12}`),

		// Invitations.
		diffEvent("related_party.kyc_session_created", `{"relatedParty":{"id":`+diffRP+`},"kycSession":{"id":`+diffSess+`},"businessUser":null}`),
		diffEvent("related_party.kyc_session_created", `{"related_party":{"id":`+diffRP+`,"role_type":"UBO","first_name":"A","last_name":"B","phone_number":"+1"},
			"kyc_session":{"id":`+diffSess+`,"expires_at":"2026-05-06T12:50:22.227Z"},"business_user":{"id":1,"name":"N"}}`),
		diffEvent("related_party.kyc_session_created", `{"relatedParty":{"id":`+diffRP+`},"related_party":{"id":"x"},"kycSession":{"id":`+diffSess+`}}`),
		diffEvent("related_party.kyc_session_created", `{"relatedParty":{"id":`+diffRP+`},"related_party":{ "id": `+diffRP+` },"kycSession":{"id":`+diffSess+`}}`),
		diffEvent("related_party.kyc_session_created", `{"relatedParty":null,"kycSession":{"id":null,"url":null,"expiresAt":"0001-01-01T00:00:00Z"}}`),
		diffEvent("related_party.kyc_session_created", `{"relatedParty":{"id":`+diffRP+`},"kycSession":{"id":`+diffSess+`,"expiresAt":1}}`),
		diffEvent("related.party.kyc.session.created", `{}`),
		diffEvent("related_party.kyc.session_created", `{}`),
	}
	return bodies
}

// memberName matches a member name without escapes.
var memberName = regexp.MustCompile(`"([A-Za-z_]+)"(\s*):`)

// respelled returns two respellings of body: every member name in
// snake_case, and every member name with its first letter escaped.
func respelled(body []byte) (snake, escaped []byte) {
	snake = memberName.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := memberName.FindSubmatch(m)
		return []byte(`"` + oldSnakeCase(string(sub[1])) + `"` + string(sub[2]) + `:`)
	})
	escaped = memberName.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := memberName.FindSubmatch(m)
		return []byte(fmt.Sprintf(`"\u%04x%s"%s:`, sub[1][0], sub[1][1:], sub[2]))
	})
	return snake, escaped
}

// diffBodies returns the bodies of testdata, respelled, the seeds of
// FuzzParse and oddBodies.
func diffBodies(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "testdata/bench/kyc_session_failed-two-checks.json")
	var bodies [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		snake, escaped := respelled(b)
		bodies = append(bodies, b, snake, escaped)
	}
	for _, s := range []string{
		`{"id":1}`, `"x"`,
		`{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc.session_failed","timestamp":"2025-06-19T17:14:13Z","data":{"session_id":"x","checks":[null,{"state":3,"reasons":[{}]}]}}`,
		`{"eventId":"550E8400-E29B-41D4-A716-446655440000","id":"550e8400-e29b-41d4-a716-446655440000","eventType":"kyb.state_updated","timestamp":"2025-06-19T17:14:13+02:00","data":{"user":{"id":"550e8400-e29b-41d4-a716-446655440001"},"state":"light"}}`,
		`{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc_expiration_warning","timestamp":"0001-01-01T00:00:00Z","data":{"entity_type":"related_party","related_party":{"id":null},"expirationDate":"2026-02-29","daysRemaining":1e3}}`,
	} {
		bodies = append(bodies, []byte(s))
	}
	for _, s := range oddBodies() {
		bodies = append(bodies, []byte(s))
	}
	return bodies
}

func TestParseSameAsOld(t *testing.T) {
	t.Parallel()
	for _, body := range diffBodies(t) {
		checkSameAsOld(t, body)
	}
}

// TestParseSameAsOldMutated breaks the sample events in every place: cut
// short, one byte deleted, one byte replaced by a byte of JSON's syntax or
// an invalid one.
func TestParseSameAsOldMutated(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "testdata/bench/kyc_session_failed-two-checks.json")
	step := 1
	if testing.Short() {
		step = 7
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			mutated := make([]byte, 0, len(body))
			for i := 0; i < len(body); i += step {
				checkSameAsOld(t, body[:i])
				mutated = append(append(mutated[:0], body[:i]...), body[i+1:]...)
				checkSameAsOld(t, mutated)
				for _, c := range []byte("\"\\{}[],:0-.en \x00\xff") {
					mutated = append(mutated[:0], body...)
					mutated[i] = c
					checkSameAsOld(t, mutated)
				}
			}
		})
	}
}

// FuzzParseSameAsOld looks for a body on which Parse and oldParse disagree.
func FuzzParseSameAsOld(f *testing.F) {
	for _, b := range diffBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSameAsOld(t, body)
	})
}
