package main

// Issue 15, item 2: a safety net for signature failures.

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// otherSecret is the secret Ralio signs with in these tests when kycd was
// given another one.
const otherSecret = "e2e-ralio-secret-configured-only-later"

// heldView is a quarantine item with its replay check.
type heldView struct {
	ID            string `json:"id"`
	Reason        string `json:"reason"`
	Replayable    bool   `json:"replayable"`
	ReplayBlocked string `json:"replayBlocked"`
}

func (s *kycdServer) held(t *testing.T) []heldView {
	t.Helper()
	var v struct {
		Items []heldView `json:"items"`
	}
	s.getJSON(t, "/api/v1/quarantine", &v)
	var out []heldView
	for _, it := range v.Items {
		if it.Reason == kycd.QuarantineSignature {
			out = append(out, it)
		}
	}
	return out
}

// A body signed with a secret kycd does not have is answered 401 and kept
// in the hold; its replay is refused, saying why, until serve is started
// with that secret too; then it is applied and its session projected. An
// unsigned request is answered 401 and not kept.
func TestSignatureHoldReplayedOnceTheSecretIsConfigured(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id, sid := uuid.NewString(), uuid.NewString()
	body := sessionEvent(id, "kyc_session_verified", time.Now().UTC().Format(time.RFC3339), sid)
	wantProblem(t, s.mustDo(t, webhookRequest(s.URL, otherSecret, body)), http.StatusUnauthorized)
	unsigned := sessionEvent(uuid.NewString(), "kyc_session_verified", time.Now().UTC().Format(time.RFC3339), uuid.NewString())
	wantProblem(t, s.mustDo(t, newRequest(http.MethodPost, s.URL+"/webhooks/ralio", unsigned, http.Header{"Content-Type": {"application/json"}})), http.StatusUnauthorized)

	var held []heldView
	eventually(t, "the body to be held", func() bool { held = s.held(t); return len(held) > 0 })
	if len(held) != 1 || held[0].Replayable || !strings.Contains(held[0].ReplayBlocked, "configured now") {
		t.Fatalf("held = %+v, want the signed body only, not replayable under the secret configured now", held)
	}
	q := held[0].ID
	a := s.api(t, http.MethodPost, "/api/v1/quarantine/"+q+"/replay")
	if p := wantProblem(t, a, http.StatusConflict); !strings.Contains(p.Detail, "does not verify under any Ralio secret configured now") {
		t.Errorf("replay under the first secret only: %s, want why", a)
	}
	if _, err := cli(t, "quarantine", "replay", q, "--database", "sqlite:"+s.DB, "--ralio-secret", testSecret); err == nil ||
		!strings.Contains(err.Error(), "configured now") {
		t.Errorf("kycd quarantine replay under the first secret only: %v, want refused, saying why", err)
	}
	if ev := s.api(t, http.MethodGet, "/api/v1/events/"+id); ev.status != http.StatusNotFound {
		t.Fatalf("the held event is known before its replay: %s", ev)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	// Rotation: the new secret beside the old one.
	s2 := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+s.DB,
		"--ralio-secret", testSecret, "--ralio-secret", otherSecret, "--admin-token", testToken)
	s2.DB, s2.Secret, s2.Token = s.DB, testSecret, testToken
	if h := s2.held(t); len(h) != 1 || !h[0].Replayable {
		t.Fatalf("held under both secrets = %+v, want it replayable", h)
	}
	wantJSON(t, s2.api(t, http.MethodPost, "/api/v1/quarantine/"+q+"/replay"), http.StatusOK,
		`{"quarantineId":"`+q+`","eventId":"`+id+`","outcome":"applied"}`)
	wantStatus(t, s2.session(t, sid), "VERIFIED")
	if h := s2.held(t); len(h) != 0 {
		t.Errorf("pending held bodies after the replay: %+v", h)
	}
}

var refusedLine = regexp.MustCompile(`webhook signature refused.* count=(\d+)`)

