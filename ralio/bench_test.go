package ralio_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kycd/kycd/ralio"
)

// BenchmarkParseEvents measures Parse on every sample event (the file name
// starts with its envelope generation) and on a kyc_session_failed with two
// checks of the size the service receives under load. BenchmarkParse, beside
// the decoding tests, is the single-event figure.
//
// Baseline and comparison:
//
//	go test -run '^$' -bench Parse -benchmem -count 6 ./ralio/ > /tmp/parse-old.txt
//	go run golang.org/x/perf/cmd/benchstat@latest /tmp/parse-old.txt /tmp/parse-new.txt
func BenchmarkParseEvents(b *testing.B) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		b.Fatal(err)
	}
	// Kept out of testdata/*.json, which the decoding tests enumerate.
	files = append(files, "testdata/bench/kyc_session_failed-two-checks.json")
	for _, name := range files {
		body, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(name), ".json"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ralio.Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
