package kycd_test

import (
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