// Many bad signatures: the metric counts each, the log has at most a line
// a second standing for them all, and the hold keeps at most its count
// cap, the newest.
func TestSignatureFailuresSampledAndHoldCapped(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--signature-hold-max-count", "3")
	const n = 60
	start := time.Now()
	var last string
	for range n {
		id, body := newFailedEvent(400)
		last = id
		wantProblem(t, s.mustDo(t, webhookRequest(s.URL, otherSecret, body)), http.StatusUnauthorized)
	}
	elapsed := time.Since(start)
	s.wantMetric(t, "kycd_signature_failures_total "+strconv.Itoa(n))
	s.wantMetric(t, "kycd_signature_hold_full_total 0") // one at a time: the queue never fills
	lines := refusedLine.FindAllStringSubmatch(s.Stderr.String(), -1)
	counted := 0
	for _, l := range lines {
		c, _ := strconv.Atoi(l[1])
		counted += c
	}
	if len(lines) == 0 || len(lines) > int(elapsed/time.Second)+1 || counted > n {
		t.Errorf("%d refusals in %s logged %d lines counting %d; want at most one a second", n, elapsed, len(lines), counted)
	}
	newest := func() string {
		held := s.held(t)
		if len(held) == 0 {
			return ""
		}
		// Read as the hold is still being written: the item listed may
		// have been dropped for a newer one since (404).
		a := s.api(t, http.MethodGet, "/api/v1/quarantine/"+held[0].ID)
		var item struct {
			Body *string `json:"body"`
		}
		if a.status != http.StatusOK || json.Unmarshal(a.body, &item) != nil || item.Body == nil {
			return ""
		}
		return *item.Body
	}
	eventually(t, "the last body sent to be held", func() bool { return strings.Contains(newest(), last) })
	if held := s.held(t); len(held) != 3 {
		t.Fatalf("held %d bodies, want the cap, 3", len(held))
	}
}

var generatedSecret = regexp.MustCompile(`Generated a Ralio webhook secret[^\n]*\n\s+(\S+)`)

// serve warns at start when the secret kept in the database is not among
// those configured; kycd secrets show prints it (to stdout only); with it
// configured beside the new one the warning is gone.
func TestStoredSecretWarningAndSecretsShow(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")
	s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", db, "--admin-token", testToken)
	m := generatedSecret.FindStringSubmatch(generatedSecrets(t, strings.TrimPrefix(db, "sqlite:")))
	if m == nil {
		t.Fatalf("no generated secret written out:\n%s", s.Stderr)
	}
	stored := m[1]
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	empty := "sqlite:" + filepath.Join(t.TempDir(), "empty.db")
	mustCLI(t, "migrate", "--database", empty)
	if out, err := cli(t, "secrets", "show", "--database", empty); err == nil || out != "" || kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Errorf("kycd secrets show on a database without a secret = %q, %v; want ENOTFOUND and nothing on stdout", out, err)
	}
	if got := strings.TrimSpace(mustCLI(t, "secrets", "show", "--database", db)); got != stored {
		t.Errorf("kycd secrets show = %q, want %q", got, stored)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(mustCLI(t, "secrets", "show", "--database", db, "--json")), &doc); err != nil || doc["ralioSecret"] != stored {
		t.Errorf("kycd secrets show --json = %v, %v", doc, err)
	}

	s = serve(t, nil, "--addr", "127.0.0.1:0", "--database", db, "--admin-token", testToken, "--ralio-secret", otherSecret)
	out := s.Stderr.String()
	if !strings.Contains(out, "WARNING: the Ralio secret kept in the database") || !strings.Contains(out, "kept in the database is not among the configured ones") {
		t.Errorf("serve with another secret did not warn:\n%s", out)
	}
	if strings.Contains(out, stored) {
		t.Errorf("serve wrote the stored secret out:\n%s", out)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	s = serve(t, nil, "--addr", "127.0.0.1:0", "--database", db, "--admin-token", testToken, "--ralio-secret", otherSecret+","+stored)
	if out := s.Stderr.String(); strings.Contains(out, "WARNING") {
		t.Errorf("serve with the stored secret among its own warned:\n%s", out)
	}
	// Delivered signed with the stored one: taken.
	_, body := newFailedEvent(300)
	wantJSON(t, s.mustDo(t, webhookRequest(s.URL, stored, body)), http.StatusOK, `{"received":true}`)
}

// A held body is personal data like every other copy: the export of the
// subject it names lists it, and the erasure empties it.
func TestHeldBodyExportedAndErased(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	user := uuid.NewString()
	body := levelEvent(uuid.NewString(), time.Now().UTC().Format(time.RFC3339), user, "REGULAR")
	wantProblem(t, s.mustDo(t, webhookRequest(s.URL, otherSecret, body)), http.StatusUnauthorized)
	eventually(t, "the body to be held", func() bool { return len(s.held(t)) == 1 })
	q := s.held(t)[0].ID
	db := "sqlite:" + s.DB
	if out := mustCLI(t, "subjects", "export", user, "--type", "user", "--database", db); !strings.Contains(out, q) || !strings.Contains(out, user) {
		t.Errorf("export of the subject a held body names lacks it:\n%s", out)
	}
	mustCLI(t, "subjects", "erase", user, "--type", "user", "--yes", "--database", db)
	var item struct {
		Body *string `json:"body"`
	}
	s.getJSON(t, "/api/v1/quarantine/"+q, &item)
	if item.Body != nil && strings.Contains(*item.Body, user) {
		t.Errorf("the held body still names the erased subject: %s", *item.Body)
	}
}
