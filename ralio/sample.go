package ralio

import (
	"embed"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// samples are Ralio's example bodies, the ones this package's tests decode:
// one set serves the tests and the programs that send a sample.
//
//go:embed testdata/*.json
var samples embed.FS

// sampleName is the file name of the sample of an event type: its envelope
// generation, then the type (G-TYPE.json). Other files of testdata are
// variants of a type (a-kyc_state_updated-snake.json) and are not samples.
var sampleName = regexp.MustCompile(`^[a-z]-([a-z0-9_.]+)\.json$`)

// Sample returns Ralio's example body of an event type, as Ralio sends it
// (signed with Sign, it is a delivery a receiver accepts), or an error
// naming the types there are samples of.
func Sample(eventType string) ([]byte, error) {
	entries, _ := samples.ReadDir("testdata")
	for _, e := range entries {
		if m := sampleName.FindStringSubmatch(e.Name()); m != nil && m[1] == eventType {
			return samples.ReadFile("testdata/" + e.Name())
		}
	}
	return nil, fmt.Errorf("ralio: no sample of event type %q (samples: %s)", eventType, strings.Join(SampleTypes(), ", "))
}

// SampleTypes lists the event types Sample has a body of, sorted.
func SampleTypes() []string {
	entries, _ := samples.ReadDir("testdata")
	var out []string
	for _, e := range entries {
		if m := sampleName.FindStringSubmatch(e.Name()); m != nil {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}
