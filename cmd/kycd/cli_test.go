package main

// The CLI as an operator uses it against a database that kycd serve runs
// on: every read of the API has its command, lists page, commands and
// arguments that do not exist fail, and no command but serve and migrate
// touches the schema.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/sqlite"
)

// cliEnv is cli with environment variables, returning stdout and stderr.
func cliEnv(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	err = run(ctx, args, func(k string) string { return vars[k] }, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// wantCLIError runs a command that must fail and returns its error text.
func wantCLIError(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cli(t, args...)
	if err == nil {
		t.Fatalf("kycd %s succeeded, want an error; output:\n%s", strings.Join(args, " "), out)
	}
	return err.Error()
}

// jsonOf runs a command with --json and decodes what it printed into v.
func jsonOf(t *testing.T, v any, args ...string) {
	t.Helper()
	out := mustCLI(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("kycd %s --json printed no JSON (%v):\n%s", strings.Join(args, " "), err, out)
	}
}

// staleFailed is a verification of the session of a-kyc_session_failed.json
// dated before its rejection: stale when it arrives after it.
func staleFailed(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_verified","timestamp":"2025-06-01T00:00:00.000Z","data":{"sessionId":%q,"userId":%q,"checks":[]}}`,
		id, failedSession, failedUser)
}

func TestCLIAgainstAServedDatabase(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	db := "sqlite:" + s.DB
	send := func(args ...string) string {
		t.Helper()
		return mustCLI(t, append([]string{"send", "--addr", s.Addr, "--ralio-secret", testSecret, "--database", db}, args...)...)
	}

	// send says what the event did, not only that it was received.
	if out := send(); !strings.Contains(out, "outcome: applied: session "+failedSession+" is REJECTED") {
		t.Errorf("kycd send printed:\n%s\nwant the outcome applied with the session's status", out)
	}
	if out := send(); !strings.Contains(out, "outcome: duplicate") {
		t.Errorf("kycd send of the same event again printed:\n%s\nwant the outcome duplicate", out)
	}
	staleID := uuid.NewString()
	staleFile := filepath.Join(t.TempDir(), "stale.json")
	if err := os.WriteFile(staleFile, staleFailed(staleID), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := send("--file", staleFile); !strings.Contains(out, "outcome: stale") || !strings.Contains(out, "nothing changed") {
		t.Errorf("kycd send of an older event printed:\n%s\nwant the outcome stale, saying nothing changed", out)
	}
	var sent struct {
		Status           int
		EventID, Outcome string
	}
	jsonOf(t, &sent, "send", "--addr", s.Addr, "--ralio-secret", testSecret, "--database", db, "--file", staleFile)
	if sent.Status != 200 || sent.EventID != staleID || sent.Outcome != "duplicate" {
		t.Errorf("kycd send --json = %+v, want 200, the event id, duplicate", sent)
	}

	// sessions list, by status (in either case) and subject.
	var sessions struct{ Items []kycd.SessionListItem }
	jsonOf(t, &sessions, "sessions", "list", "--status", "REJECTED", "--database", db)
	if len(sessions.Items) != 1 || sessions.Items[0].ID != failedSession || sessions.Items[0].Status != kycd.StatusRejected {
		t.Errorf("sessions list --status REJECTED = %+v, want the rejected session", sessions)
	}
	jsonOf(t, &sessions, "sessions", "list", "--status", "verified", "--subject", failedUser, "--database", db)
	if len(sessions.Items) != 0 {
		t.Errorf("sessions list --status verified = %+v, want none", sessions)
	}
	if out := mustCLI(t, "sessions", "list", "--database", db); !strings.Contains(out, failedSession) || !strings.Contains(out, "REJECTED") {
		t.Errorf("sessions list printed:\n%s", out)
	}

	// events list pages: it says when there is more, --cursor goes on,
	// --all takes every page.
	var events struct {
		Items      []kycd.EventRecord
		NextCursor *string
	}
	jsonOf(t, &events, "events", "list", "--database", db)
	outcomes := map[string]string{}
	for _, ev := range events.Items {
		outcomes[ev.ID] = ev.Outcome
	}
	if len(events.Items) != 2 || outcomes[failedEventID] != kycd.OutcomeApplied || outcomes[staleID] != kycd.OutcomeStale || events.NextCursor != nil {
		t.Errorf("events list --json = %+v, want the applied and the stale event", events)
	}
	first := mustCLI(t, "events", "list", "--limit", "1", "--database", db)
	m := regexp.MustCompile(`There are more: add --cursor (\S+)`).FindStringSubmatch(first)
	if m == nil || !strings.Contains(first, staleID) {
		t.Fatalf("events list --limit 1 printed:\n%s\nwant the last event received and how to see more", first)
	}
	if rest := mustCLI(t, "events", "list", "--limit", "1", "--cursor", m[1], "--database", db); !strings.Contains(rest, failedEventID) || strings.Contains(rest, "There are more") {
		t.Errorf("events list --cursor printed:\n%s\nwant the first event and no more", rest)
	}
	jsonOf(t, &events, "events", "list", "--all", "--database", db)
	if len(events.Items) != 2 {
		t.Errorf("events list --all = %d events, want 2", len(events.Items))
	}
	if msg := wantCLIError(t, "events", "list", "--all", "--limit", "5", "--database", db); !strings.Contains(msg, "--all") {
		t.Errorf("--all with --limit: %s", msg)
	}

	// events get: without the body unless asked.
	got := mustCLI(t, "events", "get", strings.ToUpper(staleID), "--database", db)
	if !strings.Contains(got, "stale") || strings.Contains(got, `"checks"`) || !strings.Contains(got, "--body") {
		t.Errorf("events get printed:\n%s\nwant the stale outcome, no body, how to see it", got)
	}
	var ev kycd.EventRecord
	jsonOf(t, &ev, "events", "get", staleID, "--body", "--database", db)
	if ev.Outcome != kycd.OutcomeStale || !jsonEqual(ev.Body, staleFailed(staleID)) {
		t.Errorf("events get --body --json = %+v, want the stale event with its body", ev)
	}

	// stats.
	var stats kycd.Stats
	// The window counts back from now; the sample's rejection is dated 2025.
	jsonOf(t, &stats, "stats", "--window", "87600h", "--database", db)
	if stats.SessionsBy[kycd.StatusRejected] != 1 || len(stats.TopFailureCodes) != 2 {
		t.Errorf("stats --json = %+v, want 1 REJECTED and its 2 failure codes", stats)
	}
	jsonOf(t, &stats, "stats", "--window", "1h", "--database", db)
	if len(stats.TopFailureCodes) != 0 {
		t.Errorf("stats --window 1h = %+v, want no failure code", stats)
	}
	if out := mustCLI(t, "stats", "--window", "87600h", "--database", db); !strings.Contains(out, "REJECTED") || !strings.Contains(out, "EXPIRED_DOCUMENT") {
		t.Errorf("stats printed:\n%s", out)
	}

	// deliveries show: the log sink delivered the rejection.
	notification := kycd.NotificationID(failedEventID)
	var delivery *kycd.Delivery
	eventually(t, "the rejection delivered to the log sink", func() bool {
		var page kycd.DeliveryPage
		jsonOf(t, &page, "deliveries", "list", "--database", db)
		for _, d := range page.Items {
			if d.NotificationID == notification && d.State == kycd.DeliveryDelivered {
				delivery = d
			}
		}
		return delivery != nil
	})
	shown := mustCLI(t, "deliveries", "show", delivery.ID, "--database", db)
	for _, want := range []string{delivery.ID, notification, "kyc.session.rejected", "delivered", "Attempts (1)", `"sessionId": "` + failedSession + `"`} {
		if !strings.Contains(shown, want) {
			t.Errorf("deliveries show has no %q:\n%s", want, shown)
		}
	}

	// resend --event: the log sink gets the notification a second time.
	var resent struct {
		NotificationID string
		Deliveries     []kycd.Resent
	}
	jsonOf(t, &resent, "resend", "--event", failedEventID, "--database", db)
	if resent.NotificationID != notification || len(resent.Deliveries) != 1 || resent.Deliveries[0] != (kycd.Resent{Sink: "log", DeliveryID: delivery.ID}) {
		t.Errorf("resend --event = %+v, want log's delivery in a new round", resent)
	}
	eventually(t, "the notification on stdout twice", func() bool {
		return strings.Count(s.Stdout.String(), `"id":"`+notification+`"`) == 2
	})
	if out := mustCLI(t, "resend", "--notification", notification, "--sink", "log", "--database", db); !strings.Contains(out, "to log: its delivery is due again") {
		t.Errorf("resend --notification --sink log printed:\n%s", out)
	}
	for args, want := range map[string]string{
		"--event " + staleID:                                           "is stale: it notified nothing",
		"--event " + uuid.NewString():                                  "not found",
		"--notification " + uuid.NewString():                           "not found",
		"--event " + failedEventID + " --sink crm":                     `sink "crm" is not configured`,
		"--event " + failedEventID + " --notification " + notification: "give --event ID or --notification ID",
	} {
		if msg := wantCLIError(t, append(append([]string{"resend"}, strings.Fields(args)...), "--database", db)...); !strings.Contains(msg, want) {
			t.Errorf("kycd resend %s: %s, want %q", args, msg, want)
		}
	}
}

// Commands and arguments that do not exist fail, saying where help is.
func TestUnknownCommandsAndArguments(t *testing.T) {
	t.Parallel()
	for args, want := range map[string][]string{
		"sessions bogus":             {`unknown command "bogus" for "kycd sessions"`, "see kycd sessions --help"},
		"sesions":                    {`unknown command "sesions" for "kycd"`, "did you mean sessions?", "see kycd --help"},
		"sessions get":               {"accepts 1 arg(s), received 0", "see kycd sessions get --help"},
		"sessions get a b":           {"accepts 1 arg(s), received 2", "see kycd sessions get --help"},
		"deliveries list --bogus":    {"unknown flag: --bogus", "see kycd deliveries list --help"},
		"events list extra":          {`unknown command "extra" for "kycd events list"`, "see kycd events list --help"},
		"--bogus":                    {"unknown flag: --bogus", "see kycd --help"},
		"sessions list --max-body 5": {"unknown flag: --max-body"}, // serve's alone
		"sessions list --sink log":   {"unknown flag: --sink"},
		"version --database x":       {"unknown flag: --database"},
	} {
		msg := wantCLIError(t, strings.Fields(args)...)
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("kycd %s: %q, want it to say %q", args, msg, w)
			}
		}
		if strings.Contains(msg, "kycd kycd") {
			t.Errorf("kycd %s: %q names kycd twice", args, msg)
		}
	}
	// A group alone prints its help.
	if out := mustCLI(t, "deliveries"); !strings.Contains(out, "show") || !strings.Contains(out, "retry") {
		t.Errorf("kycd deliveries printed:\n%s\nwant its subcommands", out)
	}
}

