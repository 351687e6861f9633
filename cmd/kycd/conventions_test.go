package main

// The CLI's conventions (issue 17): exit codes, examples and environment
// variables in every --help, one JSON envelope for every list, the
// filters support asks for, a confirmation before an erasure, and
// commands that say what they found.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/internal/storetest"
)

// triageDB is a database with storetest's triage outbox (sinks crm and erp
// registered by a serve), a stalled session and a paused sink.
func triageDB(t *testing.T) (db string, o storetest.TriageOutbox, stalled string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kycd.db")
	s := sqlitetest.OpenPath(t, path)
	o = storetest.NewTriageOutbox(t, s)
	stalled = uuid.NewString()
	storetest.RecordReview(t, s, stalled)
	svc := &app.Service{Store: s}
	ctx := context.Background()
	if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "crm", Type: "http"}, {Name: "erp", Type: "http"}, {Name: "gone", Type: "http"}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.PauseSink(ctx, "gone", "410 Gone"); err != nil {
		t.Fatal(err)
	}
	return "sqlite:" + path, o, stalled
}

// cliCode runs a command and returns its exit code and error text.
func cliCode(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := cli(t, args...)
	if err == nil {
		return 0, out
	}
	return exitCode(err), err.Error()
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	db, o, _ := triageDB(t)
	for _, c := range []struct {
		name string
		args []string
		want int
		says string
	}{
		{"unknown command", []string{"sesions", "list"}, exitUsage, "did you mean sessions"},
		{"unknown subcommand", []string{"sessions", "lst"}, exitUsage, "unknown command"},
		{"unknown flag", []string{"sessions", "list", "--colour", "--database", db}, exitUsage, "--colour"},
		{"bad value", []string{"sessions", "list", "--limit", "0", "--database", db}, exitUsage, "--limit 0"},
		{"bad time", []string{"sessions", "list", "--since", "yesterday", "--database", db}, exitUsage, "RFC 3339"},
		{"bad state", []string{"deliveries", "list", "--state", "lost", "--database", db}, exitUsage, "--state"},
		{"missing argument", []string{"sessions", "get", "--database", db}, exitUsage, "accepts 1 arg"},
		{"extra argument", []string{"sessions", "list", "extra", "--database", db}, exitUsage, "unknown command"},
		{"bad config value", []string{"sessions", "list", "--database", "mysql://x"}, exitUsage, "--database"},
		{"until before since", []string{"sessions", "list", "--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z", "--database", db}, exitUsage, "until must be after since"},
		{"unknown session", []string{"sessions", "get", uuid.NewString(), "--database", db}, exitNotFound, "not found"},
		{"unknown delivery", []string{"deliveries", "show", uuid.NewString(), "--database", db}, exitNotFound, "not found"},
		{"unknown sink", []string{"sinks", "resume", "nowhere", "--database", db}, exitNotFound, "unknown sink"},
		{"no database", []string{"sessions", "list", "--database", "sqlite:" + filepath.Join(t.TempDir(), "none.db")}, exitFailure, "no database"},
		{"drop of a session's id", []string{"deliveries", "drop", o.S1, "--database", db}, exitNotFound, "not found"},
	} {
		code, msg := cliCode(t, c.args...)
		if code != c.want || !strings.Contains(msg, c.says) {
			t.Errorf("%s: kycd %s exits %d (%s), want %d saying %q", c.name, strings.Join(c.args, " "), code, msg, c.want, c.says)
		}
	}
	help := mustCLI(t, "--help")
	for _, line := range []string{"Exit codes:", "0  success", "1  failure", "2  usage error", "3  not found"} {
		if !strings.Contains(help, line) {
			t.Errorf("kycd --help does not say %q:\n%s", line, help)
		}
	}
}

// TestExitCodesOfTheBinary: main exits with the code of its error.
func TestExitCodesOfTheBinary(t *testing.T) {
	t.Parallel()
	bin := buildKycd(t)
	db, _, _ := triageDB(t)
	for args, want := range map[string]int{
		"sessions list --database " + db:                                           0,
		"sessions list --colour":                                                   exitUsage,
		"sessions get " + uuid.NewString() + " --database " + db:                   exitNotFound,
		"sessions list --database sqlite:" + filepath.Join(t.TempDir(), "none.db"): exitFailure,
	} {
		cmd := exec.CommandContext(t.Context(), bin, strings.Fields(args)...)
		err := cmd.Run()
		code := 0
		var exit interface{ ExitCode() int }
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Errorf("kycd %s exited %d, want %d", args, code, want)
		}
	}
}

// walk calls fn on every command of the tree under root.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

