package main

// End-to-end tests of named, routed, rotatable sinks: deliveries belong to
// a sink's name, orphans are shown and handled, a 410 pauses a sink, and no
// credential of a sink or database URL leaves kycd.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// closedURL is an http URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// restart serves the database of s again, with flags.
func restart(t *testing.T, s *kycdServer, flags ...string) *kycdServer {
	t.Helper()
	if err := s.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	again := serve(t, nil, append([]string{"--addr", "127.0.0.1:0", "--database", "sqlite:" + s.DB,
		"--ralio-secret", testSecret, "--admin-token", testToken}, flags...)...)
	again.DB, again.Secret, again.Token = s.DB, testSecret, testToken
	return again
}

// deliveryView is a delivery as the API shows it.
type deliveryView struct {
	ID           string `json:"id"`
	Sink         string `json:"sink"`
	State        string `json:"state"`
	AttemptCount int    `json:"attemptCount"`
	LastError    string `json:"lastError"`
	Orphaned     bool   `json:"orphaned"`
	SinkPaused   bool   `json:"sinkPaused"`
	Actions      []struct {
		Actor, Action, From, To string
	} `json:"actions"`
}

func (s *kycdServer) deliveries(t *testing.T, query string) []deliveryView {
	t.Helper()
	var page struct {
		Items []deliveryView `json:"items"`
	}
	s.getJSON(t, "/api/v1/deliveries"+query, &page)
	return page.Items
}

// apiPost sends an API request with the admin token and a JSON body.
func (s *kycdServer) apiPost(t *testing.T, path, body string) answer {
	t.Helper()
	return s.mustDo(t, newRequest(http.MethodPost, s.URL+path, []byte(body),
		http.Header{"Authorization": {"Bearer " + s.Token}, "Content-Type": {"application/json"}}))
}

// newRejections delivers n rejections of new sessions.
func (s *kycdServer) newRejections(t *testing.T, n int) {
	t.Helper()
	for range n {
		s.deliver(t, sessionEvent(uuid.NewString(), "kyc_session_failed", "2026-11-20T10:00:00.000Z", uuid.NewString()))
	}
}

// Issue 7: a sink whose URL was wrong, fixed across a restart, receives
// every notification that was pending for it, in the named form and in the
// shorthand alike.
func TestFixedSinkURLReceivesWhatWasPending(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		sink func(url string) string
	}{
		{"named", func(u string) string { return "name=crm,type=http,url=" + u + "/hook" }},
		{"shorthand", func(u string) string { return "http=" + u + "/hook" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			retry := []string{"--sink-secret", testSinkSecret, "--retry-base", "20ms", "--retry-cap", "50ms", "--retry-max-attempts", "100000"}
			s := startServer(t, append([]string{"--sink", tt.sink(closedURL(t))}, retry...)...)
			s.newRejections(t, 3)
			eventually(t, "every delivery to fail at least once", func() bool {
				ds := s.deliveries(t, "")
				for _, d := range ds {
					if d.AttemptCount == 0 || d.State != kycd.DeliveryPending {
						return false
					}
				}
				return len(ds) == 3
			})
			m := newMerchant(t, testSinkSecret)
			s = restart(t, s, append([]string{"--sink", tt.sink(m.URL)}, retry...)...)
			eventually(t, "the 3 pending notifications to reach the corrected URL", func() bool { return len(m.notifications()) >= 3 })
			eventually(t, "every delivery to be recorded delivered", func() bool {
				for _, d := range s.deliveries(t, "") {
					if d.State != kycd.DeliveryDelivered {
						return false
					}
				}
				return true
			})
			if got := m.notifications(); len(got) != 3 || m.badSig != 0 {
				t.Fatalf("merchant received %d notifications, %d with a bad signature; want 3, none", len(got), m.badSig)
			}
		})
	}
}