// Each command's help lists the flags it reads: serve's own stay on serve.
func TestServerFlagsOnlyOnServe(t *testing.T) {
	t.Parallel()
	serveHelp := mustCLI(t, "serve", "--help")
	for _, cmd := range [][]string{{"sessions", "list"}, {"deliveries", "retry"}, {"send"}, {"migrate"}, {"quarantine", "replay"}, {"reconcile"}} {
		help := mustCLI(t, append(cmd, "--help")...)
		for _, flag := range []string{"--sink ", "--sink-secret", "--retry-base", "--max-body", "--body-budget", "--max-backlog",
			"--shutdown-drain", "--reconcile-every", "--review-alert-after", "--admin-token", "--retention"} {
			// deliveries retry's own --sink picks one sink's dead
			// deliveries (as deliveries list's does): not serve's.
			own := flag == "--sink " && cmd[0] == "deliveries"
			if strings.Contains(help, flag) && !own {
				t.Errorf("kycd %s --help lists %s, serve's flag", strings.Join(cmd, " "), flag)
			}
			if own && strings.Contains(help, "notification sink, repeatable") {
				t.Errorf("kycd %s --help describes --sink as serve's", strings.Join(cmd, " "))
			}
			if !strings.Contains(serveHelp, flag) {
				t.Errorf("kycd serve --help has no %s", flag)
			}
		}
	}
	if help := mustCLI(t, "quarantine", "replay", "--help"); !strings.Contains(help, "--guidance") {
		t.Errorf("quarantine replay (which notifies with guidance) has no --guidance:\n%s", help)
	}
	if help := mustCLI(t, "reconcile", "--help"); !strings.Contains(help, "--ralio-api-url") {
		t.Errorf("reconcile has no --ralio-api-url:\n%s", help)
	}
}

