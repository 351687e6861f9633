package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

// slowReceiver answers every webhook 200 after delay, counting what it got.
func slowReceiver(t *testing.T, delay time.Duration) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(delay)
		w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestSendLoadDuration(t *testing.T) {
	t.Parallel()
	s := slowReceiver(t, 20*time.Millisecond)
	out := mustCLI(t, "send", "--url", s.URL, "--ralio-secret", "s", "--duration", "200ms", "--concurrency", "2", "--json")
	var r loadReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	// Two senders at 20 ms an answer fit about 20 events in 200 ms; the
	// loop stops sending at the deadline.
	if r.Events < 2 || r.Events > 22 || r.Statuses["200"] != r.Events || r.Seconds < 0.2 || r.LatencyP50 < 20 {
		t.Fatalf("report = %+v, want 2 to 22 events answered 200 over at least 200 ms, p50 at least 20 ms", r)
	}
	if _, err := cli(t, "send", "--url", s.URL, "--ralio-secret", "s", "--duration", "-1s"); err == nil || !strings.Contains(err.Error(), "--duration") {
		t.Fatalf("--duration -1s: err = %v, want it refused", err)
	}
}

// With --rate the load is an open loop: events leave on their schedule, and
// their latency counts from when they were due, so a server slower than the
// rate shows its queue in the percentiles instead of its service time.
func TestSendLoadOpenLoop(t *testing.T) {
	t.Parallel()
	fast := slowReceiver(t, 0)
	// 20/s, so that the last event, due 50 ms before the deadline, is sent
	// in time on a loaded machine under the race detector too.
	out := mustCLI(t, "send", "--url", fast.URL, "--ralio-secret", "s", "--duration", "1s", "--rate", "20", "--concurrency", "4", "--json")
	var r loadReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	if r.Events != 20 || r.Statuses["200"] != 20 || r.Seconds < 0.95 {
		t.Fatalf("report = %+v, want the 20 events due at 20/s over 1 s, answered 200", r)
	}

	// One sender at 20 ms an answer: event i is due at 10i ms but leaves at
	// 20i ms, so its latency is 10i+20 ms. At the deadline the events still
	// waiting for the sender are reported unsent rather than prolonging the
	// run. A closed loop would report about 20 ms throughout.
	slow := slowReceiver(t, 20*time.Millisecond)
	out, err := cli(t, "send", "--url", slow.URL, "--ralio-secret", "s", "--duration", "200ms", "--rate", "100", "--concurrency", "1", "--json")
	if err == nil || !strings.Contains(err.Error(), "of 20 events were not answered 200") {
		t.Fatalf("err = %v, want some of 20 events not answered 200", err)
	}
	r = loadReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	if r.Events+r.Statuses["unsent"] != 20 || r.Statuses["200"] != r.Events || r.Statuses["unsent"] < 5 || r.LatencyMax < 70 || r.Seconds > 0.5 {
		t.Fatalf("report = %+v, want 20 events due, about half unsent at the deadline, the rest answered 200 with latencies up to ≥ 70 ms from their due times", r)
	}
}
