package kycd_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/kycd/kycd"
)

func TestBodyHash(t *testing.T) {
	a := []byte(`{"id":"x","data":{"n":1.0,"s":"\u00e9","list":[1,2]}}`)
	for _, b := range []string{
		"{ \"data\": {\"list\": [1, 2], \"s\": \"é\", \"n\": 1}, \"id\": \"x\" }", // key order, spacing, number and escape spelling
		`{"data":{"n":1E0,"list":[1,2],"s":"\u00E9"},"id":"x"}`,
	} {
		if kycd.BodyHash([]byte(b)) != kycd.BodyHash(a) {
			t.Errorf("BodyHash(%s) differs from BodyHash(%s): the same JSON must hash the same", b, a)
		}
	}
	for _, b := range []string{
		`{"id":"x","data":{"n":2,"s":"é","list":[1,2]}}`,
		`{"id":"x","data":{"n":1,"s":"é","list":[2,1]}}`,
	} {
		if kycd.BodyHash([]byte(b)) == kycd.BodyHash(a) {
			t.Errorf("BodyHash(%s) equals BodyHash(%s): different content must not", b, a)
		}
	}
}

// TestBodyHashReadsAsTheDecoder: a body is compared by what ralio.Parse reads
// from it (issue 15, item 8).
func TestBodyHashReadsAsTheDecoder(t *testing.T) {
	const id = "550e8400-e29b-41d4-a716-446655440000"
	for _, c := range []struct {
		name   string
		stored string
		retry  string
		same   bool
	}{
		{"a re-indented retry of a body with a duplicate name",
			`{"id":"` + id + `","event":"x","event":"kyc_state_updated","data":{"kycId":1}}`,
			"{\n  \"id\": \"" + id + "\",\n  \"event\": \"x\",\n  \"event\": \"kyc_state_updated\",\n  \"data\": {\"kycId\": 1}\n}", true},
		{"a re-indented retry of a body with a lone surrogate",
			`{"id":"` + id + `","data":{"name":"a\ud800b"}}`,
			"{ \"id\": \"" + id + "\", \"data\": { \"name\": \"a\\ud800b\" } }", true},
		{"a lone surrogate is U+FFFD, as the decoder reads it",
			`{"id":"` + id + `","data":{"name":"a\ud800b"}}`,
			`{"id":"` + id + `","data":{"name":"a\ufffdb"}}`, true},
		{"a re-indented retry of a body with invalid UTF-8",
			"{\"id\":\"" + id + "\",\"data\":{\"name\":\"a\xffb\"}}",
			"{ \"id\": \"" + id + "\", \"data\": { \"name\": \"a\xffb\" } }", true},
		{"invalid UTF-8 is U+FFFD, as the decoder reads it",
			"{\"id\":\"" + id + "\",\"data\":{\"name\":\"a\xffb\"}}",
			`{"id":"` + id + `","data":{"name":"a\ufffdb"}}`, true},
		{"the last of duplicate ids is the one stored",
			`{"id":"00000000-0000-4000-8000-00000000000a","id":"` + id + `","data":{}}`,
			`{"id":"` + id + `","data":{}}`, true},
		{"the first of duplicate ids is not the event",
			`{"id":"` + id + `","id":"00000000-0000-4000-8000-00000000000b","data":{}}`,
			`{"id":"` + id + `","data":{}}`, false},
		{"integers above 2^53 that differ",
			`{"id":"` + id + `","data":{"kycId":9007199254740993}}`,
			`{"id":"` + id + `","data":{"kycId":9007199254740992}}`, false},
		{"the same number spelled differently",
			`{"id":"` + id + `","data":{"kycId":9007199254740993,"score":0.410}}`,
			`{"id":"` + id + `","data":{"score":41e-2,"kycId":9007199254740993.0}}`, true},
		{"an id in upper case",
			`{"id":"` + id + `","data":{}}`,
			`{"id":"550E8400-E29B-41D4-A716-446655440000","data":{}}`, true},
		{"a UUID in the data in upper case is not the same",
			`{"id":"` + id + `","data":{"userId":"` + id + `"}}`,
			`{"id":"` + id + `","data":{"userId":"550E8400-E29B-41D4-A716-446655440000"}}`, false},
		{"generation C of a generation-A event",
			`{"id":"` + id + `","event":"kyc_session_expired","timestamp":"2026-03-24T16:41:28.447Z","data":{}}`,
			`{"eventId":"` + id + `","eventType":"kyc_session_expired","timestamp":"2026-03-24T16:41:28.447Z","data":{}}`, true},
		{"snake_case envelope names, and null for an absent field",
			`{"id":"` + id + `","event":"kyc_session_expired","data":{}}`,
			`{"event_id":"` + id + `","event_type":"kyc_session_expired","eventId":null,"data":{}}`, true},
		{"another type in generation C",
			`{"id":"` + id + `","event":"kyc_session_expired","data":{}}`,
			`{"eventId":"` + id + `","eventType":"kyc_session_verified","data":{}}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			stored, retry := []byte(c.stored), []byte(c.retry)
			got := kycd.SameBody(kycd.BodyHash(stored), kycd.BodyHash(retry), retry)
			if got != c.same {
				t.Errorf("SameBody = %v, want %v (a %s):\n%s\n%s", got, c.same, map[bool]string{true: "duplicate", false: "conflict"}[c.same], stored, retry)
			}
		})
	}
}

func TestSameBodyReadsJCSHashes(t *testing.T) {
	// What kycd stored before BodyHash read bodies as the decoder does:
	// "jcs:" and the SHA-256 of the body's RFC 8785 form.
	// Of {"b":1.0,"a":2}: its RFC 8785 form is {"a":2,"b":1}.
	const jcs = "jcs:d3626ac30a87e6f7a6428233b3c68299976865fa5508e4267c5415c76af7a772"
	retry := []byte("{ \"a\": 2,\n \"b\": 1 }")
	if !kycd.SameBody(jcs, kycd.BodyHash(retry), retry) {
		t.Error("a retry of an event stored under a jcs: hash is not a duplicate")
	}
	other := []byte(`{"a":2,"b":3}`)
	if kycd.SameBody(jcs, kycd.BodyHash(other), other) {
		t.Error("a different body matched a jcs: hash")
	}
}

func TestSameBodyReadsHashesOfTheOlderScheme(t *testing.T) {
	body := []byte(`{"b": 1, "a": 2}`)
	// The hash kycd stored before canonical JSON: SHA-256 of the compacted body.
	const older = "a1d46c3cdb4e5795c8d637f80daeb578ebb1a9a65dc1ed5f11f51794c3c89f3a"
	if !kycd.SameBody(older, kycd.BodyHash(body), body) {
		t.Error("a body stored under the older hash is not recognised again")
	}
	if kycd.SameBody(older, kycd.BodyHash([]byte(`{"a":2,"b":1}`)), []byte(`{"a":2,"b":1}`)) {
		t.Error("the older scheme only ignored white space; reordered keys must not match its hash")
	}
	if kycd.SameBody(kycd.BodyHash(body), kycd.BodyHash([]byte(`{"a":3}`)), []byte(`{"a":3}`)) {
		t.Error("different bodies reported the same")
	}
}

func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":         "plain",
		"nul\x00inside": "nul\uFFFDinside",
		"bad\xffbyte":   "bad\uFFFDbyte",
		"é ok":          "é ok",
	} {
		if got := kycd.CleanText(in); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkBodyHash hashes the 871-byte event of docs/benchmarks.md, as the
// webhook does for every delivery.
func BenchmarkBodyHash(b *testing.B) {
	body, err := os.ReadFile("ralio/testdata/bench/kyc_session_failed-two-checks.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		kycd.BodyHash(body)
	}
}

// FuzzBodyHash: BodyHash takes any bytes, and white space never matters in
// JSON.
func FuzzBodyHash(f *testing.F) {
	for _, name := range []string{"a-kyc_session_failed.json", "b-kyc_session_failed-related-party.json", "c-related_party.kyc_session_created.json"} {
		body, err := os.ReadFile("ralio/testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"id":"A","id":null,"eventId":"a","n":[-0.0,1e-7,10E+2,123456789012345678901234567890],"s":"\ud800\u00e9\u0000"}`))
	f.Add([]byte("{\"\xff\":1,\"\\ufffd\":2}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := kycd.BodyHash(body)
		var compact bytes.Buffer
		if json.Compact(&compact, body) != nil {
			return
		}
		if h2 := kycd.BodyHash(compact.Bytes()); h2 != h {
			t.Errorf("BodyHash(%q) = %s, but of its compacted form %q %s", body, h, compact.Bytes(), h2)
		}
	})
}
