package main

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricValue is the value of the sample of /metrics whose name and
// labels are exactly series, or -1 when there is none.
func metricValue(text, series string) float64 {
	for l := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// What on-call needs from /metrics: which build runs, how long deliveries
// take, how far behind a sink is, how many refused bodies wait, and how
// the API answers; in OpenMetrics when asked.
func TestMetricsForOnCall(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--sink", "name=crm,type=http,url="+closedURL(t), "--sink-secret", testSinkSecret)
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	if a := s.post(t, []byte(`{"id":"nope"}`)); a.status != http.StatusBadRequest {
		t.Fatalf("an invalid event = %s, want 400", a)
	}
	s.api(t, http.MethodGet, "/api/v1/sessions/"+failedSession)

	var m string
	// The attempt's duration is observed when it ends, its count once it is
	// recorded: wait for both.
	eventually(t, "a failed attempt at crm in the metrics", func() bool {
		m = s.metrics(t)
		return metricValue(m, `kycd_delivery_duration_seconds_count{sink="crm"}`) >= 1 &&
			metricValue(m, `kycd_delivery_attempts_total{outcome="failed",sink="crm"}`) >= 1
	})
	if !regexp.MustCompile(`(?m)^kycd_build_info\{goversion="go[^"]+",revision="[^"]*",version="[^"]+"\} 1$`).MatchString(m) {
		t.Errorf("no kycd_build_info{goversion,revision,version} 1 in:\n%s", grepLines(m, "build_info"))
	}
	if age := metricValue(m, `kycd_outbox_oldest_pending_age_seconds{sink="crm"}`); age <= 0 {
		t.Errorf("kycd_outbox_oldest_pending_age_seconds{sink=\"crm\"} = %v, want the age of its pending delivery:\n%s", age, grepLines(m, "oldest"))
	}
	for series, want := range map[string]float64{
		`kycd_quarantine_items`: 1,
		`kycd_http_requests_total{route="/webhooks/ralio",status="2xx"}`:               1,
		`kycd_http_requests_total{route="/webhooks/ralio",status="4xx"}`:               1,
		`kycd_http_requests_total{route="GET /api/v1/sessions/{id}",status="2xx"}`:     1,
		`kycd_http_request_duration_seconds_count{route="GET /api/v1/sessions/{id}"}`:  1,
		`kycd_http_request_duration_seconds_bucket{route="/webhooks/ralio",le="+Inf"}`: 2,
	} {
		if got := metricValue(m, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, series := range []string{
		`kycd_http_requests_total{route="GET /readyz",status="2xx"}`,
		`kycd_delivery_attempts_total{outcome="failed",sink="crm"}`,
	} {
		if got := metricValue(m, series); got < 1 {
			t.Errorf("%s = %v, want at least 1", series, got)
		}
	}

	a := s.mustDo(t, newRequest(http.MethodGet, s.URL+"/metrics", nil, http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}}))
	if ct := a.header.Get("Content-Type"); a.status != http.StatusOK || !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(string(a.body), "# EOF\n") {
		t.Errorf("GET /metrics asking for OpenMetrics = %d %q, body ending %q; want OpenMetrics", a.status, ct, a.body[max(0, len(a.body)-20):])
	}
}

// What on-call reads per sink: the deliveries waiting by state, how long
// notifications take from the webhook's acknowledgement to their delivery,
// and reconciliation's series before it ever ran.
func TestMetricsPerSinkAndReconciliationFromTheStart(t *testing.T) {
	t.Parallel()
	m := newMerchant(t, testSinkSecret)
	const delay = 300 * time.Millisecond
	m.delay.Store(int64(delay))
	api := closedURL(t) // never asked: the first run is an hour away
	s := startServer(t, "--sink", "name=crm,type=http,url="+m.URL, "--sink", "name=erp,type=http,url="+closedURL(t),
		"--sink-secret", testSinkSecret, "--retry-max-attempts", "1",
		"--reconcile-every", "1h", "--ralio-api-url", api, "--ralio-api-key", "k")

	before := s.metrics(t)
	for series, want := range map[string]float64{
		`kycd_reconcile_interval_seconds`:                  3600,
		`kycd_reconcile_last_run_timestamp_seconds`:        0,
		`kycd_reconcile_last_success_timestamp_seconds`:    0,
		`kycd_reconcile_runs_total{state="done"}`:          0,
		`kycd_reconcile_runs_total{state="failed"}`:        0,
		`kycd_reconcile_errors_total`:                      0,
		`kycd_sink_deliveries{sink="crm",state="pending"}`: 0,
		`kycd_sink_deliveries{sink="erp",state="dead"}`:    0,
		`kycd_delivery_latency_seconds_count{sink="crm"}`:  0,
		`kycd_delivery_latency_seconds_count{sink="erp"}`:  0,
	} {
		if got := metricValue(before, series); got != want {
			t.Errorf("before any webhook: %s = %v, want %v", series, got, want)
		}
	}

	start := time.Now()
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	s.deliver(t, example(t, "a-kyc_session_verified.json"))
	var after string
	eventually(t, "both notifications delivered to crm and dead at erp", func() bool {
		after = s.metrics(t)
		return metricValue(after, `kycd_delivery_latency_seconds_count{sink="crm"}`) == 2 &&
			metricValue(after, `kycd_sink_deliveries{sink="erp",state="dead"}`) == 2
	})
	elapsed := time.Since(start).Seconds()
	for series, want := range map[string]float64{
		`kycd_sink_deliveries{sink="crm",state="pending"}`:           0,
		`kycd_sink_deliveries{sink="crm",state="dead"}`:              0,
		`kycd_sink_deliveries{sink="erp",state="pending"}`:           0,
		`kycd_delivery_latency_seconds_count{sink="erp"}`:            0,
		`kycd_delivery_latency_seconds_bucket{sink="crm",le="0.25"}`: 0,
		`kycd_delivery_latency_seconds_bucket{sink="crm",le="+Inf"}`: 2,
		`kycd_reconcile_last_run_timestamp_seconds`:                  0,
	} {
		if got := metricValue(after, series); got != want {
			t.Errorf("after two webhooks: %s = %v, want %v", series, got, want)
		}
	}
	// Each took at least the merchant's delay, and no more than the test.
	if sum := metricValue(after, `kycd_delivery_latency_seconds_sum{sink="crm"}`); sum < 2*delay.Seconds() || sum > 2*elapsed {
		t.Errorf("kycd_delivery_latency_seconds_sum{sink=\"crm\"} = %v, want between %v (the merchant's delay, twice) and %v", sum, 2*delay.Seconds(), 2*elapsed)
	}
}
