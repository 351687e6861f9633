package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSendLoadMode(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	out := mustCLI(t, "send", "--url", s.URL+"/webhooks/ralio", "--ralio-secret", s.Secret,
		"--type", "kyc_session_verified", "--count", "40", "--concurrency", "4", "--json")
	var r loadReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	if r.Events != 40 || r.Statuses["200"] != 40 || r.PerSecond <= 0 || r.LatencyP50 <= 0 || r.LatencyMax < r.LatencyP99 || r.LatencyP99 < r.LatencyP50 {
		t.Fatalf("report = %+v, want 40 events answered 200 with ordered percentiles", r)
	}
	// Every event was new: 40 applied, none a duplicate.
	s.wantMetric(t, `kycd_events_received_total{outcome="applied",type="kyc_session_verified"} 40`)

	text := mustCLI(t, "send", "--url", s.URL+"/webhooks/ralio", "--ralio-secret", s.Secret, "--count", "5", "--rate", "100")
	if !strings.Contains(text, "sent 5 events") || !strings.Contains(text, "200: 5") || !strings.Contains(text, "p99") {
		t.Fatalf("text report = %q", text)
	}
	if _, err := cli(t, "send", "--url", s.URL+"/webhooks/ralio", "--ralio-secret", "wrong", "--count", "3"); err == nil || !strings.Contains(err.Error(), "3 of 3") {
		t.Fatalf("load with a wrong secret: err = %v, want 3 of 3 events not answered 200", err)
	}
}