// An environment variable for serve does not break other commands, and an
// error caused by one names it.
func TestEnvironmentErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	if _, _, err := cliEnv(t, map[string]string{"KYCD_MAX_BODY": "lots", "KYCD_SINKS": "nonsense"}, "sessions", "list", "--database", "sqlite:"+s.DB); err != nil {
		t.Errorf("kycd sessions list with serve's variables set wrong: %v, want them ignored", err)
	}
	for _, tt := range []struct {
		vars map[string]string
		args []string
		want []string
	}{
		{map[string]string{"KYCD_MAX_BODY": "10"}, []string{"serve"}, []string{"--max-body 10", "KYCD_MAX_BODY"}},
		{map[string]string{"KYCD_RETRY_BASE": "5h"}, []string{"serve"}, []string{"--retry-base", "KYCD_RETRY_BASE"}},
		{map[string]string{"KYCD_ADDR": "nowhere"}, []string{"send"}, []string{"--addr", "KYCD_ADDR"}},
		{map[string]string{"KYCD_DATABASE": "mysql://x"}, []string{"sessions", "list"}, []string{"--database", "KYCD_DATABASE"}},
	} {
		_, _, err := cliEnv(t, tt.vars, tt.args...)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v kycd %s = %v, want an error naming %s", tt.vars, strings.Join(tt.args, " "), err, w)
			}
		}
	}
}