// A delivery whose sink is no longer configured is shown (API, CLI,
// metrics, a warning at start) and an operator moves it to another sink or
// drops it, noted with who did it.
func TestOrphanedDeliveriesMovedOrDropped(t *testing.T) {
	t.Parallel()
	flags := []string{"--sink-secret", testSinkSecret, "--retry-base", "20ms", "--retry-cap", "50ms", "--retry-max-attempts", "100000"}
	s := startServer(t, append([]string{"--sink", "name=old,type=http,url=" + closedURL(t)}, flags...)...)
	s.newRejections(t, 2)
	eventually(t, "both deliveries to fail once", func() bool {
		ds := s.deliveries(t, "")
		return len(ds) == 2 && ds[0].AttemptCount > 0 && ds[1].AttemptCount > 0
	})
	m := newMerchant(t, testSinkSecret)
	s = restart(t, s, append([]string{"--sink", "name=crm,type=http,url=" + m.URL}, flags...)...)
	if !strings.Contains(s.Stderr.String(), "no longer configured") {
		t.Errorf("no warning about the orphaned deliveries at start:\n%s", s.Stderr)
	}
	orphans := s.deliveries(t, "?orphaned=true")
	if len(orphans) != 2 || !orphans[0].Orphaned || orphans[0].Sink != "old" || orphans[0].State != kycd.DeliveryPending {
		t.Fatalf("orphaned deliveries = %+v, want old's 2, pending, flagged", orphans)
	}
	s.wantMetric(t, `kycd_outbox_orphaned_deliveries{sink="old"} 2`)
	s.wantMetric(t, `kycd_outbox_orphaned_deliveries{sink="crm"} 0`)
	db := "sqlite:" + s.DB
	if out := mustCLI(t, "deliveries", "list", "--orphaned", "--database", db); strings.Count(out, "sink not configured") != 2 {
		t.Errorf("kycd deliveries list --orphaned does not flag both:\n%s", out)
	}
	if out := mustCLI(t, "sinks", "list", "--database", db); !regexp.MustCompile(`old\s.*not configured\s+2`).MatchString(out) ||
		!regexp.MustCompile(`crm\s+http\s.*configured`).MatchString(out) {
		t.Errorf("kycd sinks list does not show old unconfigured with its 2 deliveries, and crm:\n%s", out)
	}

	// One moves to crm through the CLI and is delivered; the other is
	// dropped through the API.
	moved, dropped := orphans[0].ID, orphans[1].ID
	if _, err := cli(t, "deliveries", "move", moved, "--to", "nowhere", "--database", db); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("move to an unknown sink = %v, want refused", err)
	}
	if out := mustCLI(t, "deliveries", "move", moved, "--to", "crm", "--database", db); !strings.Contains(out, "crm") {
		t.Errorf("kycd deliveries move printed %q", out)
	}
	eventually(t, "the moved delivery to reach crm", func() bool { return len(m.notifications()) == 1 })
	if a := s.apiPost(t, "/api/v1/deliveries/"+dropped+"/drop", ""); a.status != http.StatusOK {
		t.Fatalf("drop = %s", a)
	}
	var d deliveryView
	s.getJSON(t, "/api/v1/deliveries/"+dropped, &d)
	if d.State != kycd.DeliveryDropped || d.Orphaned || len(d.Actions) != 1 || d.Actions[0].Action != "drop" || d.Actions[0].Actor != "admin" || d.Actions[0].From != "old" {
		t.Errorf("dropped delivery = %+v, want dropped, noted as dropped by admin (the token's name) from old", d)
	}
	eventually(t, "the moved delivery to be recorded delivered", func() bool {
		s.getJSON(t, "/api/v1/deliveries/"+moved, &d)
		return d.State == kycd.DeliveryDelivered
	})
	if d.Sink != "crm" || len(d.Actions) != 1 || d.Actions[0].Action != "move" || !strings.HasPrefix(d.Actions[0].Actor, "cli") || d.Actions[0].To != "crm" {
		t.Errorf("moved delivery = %+v, want crm's, noted as moved by the CLI's user", d)
	}
	s.wantMetric(t, `kycd_outbox_orphaned_deliveries{sink="old"} 0`)
	if left := s.deliveries(t, "?orphaned=true"); len(left) != 0 {
		t.Errorf("orphans left: %+v", left)
	}
}