func testTree() (*env, *cobra.Command) {
	e := newEnv(noEnv, strings.NewReader(""), nil, nil)
	return e, e.rootCmd()
}

func TestEveryCommandHasExamplesAndNamesItsEnvironment(t *testing.T) {
	t.Parallel()
	e, root := testTree()
	bound := 0
	walk(root, func(c *cobra.Command) {
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no Example in its --help", c.CommandPath())
		}
		if !strings.Contains(c.Example, c.CommandPath()) {
			t.Errorf("%s's examples do not run it:\n%s", c.CommandPath(), c.Example)
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if name := e.envOf(c, f); name != "" {
				bound++
				if !strings.Contains(f.Usage, name) {
					t.Errorf("%s --%s is set by %s, and its help does not say so: %q", c.CommandPath(), f.Name, name, f.Usage)
				}
			}
		})
	})
	if bound < 50 {
		t.Errorf("only %d flags are bound to an environment variable; the walk missed some", bound)
	}
	// A flag shared by commands says what it means to each.
	usage := func(path, flag string) string {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c.Flags().Lookup(flag) == nil {
			t.Fatalf("%s --%s: %v", path, flag, err)
		}
		return c.Flags().Lookup(flag).Usage
	}
	if u := usage("send", "ralio-secret"); strings.Contains(u, "generated and kept in the database when unset") || !strings.Contains(u, "sign") {
		t.Errorf("send --ralio-secret says %q, which is serve's help, not send's", u)
	}
	if u := usage("send", "addr"); strings.Contains(u, "listen") {
		t.Errorf("send --addr says %q: send listens nowhere", u)
	}
	if u := usage("serve", "addr"); strings.Contains(u, "send") {
		t.Errorf("serve --addr says %q", u)
	}
	if u := usage("quarantine replay", "ralio-secret"); !strings.Contains(u, "verify") {
		t.Errorf("quarantine replay --ralio-secret says %q, not what replay does with it", u)
	}
	help, _, _ := cliEnv(t, nil, "send", "--help")
	if !strings.Contains(help, "Examples:") || !strings.Contains(help, "[env KYCD_RALIO_SECRETS]") {
		t.Errorf("kycd send --help shows no examples or no variable names:\n%s", help)
	}
}

// A command's own flag that shares a name with one of serve's is not set
// by serve's variable: KYCD_SINKS holds sinks, not a filter.
func TestServesVariablesSetNoFilter(t *testing.T) {
	t.Parallel()
	db, _, _ := triageDB(t)
	var page struct{ Items []*kycd.Delivery }
	out, _, err := cliEnv(t, map[string]string{"KYCD_SINKS": "name=crm,type=http,url=https://crm.example/k"}, "deliveries", "list", "--state", "dead", "--json", "--database", db)
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Items) != 3 {
		t.Fatalf("deliveries list with KYCD_SINKS set = %s, %v; want the 3 dead deliveries", out, err)
	}
}

// Nor is it set by the configuration file's sinks.
func TestConfigFileSinksSetNoFilter(t *testing.T) {
	t.Parallel()
	db, _, _ := triageDB(t)
	file := filepath.Join(t.TempDir(), "kycd.yaml")
	if err := os.WriteFile(file, []byte("sinks:\n  - name: crm\n    type: http\n    url: https://crm.example/kyc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var page struct{ Items []*kycd.Delivery }
	jsonOf(t, &page, "deliveries", "list", "--state", "dead", "--config", file, "--database", db)
	if len(page.Items) != 3 {
		t.Fatalf("deliveries list with a config file's sinks = %d deliveries, want the 3 dead", len(page.Items))
	}
}

func TestEveryListPrintsOneEnvelope(t *testing.T) {
	t.Parallel()
	db, _, _ := triageDB(t)
	for _, args := range [][]string{
		{"sessions", "list"}, {"sessions", "list", "--limit", "1"}, {"sessions", "stalled"}, {"events", "list"}, {"deliveries", "list"},
		{"quarantine", "list"}, {"sinks", "list"}, {"tokens", "list"}, {"audit", "list"},
	} {
		out := mustCLI(t, append(args, "--json", "--database", db)...)
		var v map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("kycd %s --json is not a JSON object: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range v {
				if !yield(k) {
					return
				}
			}
		})
		var items []json.RawMessage
		if !slices.Equal(keys, []string{"items", "nextCursor"}) || json.Unmarshal(v["items"], &items) != nil {
			t.Errorf("kycd %s --json has keys %v, want items (a list) and nextCursor:\n%s", strings.Join(args, " "), keys, out)
		}
	}
	var page struct {
		Items      []kycd.SessionListItem
		NextCursor *string
	}
	jsonOf(t, &page, "sessions", "list", "--limit", "1", "--database", db)
	if len(page.Items) != 1 || page.NextCursor == nil || *page.NextCursor == "" {
		t.Errorf("sessions list --limit 1 = %+v, want one session and the next page's cursor", page)
	}
}

