package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// One future-dated event froze a session for ever (issue 15, point 7):
// REJECTED stamped 2099-01-01, then a real VERIFIED, and the session stayed
// REJECTED with the VERIFIED stale, without a log line or a metric. With
// --max-clock-skew 2s the 2099 event holds the session until its receipt
// plus 2 s only: a VERIFIED stamped 3 s later wins.
func TestFutureDatedEventCannotHoldSession(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--max-clock-skew", "2s")
	got := futureDatedEvent(t, s.URL, s.Stderr.String)
	if got.err != "" {
		t.Fatal(got.err)
	}
	out := mustCLI(t, "sessions", "get", got.sessionID, "--database", "sqlite:"+s.DB)
	if !regexp.MustCompile(`2099-01-01\S*\s+kyc_session_failed\s+\S+\s+applied; clock skew: ordered at \S+`).MatchString(out) {
		t.Errorf("kycd sessions get:\n%s\nwant the 2099 REJECTED marked clock skew with the time it is ordered at", out)
	}
}

// clockSkewScenario is the same through the built binary, for the fault
// suite.
func clockSkewScenario(t *testing.T, bin string, rows *scenarioRows) {
	addr := freeAddr(t)
	p := startProcess(t, bin, addr, "--database", "sqlite:"+filepath.Join(t.TempDir(), "kycd.db"),
		"--ralio-secret", testSecret, "--admin-token", testToken, "--shutdown-drain", "0s", "--max-clock-skew", "2s")
	got := futureDatedEvent(t, "http://"+addr, p.stderr.String)
	if got.err != "" {
		t.Error(got.err)
	}
	rows.add(t, faultRow{
		Fault: "`--max-clock-skew 2s`: a signed REJECTED stamped 2099-01-01, then, 3 s after it was received, a signed VERIFIED of the same session stamped now",
		Expected: "the session VERIFIED; the 2099 event kept in its history with its timestamp, flagged `\"clockSkew\":true` and ordered at its receipt + 2 s; " +
			"one WARN line without personal data; `kycd_events_clock_skewed_total 1`",
		Observed: got.observed,
		Acked:    got.acked, Found: got.found, Counted: true,
	})
}

type skewResult struct {
	observed     string
	sessionID    string
	acked, found int
	err          string // what went wrong, "" when nothing
}