// Issue 10: a sink takes the notification types of its events filter, and
// during a rotation every delivery carries a signature of each secret, so
// receivers holding the old or the new one verify every delivery; for one
// sink (secret=…) and for all (--sink-secret A,B).
func TestSinkEventsFilterAndSecretRotation(t *testing.T) {
	t.Parallel()
	const (
		old1, new1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
		old2, new2 = "whsec_dGhlIG9sZCBnbG9iYWwgc2VjcmV0IG9mIDMyIGJ5dGU=", "whsec_dGhlIG5ldyBnbG9iYWwgc2VjcmV0IG9mIDMyIGJ5dGU="
	)
	rejOld, rejNew, allOld, allNew := newMerchant(t, old1), newMerchant(t, new1), newMerchant(t, old2), newMerchant(t, new2)
	s := startServer(t,
		"--sink", "name=rejections-old,type=http,url="+rejOld.URL+",events=kyc.session.rejected,secret="+old1+",secret="+new1,
		"--sink", "name=rejections-new,type=http,url="+rejNew.URL+",events=kyc.session.rejected,secret="+old1+";"+new1,
		"--sink", "name=all-old,type=http,url="+allOld.URL,
		"--sink", "name=all-new,type=http,url="+allNew.URL,
		"--sink-secret", old2+","+new2)
	session := uuid.NewString()
	s.deliver(t, sessionEvent(uuid.NewString(), "kyc_session_manual_review", "2026-11-20T09:00:00.000Z", session))
	s.deliver(t, sessionEvent(uuid.NewString(), "kyc_session_failed", "2026-11-20T10:00:00.000Z", session))
	s.deliver(t, sessionEvent(uuid.NewString(), "kyc_session_verified", "2026-11-20T11:00:00.000Z", uuid.NewString()))
	for _, m := range []*merchant{allOld, allNew} {
		eventually(t, "all three notifications at a sink without a filter", func() bool { return len(m.notifications()) == 3 })
	}
	for _, m := range []*merchant{rejOld, rejNew} {
		eventually(t, "the rejection at a rejections sink", func() bool { return len(m.notifications()) == 1 })
	}
	// The marker: once the unfiltered sinks have the verification, which
	// came last, a filtered sink would have had it too.
	for name, m := range map[string]*merchant{"rejections-old": rejOld, "rejections-new": rejNew} {
		if got := m.notifications(); len(got) != 1 || got[0]["type"] != kycd.NotifySessionRejected {
			t.Errorf("%s received %v, want the rejection only", name, got)
		}
	}
	for name, m := range map[string]*merchant{"rejections-old": rejOld, "rejections-new": rejNew, "all-old": allOld, "all-new": allNew} {
		if m.badSig != 0 {
			t.Errorf("%s refused %d deliveries it could not verify with its one secret", name, m.badSig)
		}
	}
	var sinks struct {
		Items []kycd.SinkInfo `json:"items"`
	}
	s.getJSON(t, "/api/v1/sinks", &sinks)
	for _, k := range sinks.Items {
		if strings.HasPrefix(k.Name, "rejections") && (len(k.Events) != 1 || k.Events[0] != kycd.NotifySessionRejected) {
			t.Errorf("sink %+v, want its events filter shown", k)
		}
	}
	out := s.Stdout.String() + s.Stderr.String()
	for _, k := range []string{old1, new1, old2, new2} {
		if strings.Contains(out, strings.TrimPrefix(k, "whsec_")) {
			t.Errorf("a configured secret was printed:\n%s", out)
		}
	}
}

// Issue 10: a 410 Gone pauses the sink (API, metric, log) instead of
// killing the delivery; its deliveries wait until an operator resumes it,
// and are delivered then.
func TestGonePausesTheSinkUntilResumed(t *testing.T) {
	t.Parallel()
	m := newMerchant(t, testSinkSecret)
	m.status.Store(http.StatusGone)
	s := startServer(t, "--sink", "name=crm,type=http,url="+m.URL, "--sink-secret", testSinkSecret)
	s.newRejections(t, 1)
	var sinks struct {
		Items []kycd.SinkInfo `json:"items"`
	}
	eventually(t, "the sink to be paused", func() bool {
		s.getJSON(t, "/api/v1/sinks", &sinks)
		return len(sinks.Items) == 1 && !sinks.Items[0].PausedAt.IsZero()
	})
	if !strings.Contains(sinks.Items[0].PauseReason, "410") {
		t.Errorf("pause reason %q does not name the 410", sinks.Items[0].PauseReason)
	}
	s.wantMetric(t, `kycd_sink_paused{sink="crm"} 1`)
	if !strings.Contains(s.Stderr.String(), "sink paused") {
		t.Errorf("no log line says the sink is paused:\n%s", s.Stderr)
	}
	s.newRejections(t, 1)
	eventually(t, "both deliveries to show the pause", func() bool {
		ds := s.deliveries(t, "?state=pending")
		return len(ds) == 2 && ds[0].SinkPaused && ds[1].SinkPaused
	})
	db := "sqlite:" + s.DB
	if out := mustCLI(t, "sinks", "list", "--database", db); !strings.Contains(out, "paused since") {
		t.Errorf("kycd sinks list does not say crm is paused:\n%s", out)
	}
	m.status.Store(http.StatusNoContent)
	if out := mustCLI(t, "sinks", "resume", "crm", "--database", db); !strings.Contains(out, "2 of its pending deliveries") {
		t.Errorf("kycd sinks resume printed %q, want the 2 deliveries due again", out)
	}
	eventually(t, "both notifications to arrive after the resume", func() bool { return len(m.notifications()) == 2 })
	s.wantMetric(t, `kycd_sink_paused{sink="crm"} 0`)
}