// send to an address where nothing listens fails at once and says what to
// check, instead of retrying for seconds.
func TestSendToNothingFailsAtOnce(t *testing.T) {
	t.Parallel()
	ln, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	msg := wantCLIError(t, "send", "--addr", addr, "--ralio-secret", testSecret)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("kycd send to a closed port took %s, want it to give up at once", took)
	}
	for _, want := range []string{"connection refused", "--addr " + addr, "kycd serve"} {
		if !strings.Contains(msg, want) {
			t.Errorf("kycd send to a closed port: %q, want it to say %q", msg, want)
		}
	}
}

func TestVersionFlagAndJSON(t *testing.T) {
	t.Parallel()
	flag, cmd := mustCLI(t, "--version"), mustCLI(t, "version")
	if flag != cmd || !strings.HasPrefix(flag, "kycd ") || !strings.Contains(flag, "go1.") {
		t.Errorf("kycd --version = %q, kycd version = %q; want the same line, naming the Go version", flag, cmd)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var b struct{ Version, Revision, GoVersion string }
		jsonOf(t, &b, args...)
		if b.Version == "" || b.Revision == "" || !strings.HasPrefix(b.GoVersion, "go1.") {
			t.Errorf("kycd %s --json = %+v", strings.Join(args, " "), b)
		}
	}
}

func TestMigrateJSON(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")
	var m struct {
		Database      string
		SchemaVersion int
	}
	jsonOf(t, &m, "migrate", "--database", db)
	if m.Database != db || m.SchemaVersion < 5 {
		t.Errorf("kycd migrate --json = %+v", m)
	}
}

