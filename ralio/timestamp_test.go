package ralio_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kycd/kycd/ralio"
)

// TestParseTimestamp is RFC 3339 §5.6 as a table: what parses, to which
// instant, and what is refused with a timestamp field error.
func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return tm.UTC()
	}
	tests := []struct {
		in   string
		want time.Time // zero: refused
		why  string    // the reason's text, for a refusal
	}{
		{"2025-06-19T17:14:13.123Z", utc("2025-06-19T17:14:13.123Z"), ""},
		{"2025-06-19t17:14:13.123Z", utc("2025-06-19T17:14:13.123Z"), ""},
		{"2025-06-19T17:14:13.123z", utc("2025-06-19T17:14:13.123Z"), ""},
		{"2025-06-19t17:14:13z", utc("2025-06-19T17:14:13Z"), ""},
		{"2025-06-19t19:14:13+02:00", utc("2025-06-19T17:14:13Z"), ""},
		{"2025-06-19T17:14:13+23:59", utc("2025-06-18T17:15:13Z"), ""},
		{"2025-06-19T17:14:13-23:59", utc("2025-06-20T17:13:13Z"), ""},
		// A leap second is the first instant of the next second.
		{"2016-12-31T23:59:60Z", utc("2017-01-01T00:00:00Z"), ""},
		{"2016-12-31t23:59:60.5z", utc("2017-01-01T00:00:00.5Z"), ""},
		{"2015-06-30T23:59:60Z", utc("2015-07-01T00:00:00Z"), ""},
		// §5.7's own example: the same leap second, written in a local time.
		{"1990-12-31T15:59:60-08:00", utc("1991-01-01T00:00:00Z"), ""},
		{"2025-06-19T17:14:60Z", time.Time{}, "second 60"},
		{"2025-06-19T17:14:61Z", time.Time{}, "RFC 3339"},
		{"2025-06-19T17:14:13+24:00", time.Time{}, "offset"},
		{"2025-06-19T17:14:13-24:00", time.Time{}, "offset"},
		{"2025-06-19T17:14:13+23:60", time.Time{}, "offset"},
		{"2025-06-19T17:14:13+99:00", time.Time{}, "offset"},
		{"2025-06-19x17:14:13Z", time.Time{}, "RFC 3339"},
		{"2025-06-19T17:14:13x", time.Time{}, "RFC 3339"},
		{"2025-06-19T17:14:13", time.Time{}, "RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			body := `{"id":"550e8400-e29b-41d4-a716-446655440000","event":"x","timestamp":"` + tt.in + `"}`
			ev, err := ralio.Parse([]byte(body))
			if !tt.want.IsZero() {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !ev.Timestamp.Equal(tt.want) || ev.Timestamp.Location() != time.UTC {
					t.Errorf("Timestamp = %v, want %v", ev.Timestamp, tt.want)
				}
				return
			}
			var verr *ralio.ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != "timestamp" {
				t.Fatalf("Parse error = %v, want one timestamp field error", err)
			}
			if r := verr.Fields[0].Reason; !strings.Contains(r, tt.why) {
				t.Errorf("reason = %q, want it to mention %q", r, tt.why)
			}
		})
	}
}