func TestSupportFilters(t *testing.T) {
	t.Parallel()
	db, o, stalled := triageDB(t)
	var sessions struct{ Items []kycd.SessionListItem }
	jsonOf(t, &sessions, "sessions", "list", "--code", "EXPIRED_DOCUMENT", "--database", db)
	if ids := sessionIDs(sessions.Items); !slices.Equal(ids, sorted(o.S1, o.S2)) {
		t.Errorf("sessions list --code EXPIRED_DOCUMENT = %v, want the two rejected", ids)
	}
	// storetest dates S1, S2 and S3 a second apart from its base time.
	jsonOf(t, &sessions, "sessions", "list", "--since", "2026-03-17T16:00:00.5Z", "--until", "2026-03-17T16:00:01.5Z", "--database", db)
	if ids := sessionIDs(sessions.Items); !slices.Equal(ids, []string{o.S2}) {
		t.Errorf("sessions list --since/--until = %v, want S2 alone", ids)
	}
	var stalledPage struct{ Items []kycd.StalledSession }
	jsonOf(t, &stalledPage, "sessions", "stalled", "--database", db)
	if len(stalledPage.Items) != 1 || stalledPage.Items[0].ID != stalled || stalledPage.Items[0].Reason == "" {
		t.Errorf("sessions stalled = %+v, want the session in REVIEW since March", stalledPage)
	}
	if out := mustCLI(t, "sessions", "stalled", "--database", db); !strings.Contains(out, stalled) || !strings.Contains(out, "REVIEW") {
		t.Errorf("sessions stalled printed:\n%s", out)
	}

	deliveries := func(args ...string) []*kycd.Delivery {
		t.Helper()
		var page struct{ Items []*kycd.Delivery }
		jsonOf(t, &page, append(append([]string{"deliveries", "list"}, args...), "--database", db)...)
		return page.Items
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--sink", "crm", "--state", "dead"}, 3},
		{[]string{"--session", o.S1}, 2},
		{[]string{"--subject", o.U2, "--state", "pending"}, 2},
		{[]string{"--type", kycd.NotifySessionVerified}, 2},
		{[]string{"--since", o.Third.Format(time.RFC3339Nano)}, 2},
		{[]string{"--until", o.Third.Format(time.RFC3339Nano), "--sink", "erp"}, 2},
		{[]string{"--error", "503"}, 2},
	} {
		if got := deliveries(c.args...); len(got) != c.want {
			t.Errorf("deliveries list %s = %d, want %d", strings.Join(c.args, " "), len(got), c.want)
		}
	}

	// summary groups what the filters select by sink and last error.
	var sum kycd.DeliverySummary
	jsonOf(t, &sum, "deliveries", "summary", "--state", "dead", "--database", db)
	want := []kycd.DeliveryGroup{{Sink: "crm", LastError: o.CRM503, Count: 2}, {Sink: "crm", LastError: o.CRM400, Count: 1}}
	if sum.Total != 3 || !slices.Equal(sum.Groups, want) {
		t.Errorf("deliveries summary --state dead = %+v, want %+v", sum, want)
	}
	if out := mustCLI(t, "deliveries", "summary", "--subject", o.U2, "--database", db); !strings.Contains(out, "erp") || !strings.Contains(out, o.CRM400) {
		t.Errorf("deliveries summary --subject printed:\n%s", out)
	}

	// retry --all-dead --sink takes one sink's dead deliveries only.
	if msg := wantCLIError(t, "deliveries", "retry", o.S1, "--sink", "crm", "--database", db); !strings.Contains(msg, "--all-dead") {
		t.Errorf("retry ID --sink: %s", msg)
	}
	if out := mustCLI(t, "deliveries", "retry", "--all-dead", "--sink", "erp", "--database", db); !strings.Contains(out, "0 dead deliveries of sink erp") {
		t.Errorf("retry --all-dead --sink erp printed %q, want 0", out)
	}
	if out := mustCLI(t, "deliveries", "retry", "--all-dead", "--sink", "crm", "--database", db); !strings.Contains(out, "3 dead deliveries of sink crm are due again") {
		t.Errorf("retry --all-dead --sink crm printed %q", out)
	}
	if dead := deliveries("--state", "dead"); len(dead) != 0 {
		t.Errorf("dead after the retry: %d", len(dead))
	}
}