// Only serve and migrate change the schema: a reading command refuses a
// database never migrated or behind this build, leaving it as it was, and
// creates no file where there is none.
func TestReadCommandsNeverMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if msg := wantCLIError(t, "sessions", "list", "--database", "sqlite:"+missing); !strings.Contains(msg, "no database at "+missing) {
		t.Errorf("a missing database: %s", msg)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("a reading command created %s", missing)
	}

	blank := filepath.Join(dir, "blank.db")
	st, err := sqlite.Open(t.Context(), blank) // both files, no schema
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, args := range [][]string{{"sessions", "list"}, {"events", "get", uuid.NewString()}, {"stats"}, {"deliveries", "retry", "--all-dead"}, {"send", "--addr", "127.0.0.1:1"}} {
		msg := wantCLIError(t, append(args, "--database", "sqlite:"+blank)...)
		if !strings.Contains(msg, "no kycd schema") && !strings.Contains(msg, "no Ralio secret") {
			t.Errorf("kycd %s on a database never migrated: %s, want it refused", strings.Join(args, " "), msg)
		}
	}
	tables := func(path string) int {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := tables(blank); n != 0 {
		t.Errorf("reading commands created %d tables in a database never migrated", n)
	}

	// Behind this build: the last migration undone, as a database an
	// older kycd migrated looks.
	older := filepath.Join(dir, "older.db")
	mustCLI(t, "migrate", "--database", "sqlite:"+older)
	db, err := sql.Open("sqlite", "file:"+older)
	if err != nil {
		t.Fatal(err)
	}
	var latest int
	if err := db.QueryRowContext(t.Context(), `SELECT max(version_id) FROM goose_db_version`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `DELETE FROM goose_db_version WHERE version_id = ?`, latest); err != nil {
		t.Fatal(err)
	}
	// Migrations are numbered as work began, so the one before the last
	// need not be latest-1.
	var before int
	if err := db.QueryRowContext(t.Context(), `SELECT max(version_id) FROM goose_db_version`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	db.Close()
	msg := wantCLIError(t, "sessions", "list", "--database", "sqlite:"+older)
	if want := fmt.Sprintf("has schema version %d and this kycd needs %d", before, latest); !strings.Contains(msg, want) || !strings.Contains(msg, "kycd migrate") {
		t.Errorf("a database one migration behind: %s, want %q and the fix", msg, want)
	}

	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		u := postgrestest.URL(t)
		msg := wantCLIError(t, "sessions", "list", "--database", u)
		if !strings.Contains(msg, "no kycd schema") {
			t.Errorf("a PostgreSQL database never migrated: %s", msg)
		}
		var m struct{ SchemaVersion int }
		jsonOf(t, &m, "migrate", "--database", u)
		if out := mustCLI(t, "sessions", "list", "--database", u); !strings.Contains(out, "no sessions") {
			t.Errorf("sessions list once migrated printed:\n%s", out)
		}
	})
}

// deliveries show prints a notification without an invitation's contact
// details, as the log sink writes it.
func TestDeliveryShownWithoutPersonalData(t *testing.T) {
	t.Parallel()
	payload := []byte(`{"id":"n1","type":"kyc.session.invited","invitation":{"firstName":"Ana","email":"ana@example.com"},"sessionId":"s1"}`)
	got := string(withoutPersonalData(payload))
	if strings.Contains(got, "Ana") || strings.Contains(got, "ana@example.com") || !strings.Contains(got, `"sessionId":"s1"`) || !strings.Contains(got, "personal data not shown") {
		t.Errorf("withoutPersonalData = %s", got)
	}
	if plain := []byte(`{"id":"n2","type":"kyc.session.rejected"}`); string(withoutPersonalData(plain)) != string(plain) {
		t.Errorf("a notification without an invitation was changed: %s", withoutPersonalData(plain))
	}
}