// Issue 7, "Secrets never leave": a sink URL with a password and a token
// fails its deliveries, and neither shows in the server's output, the
// API's answers, the metrics or the CLI's output; the database holds no
// copy of the generated admin token, nor of the sink's credentials.
func TestSecretsNeverLeave(t *testing.T) {
	t.Parallel()
	const pw, token = "Pa55w0rdSECRET", "T0K3NSECRET"
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(unavailable.Close)
	withCreds := func(base string) string {
		return strings.Replace(base, "http://", "http://merchant:"+pw+"@", 1) + "/hook?token=" + token
	}
	db := filepath.Join(t.TempDir(), "kycd.db")
	s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db, "--ralio-secret", testSecret,
		"--sink", "name=refused,type=http,url="+withCreds(closedURL(t)),
		"--sink", "http="+withCreds(unavailable.URL),
		"--sink-secret", testSinkSecret, "--retry-base", "20ms", "--retry-cap", "50ms")
	s.DB, s.Secret = db, testSecret
	adminToken := regexp.MustCompile(`Generated an admin token[^\n]*\n\s*(\S+)`).FindStringSubmatch(generatedSecrets(t, db))
	if adminToken == nil {
		t.Fatalf("no generated admin token written out:\n%s", s.Stderr)
	}
	s.Token = adminToken[1]
	s.newRejections(t, 2)
	eventually(t, "failed attempts at both sinks", func() bool {
		ds := s.deliveries(t, "")
		failed := 0
		for _, d := range ds {
			if d.LastError != "" {
				failed++
			}
		}
		return len(ds) == 4 && failed == 4
	})

	seen := map[string]string{
		"stdout":  s.Stdout.String(),
		"metrics": s.metrics(t),
	}
	for _, path := range []string{"/api/v1/deliveries", "/api/v1/sinks", "/api/v1/deliveries?state=pending&limit=1"} {
		seen["GET "+path] = string(s.api(t, http.MethodGet, path).body)
	}
	for _, d := range s.deliveries(t, "") {
		a := s.api(t, http.MethodGet, "/api/v1/deliveries/"+d.ID)
		seen["GET /api/v1/deliveries/"+d.ID] = string(a.body)
		if !strings.Contains(a.String(), "xxxxx") && !strings.Contains(a.String(), "503") {
			t.Errorf("delivery %s shows neither a redacted URL nor the 503: %s", d.ID, a)
		}
	}
	for _, args := range [][]string{
		{"deliveries", "list"}, {"deliveries", "list", "--json"}, {"sinks", "list"}, {"sinks", "list", "--json"},
		{"deliveries", "list", "--state", "pending", "--limit", "1"},
	} {
		seen["kycd "+strings.Join(args, " ")] = mustCLI(t, append(args, "--database", "sqlite:"+db)...)
	}
	// Startup errors: a NATS sink and a database that cannot be reached.
	_, err := cli(t, "serve", "--addr", "127.0.0.1:0", "--database", "sqlite:"+filepath.Join(t.TempDir(), "k.db"), "--admin-token", "x",
		"--sink", "name=bus,type=nats,url=nats://kycd:"+pw+"@127.0.0.1:1?subject=kyc&token="+token)
	seen["serve with an unreachable NATS sink"] = errString(err)
	_, err = cli(t, "migrate", "--database", "postgres://kycd:"+pw+"@127.0.0.1:1/kycd?password="+token+"&connect_timeout=2")
	seen["migrate on an unreachable database"] = errString(err)
	_, err = cli(t, "migrate", "--database", "postgre://kycd:"+pw+"@127.0.0.1:1/kycd?password="+token)
	seen["migrate on a misspelt database URL"] = errString(err)
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	seen["stderr"] = s.Stderr.String() // with the shutdown's lines
	for where, text := range seen {
		if strings.Contains(text, pw) || strings.Contains(text, token) {
			t.Errorf("%s shows a credential:\n%s", where, text)
		}
	}
	if !strings.Contains(seen["stderr"], "xxxxx") {
		t.Errorf("the logs never name the failing sink URL, redacted:\n%s", seen["stderr"])
	}

	// The database files (SQLite's main file, its WAL and the log) hold no
	// copy of the admin token, nor the sink's password or token.
	files, _ := filepath.Glob(db + "*")
	if len(files) < 2 {
		t.Fatalf("database files = %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{s.Token, pw, token} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s holds %q", filepath.Base(f), secret)
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The serving line and kycd migrate name a PostgreSQL database without
// the password given in its URL.
func TestDatabasePasswordNeverPrinted(t *testing.T) {
	t.Parallel()
	const pw = "Pa55w0rdPG"
	u := postgrestest.URL(t) + "&password=" + pw // trust authentication never asks for it
	out := mustCLI(t, "migrate", "--database", u)
	s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", u, "--admin-token", testToken, "--ralio-secret", testSecret)
	if !strings.Contains(s.Stderr.String(), "serving") {
		t.Fatalf("no serving line:\n%s", s.Stderr)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"kycd migrate": out, "serve's stderr": s.Stderr.String(), "serve's stdout": s.Stdout.String()} {
		if strings.Contains(text, pw) {
			t.Errorf("%s shows the database password:\n%s", where, text)
		}
	}
}

// An admin token that an older kycd kept in plain text is replaced by its
// hash at the next start, and keeps working. (Migration 00006 moves the
// old admin_token setting, as it is, into the tokens table as the token
// named admin: that is the state this test starts from.)
func TestPlaintextAdminTokenHashedAtStart(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "kycd.db")
	const legacy = "legacy-plaintext-admin-token"
	st := openDB(t, db)
	if err := st.PutToken(context.Background(), &kycd.Token{Name: "admin", Role: kycd.RoleAdmin, Hash: legacy, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db, "--ralio-secret", testSecret)
	if strings.Contains(s.Stderr.String()+generatedSecrets(t, db), "Generated an admin token") {
		t.Fatalf("a new admin token was generated although one was kept:\n%s", s.Stderr)
	}
	s.Token = legacy
	var sinks json.RawMessage
	s.getJSON(t, "/api/v1/sinks", &sinks) // the old token still opens the API
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	tokens, err := openDB(t, db).Tokens(context.Background())
	if err != nil || len(tokens) != 1 || tokens[0].Name != "admin" || !kycd.IsTokenHash(tokens[0].Hash) || !kycd.TokenMatches(tokens[0].Hash, legacy) {
		t.Fatalf("tokens = %+v, %v; want admin, kept as the hash of the old token", tokens, err)
	}
	for _, f := range []string{db, db + "-wal", db + "-log"} {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(legacy)) {
			t.Errorf("%s still holds the old token in the clear", f)
		}
	}
}

// Deliveries are listed a page at a time; the CLI says when there is more.
func TestDeliveriesListPages(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.newRejections(t, 3)
	eventually(t, "3 deliveries", func() bool { return len(s.deliveries(t, "")) == 3 })
	db := "sqlite:" + s.DB
	out := mustCLI(t, "deliveries", "list", "--limit", "2", "--database", db)
	cursor := regexp.MustCompile(`--cursor (\S+)`).FindStringSubmatch(out)
	if cursor == nil || strings.Count(out, "kyc.session.rejected") != 2 {
		t.Fatalf("kycd deliveries list --limit 2 does not show 2 and say there is more:\n%s", out)
	}
	rest := mustCLI(t, "deliveries", "list", "--limit", "2", "--cursor", cursor[1], "--database", db)
	if strings.Count(rest, "kyc.session.rejected") != 1 || strings.Contains(rest, "--cursor") {
		t.Fatalf("the second page:\n%s\nwant the last delivery, and no more", rest)
	}
	var page struct {
		Items      []deliveryView `json:"items"`
		NextCursor string         `json:"nextCursor"`
	}
	s.getJSON(t, "/api/v1/deliveries?limit=2", &page)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("API page = %+v, want 2 and a nextCursor", page)
	}
}