func sessionIDs(items []kycd.SessionListItem) []string {
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestSessionGetShowsWhatTheSinksWereTold(t *testing.T) {
	t.Parallel()
	db, o, _ := triageDB(t)
	out := mustCLI(t, "sessions", "get", o.S1, "--database", db)
	for _, want := range []string{"Notifications", kycd.NotifySessionRejected, "crm", "dead", "1 attempt", o.CRM503, "erp", "pending", "the user was told: Your document has expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("sessions get does not show %q:\n%s", want, out)
		}
	}
	var s struct {
		ID            string `json:"sessionId"`
		Failures      []kycd.Failure
		Notifications []struct {
			Type       string
			Deliveries []*kycd.Delivery
		}
	}
	jsonOf(t, &s, "sessions", "get", o.S1, "--database", db)
	if s.ID != o.S1 || len(s.Failures) != 1 || !strings.HasPrefix(s.Failures[0].Guidance, "Your document has expired") {
		t.Errorf("sessions get --json = %+v, want the failure with its guidance", s)
	}
	if len(s.Notifications) != 1 || len(s.Notifications[0].Deliveries) != 2 {
		t.Errorf("sessions get --json notifications = %+v, want one with two deliveries", s.Notifications)
	}
}

func TestSubjectsEraseConfirms(t *testing.T) {
	t.Parallel()
	db, o, _ := triageDB(t)
	code, msg := cliCode(t, "subjects", "erase", o.U1, "--database", db)
	if code != exitUsage || !strings.Contains(msg, "--yes") {
		t.Errorf("subjects erase without a terminal or --yes exits %d (%s), want 2 naming --yes", code, msg)
	}
	erase := func(answer string) (string, error) {
		var out, errOut syncBuffer
		e := newEnv(noEnv, strings.NewReader(answer), &out, &errOut)
		e.interactive = true // as on a terminal
		err := e.execute(t.Context(), []string{"subjects", "erase", o.U1, "--type", "user", "--database", db})
		if !strings.Contains(errOut.String(), "cannot be undone") {
			t.Errorf("the question on the terminal = %q", errOut.String())
		}
		return out.String(), err
	}
	if _, err := erase("no\n"); err == nil || !strings.Contains(err.Error(), "nothing was erased") || exitCode(err) != exitFailure {
		t.Errorf("erase answered no: %v, want nothing erased", err)
	}
	if sub := mustCLI(t, "sessions", "get", o.S1, "--database", db); !strings.Contains(sub, "The provided document has expired") {
		t.Errorf("a refused erasure erased:\n%s", sub)
	}
	if out, err := erase("yes\n"); err != nil || !strings.Contains(out, "Erased the personal data") {
		t.Errorf("erase answered yes: %s, %v", out, err)
	}
}

func TestEventsListRefusesAnUnknownType(t *testing.T) {
	t.Parallel()
	db, _, _ := triageDB(t)
	code, msg := cliCode(t, "events", "list", "--type", "kyc_session_faild", "--database", db)
	if code != exitUsage || !strings.Contains(msg, "kyc_session_faild") || !strings.Contains(msg, "kyc_session_failed") {
		t.Errorf("events list --type kyc_session_faild exits %d: %s; want 2 listing the known types", code, msg)
	}
	var page struct{ Items []kycd.EventRecord }
	jsonOf(t, &page, "events", "list", "--type", "kyc_session_failed", "--database", db)
	if len(page.Items) != 2 {
		t.Errorf("events list --type kyc_session_failed = %d events, want 2", len(page.Items))
	}
	if out := mustCLI(t, "events", "list", "--type", "kyc_expiration_warning", "--database", db); !strings.Contains(out, "no events") {
		t.Errorf("a known type without events printed %q, want no events", out)
	}
}

func TestSinksResumeSaysWhatItFound(t *testing.T) {
	t.Parallel()
	db, _, _ := triageDB(t)
	if out := mustCLI(t, "sinks", "resume", "gone", "--database", db); !strings.HasPrefix(out, "resumed sink gone:") {
		t.Errorf("resume of a paused sink printed %q", out)
	}
	if out := mustCLI(t, "sinks", "resume", "gone", "--database", db); !strings.Contains(out, "was not paused") {
		t.Errorf("resume of a sink no longer paused printed %q", out)
	}
	var r struct {
		WasPaused bool
		Pending   int
	}
	jsonOf(t, &r, "sinks", "resume", "crm", "--database", db)
	if r.WasPaused {
		t.Errorf("sinks resume crm --json = %+v, want wasPaused false", r)
	}
	if code, msg := cliCode(t, "sinks", "resume", "nowhere", "--database", db); code != exitNotFound || !strings.Contains(msg, `unknown sink "nowhere"`) {
		t.Errorf("resume of an unknown sink exits %d: %s", code, msg)
	}
}