// futureDatedEvent plays point 7 against the kycd at baseURL (serving
// with --max-clock-skew 2s), reading its log through stderr.
func futureDatedEvent(t *testing.T, baseURL string, stderr func() string) skewResult {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var res skewResult
	fail := func(format string, args ...any) skewResult {
		res.err = fmt.Sprintf(format, args...)
		if res.observed == "" {
			res.observed = res.err
		}
		return res
	}
	const secretWords = "Jane Doe's passport"
	sid, user := uuid.NewString(), uuid.NewString()
	res.sessionID = sid
	rejected, verified := uuid.NewString(), uuid.NewString()
	body := func(id, typ, ts, message string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"event":%q,"timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":[{"type":"document-verification","state":"Refused","reasons":[{"type":"document","code":"EXPIRED_DOCUMENT","message":%q}]}]}}`,
			id, typ, ts, sid, user, message)
	}
	deliver := func(b []byte) error {
		resp, err := client.Do(webhookRequest(baseURL, testSecret, b))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("webhook answered %d: %s", resp.StatusCode, msg)
		}
		res.acked++
		return nil
	}
	type entry struct {
		EventID    string    `json:"eventId"`
		Timestamp  time.Time `json:"timestamp"`
		ReceivedAt time.Time `json:"receivedAt"`
		Applied    bool      `json:"applied"`
		ClockSkew  bool      `json:"clockSkew"`
		OrderedAt  time.Time `json:"orderedAt"`
	}
	var sess struct {
		Status        string  `json:"status"`
		StatusEventID string  `json:"statusEventId"`
		History       []entry `json:"history"`
	}
	// waitFor reads the session until it has n history entries.
	waitFor := func(n int) error {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			req := newRequest(http.MethodGet, baseURL+"/api/v1/sessions/"+sid, nil, http.Header{"Authorization": {"Bearer " + testToken}})
			resp, err := client.Do(req)
			if err == nil {
				if resp.StatusCode == http.StatusOK {
					err = json.NewDecoder(resp.Body).Decode(&sess)
				} else {
					err = fmt.Errorf("GET the session: %d", resp.StatusCode)
				}
				resp.Body.Close()
				if err == nil && len(sess.History) == n {
					return nil
				}
				if err == nil {
					err = fmt.Errorf("%d history entries", len(sess.History))
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("session %s after 10 s: want %d history entries: %w", sid, n, err)
			}
		}
	}

	y2099 := "2099-01-01T00:00:00.000Z"
	if err := deliver(body(rejected, "kyc_session_failed", y2099, secretWords)); err != nil {
		return fail("the 2099 REJECTED: %v", err)
	}
	if err := waitFor(1); err != nil {
		return fail("%v", err)
	}
	received := sess.History[0].ReceivedAt
	if sess.Status != "REJECTED" || !sess.History[0].ClockSkew {
		return fail("after the 2099 REJECTED: session %+v, want REJECTED, its history entry flagged clockSkew", sess)
	}
	time.Sleep(time.Until(received.Add(3 * time.Second)))
	if err := deliver(body(verified, "kyc_session_verified", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "")); err != nil {
		return fail("the real VERIFIED: %v", err)
	}
	if err := waitFor(2); err != nil {
		return fail("%v", err)
	}
	res.found = 2
	var r, v entry
	for _, h := range sess.History {
		switch h.EventID {
		case rejected:
			r = h
		case verified:
			v = h
		}
	}
	res.observed = fmt.Sprintf("session %s by the VERIFIED: %v; the 2099 entry: clockSkew %v, timestamp %s, ordered at receipt + %s",
		sess.Status, sess.StatusEventID == verified, r.ClockSkew, r.Timestamp.Format(time.DateOnly), r.OrderedAt.Sub(r.ReceivedAt))
	if sess.Status != "VERIFIED" || sess.StatusEventID != verified || !v.Applied || v.ClockSkew {
		return fail("session %+v: want VERIFIED by the real event %s, applied and not flagged", sess, verified)
	}
	if !r.ClockSkew || !r.Timestamp.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) || !r.OrderedAt.Equal(r.ReceivedAt.Add(2*time.Second)) {
		return fail("the 2099 history entry = %+v: want clockSkew, its 2099 timestamp, orderedAt its receipt + 2s", r)
	}

	metric := regexp.MustCompile(`(?m)^kycd_events_clock_skewed_total (\S+)$`)
	resp, err := client.Do(newRequest(http.MethodGet, baseURL+"/metrics", nil, nil))
	if err != nil {
		return fail("GET /metrics: %v", err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := metric.FindStringSubmatch(string(text))
	if m == nil || m[1] != "1" {
		return fail("metrics: %q, want kycd_events_clock_skewed_total 1", m)
	}
	var warn []string
	for line := range strings.Lines(stderr()) {
		if strings.Contains(line, "max-clock-skew") && strings.Contains(line, rejected) {
			warn = append(warn, strings.TrimSpace(line))
		}
	}
	if len(warn) != 1 || !strings.Contains(warn[0], "WARN") || strings.Contains(warn[0], "Jane") || strings.Contains(warn[0], user) {
		return fail("log lines about the 2099 event: %q, want one WARN line without the reason message or user id", warn)
	}
	res.observed += fmt.Sprintf("; `kycd_events_clock_skewed_total %s`; one WARN line: %s", m[1], redactTimes(warn[0]))
	return res
}

// redactTimes keeps a log line's message and keys, not its varying times,
// so the fault suite's row reads the same on every run.
func redactTimes(line string) string {
	line = regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+Z`).ReplaceAllString(line, "…")
	return "`" + regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f-]{27}`).ReplaceAllString(line, "…") + "`"
}

// --max-clock-skew is checked, and every command that projects events
// takes it, since they must all order alike.
func TestMaxClockSkewFlag(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")
	for _, v := range []string{"0s", "500ms", "25h", "-1m"} {
		if _, err := cli(t, "serve", "--database", db, "--max-clock-skew", v); err == nil || !strings.Contains(err.Error(), "--max-clock-skew") {
			t.Errorf("serve --max-clock-skew %s: %v, want a refusal naming the flag", v, err)
		}
	}
	err := run(t.Context(), []string{"serve", "--database", db}, func(k string) string {
		if k == "KYCD_MAX_CLOCK_SKEW" {
			return "1ms"
		}
		return ""
	}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "KYCD_MAX_CLOCK_SKEW") {
		t.Errorf("KYCD_MAX_CLOCK_SKEW=1ms: %v, want a refusal naming the variable", err)
	}
	for _, cmd := range [][]string{{"serve"}, {"rebuild"}, {"reconcile"}, {"quarantine", "replay"}} {
		if help := mustCLI(t, append(cmd, "--help")...); !strings.Contains(help, "--max-clock-skew") {
			t.Errorf("kycd %s --help has no --max-clock-skew", strings.Join(cmd, " "))
		}
	}
}
