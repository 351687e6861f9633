package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sqlite"
)

// hostile is text that would act on a terminal: it retitles the window
// (OSC), clears the screen (CSI), forges a line (CR LF) and a column
// (TAB), sends a C1 CSI (U+009B), a DEL, reverses the line (U+202E) and
// ends in a byte that is not UTF-8.
const hostile = "\x1b]0;pwned\x07\x1b[2J\r\n2026-01-01T00:00:00.000Z  forged\tline\u009b31m\x7f\u202eevil\xff"

// rawControl says where out holds a control character a terminal would
// act on (kycd.IsControl, but for the LF that ends lines and the TAB a
// body may hold), or a byte that is not UTF-8; "" when it holds none.
func rawControl(out string) string {
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRuneInString(out[i:])
		if (r == utf8.RuneError && size == 1) || (kycd.IsControl(r) && r != '\n' && r != '\t') {
			from, to := max(0, i-40), min(len(out), i+40)
			return fmt.Sprintf("%U at byte %d, in %q", r, i, out[from:to])
		}
		i += size
	}
	return ""
}

// commandsOf lists kycd's commands as `kycd help` does, each as its words
// (e.g. "sessions get"), walking every group.
func commandsOf(t *testing.T, words ...string) []string {
	t.Helper()
	out, err := cli(t, append(words, "--help")...)
	if err != nil {
		t.Fatalf("kycd %s --help: %v", strings.Join(words, " "), err)
	}
	_, list, found := strings.Cut(out, "Available Commands:\n")
	if !found {
		return []string{strings.Join(words, " ")}
	}
	list, _, _ = strings.Cut(list, "\n\n")
	var cmds []string
	for _, line := range strings.Split(list, "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if name == "" || name == "help" || name == "completion" {
			continue
		}
		cmds = append(cmds, commandsOf(t, append(slices.Clone(words), name)...)...)
	}
	return cmds
}

// hostileTextScenario puts hostile text everywhere kycd keeps text from
// the outside (reason messages and codes, an event type, quarantined
// bodies, a sink's name and pause reason, an audit entry) and runs every
// command that prints for a person, and each with --json: no output holds
// a raw control character (issue 15). A command the table does not name
// fails the scenario, so a new command is walked too.
func hostileTextScenario(t *testing.T, _ string, rows *scenarioRows) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, hostile)
	}))
	t.Cleanup(receiver.Close)
	ralioAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":[{"id":%s,"status":%s}],"total":1}`, marshal(hostile), marshal(hostile))
	}))
	t.Cleanup(ralioAPI.Close)
	s := startServer(t, "--sink", "name=crm,type=http,url="+receiver.URL, "--retry-base", "1h")
	db := "sqlite:" + s.DB

	// Through the webhook: a rejection whose reason holds the text, an
	// event of a type named by it, and bodies the quarantine keeps.
	session, user, eventID := uuid.NewString(), uuid.NewString(), uuid.NewString()
	h := marshal(hostile)
	rejected := fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_failed","timestamp":"2026-03-17T16:00:00.000Z","data":{"sessionId":%q,"userId":%q,"checks":[{"type":"document-verification","state":"Refused","reasons":[{"type":"document","code":"EXPIRED_DOCUMENT","message":%s,"category":%s}]}]}}`,
		eventID, session, user, h, h)
	s.deliver(t, rejected)
	unknownType := fmt.Appendf(nil, `{"id":%q,"event":%s,"timestamp":"2026-03-17T16:00:01.000Z","data":{"sessionId":%q,"userId":%q}}`,
		uuid.NewString(), h, session, user)
	s.post(t, unknownType)
	s.post(t, fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_failed","timestamp":%s,"data":{"sessionId":%s}}`, uuid.NewString(), h, h))
	s.post(t, []byte(hostile+"\n"+hostile))

	// Written as an older kycd could have: an audit entry and a sink.
	ctx := context.Background()
	store, err := sqlite.Open(ctx, s.DB)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.AddAudit(ctx, &kycd.AuditEntry{At: time.Now(), Actor: hostile, Action: hostile, Target: "sink:" + hostile,
		Remote: hostile, Outcome: kycd.AuditRefused, Detail: hostile}); err != nil {
		t.Fatal(err)
	}
	tx, err := store.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutSink(ctx, kycd.SinkInfo{Name: hostile, Type: hostile, Target: hostile, RegisteredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetSinkPause(ctx, hostile, time.Now(), hostile); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// A viewer's request with the text in its path is refused 400 and
	// leaves nothing in the audit trail.
	viewer := strings.TrimSpace(mustCLI(t, "tokens", "create", "support", "--role", "viewer", "--database", db))
	refused := s.mustDo(t, newRequest(http.MethodPost, s.URL+"/api/v1/sinks/%1B%5D0%3Bpwned%07%0D%0Aforged/resume", nil,
		http.Header{"Authorization": {"Bearer " + viewer}}))
	if refused.status != http.StatusBadRequest {
		t.Errorf("a viewer's resume of a sink named with control characters = %s, want 400", refused)
	}
	var trail kycd.AuditPage
	jsonOf(t, &trail, "audit", "list", "--actor", "support", "--database", db)
	if len(trail.Items) != 0 {
		t.Errorf("the viewer's refused request left %d audit entries, want none: %+v", len(trail.Items), trail.Items[0])
	}

	var deliveries kycd.DeliveryPage
	eventually(t, "a delivery that failed", func() bool {
		jsonOf(t, &deliveries, "deliveries", "list", "--database", db)
		return len(deliveries.Items) > 0 && deliveries.Items[0].AttemptCount > 0
	})
	delivery := deliveries.Items[0]
	var list struct{ Items []kycd.Quarantined }
	jsonOf(t, &list, "quarantine", "list", "--database", db)
	quarantined := list.Items
	if len(quarantined) < 2 {
		t.Fatalf("quarantine list = %d items, want the 2 bodies refused", len(quarantined))
	}
	qid := quarantined[0].ID
	hostileFile := filepath.Join(t.TempDir(), "hostile.json")
	if err := os.WriteFile(hostileFile, fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_failed","timestamp":"2026-03-17T16:00:02.000Z","data":{"sessionId":%q,"userId":%q,"checks":[{"type":"liveness","state":"Refused","reasons":[{"type":"x","code":"X","message":%s}]}]}}`,
		uuid.NewString(), session, user, h), 0o600); err != nil {
		t.Fatal(err)
	}

	hostileConfig := filepath.Join(t.TempDir(), "kycd.yaml")
	// YAML's escapes, as a file can hold them: the file itself may hold
	// no control character.
	if err := os.WriteFile(hostileConfig, []byte(`generated-secrets-file: "\x1b]0;pwned\x07\x1b[2J\r\n2026-01-01T00:00:00.000Z  forged\tline\u009b31m\x7f\u202eevil"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Every command kycd has, with the arguments that make it print what
	// it keeps; escaped says its output must show the hostile text,
	// escaped (by kycd, or in a JSON body as the JSON escapes it), so the
	// table cannot pass by printing nothing.
	type command struct {
		args    []string
		escaped bool
	}
	withDB := func(args ...string) []string { return append(args, "--database", db) }
	backupDir := t.TempDir()
	commands := map[string][]command{
		"audit list":         {{withDB("audit", "list"), true}},
		"deliveries list":    {{withDB("deliveries", "list"), false}},
		"deliveries show":    {{withDB("deliveries", "show", delivery.ID), false}},
		"deliveries summary": {{withDB("deliveries", "summary"), false}},
		"deliveries retry":   {{withDB("deliveries", "retry", delivery.ID), false}, {withDB("deliveries", "retry", hostile), false}},
		"deliveries move":    {{withDB("deliveries", "move", delivery.ID, "--to", hostile), false}},
		"deliveries drop":    {{withDB("deliveries", "drop", hostile), false}},
		"events list":        {{withDB("events", "list"), true}},
		"events get":         {{withDB("events", "get", eventID, "--body"), true}, {withDB("events", "get", hostile), false}},
		"quarantine list":    {{withDB("quarantine", "list"), false}},
		"quarantine show":    {{withDB("quarantine", "show", qid), true}, {withDB("quarantine", "show", quarantined[1].ID), true}},
		"quarantine replay":  {{withDB("quarantine", "replay", qid), false}},
		"quarantine discard": {{withDB("quarantine", "discard", hostile), false}},
		"sessions list":      {{withDB("sessions", "list"), false}},
		"sessions stalled":   {{withDB("sessions", "stalled"), false}},
		"sessions get":       {{withDB("sessions", "get", session), true}, {withDB("sessions", "get", hostile), false}},
		"sinks list":         {{withDB("sinks", "list"), true}},
		"sinks resume":       {{withDB("sinks", "resume", hostile), false}},
		"stats":              {{withDB("stats"), false}},
		"subjects get":       {{withDB("subjects", "get", user), false}, {withDB("subjects", "get", user, "--type", hostile), false}},
		"subjects export":    {{withDB("subjects", "export", user), true}},
		"tokens list":        {{withDB("tokens", "list"), false}},
		"tokens revoke":      {{withDB("tokens", "revoke", hostile), false}},
		"resend":             {{withDB("resend", delivery.NotificationID), false}, {withDB("resend", hostile), false}},
		"send":               {{withDB("send", "--addr", s.Addr, "--ralio-secret", testSecret, "--file", hostileFile), false}},
		"reconcile":          {{withDB("reconcile", "--ralio-api-url", ralioAPI.URL, "--ralio-api-key", "k"), false}},
		"migrate":            {{withDB("migrate"), false}},
		// A file name may hold any byte but NUL and '/': backup and
		// restore print the names they were given.
		"backup": {{withDB("backup", filepath.Join(backupDir, hostile+".db")), true}, {withDB("backup", filepath.Join(backupDir, hostile+".db")), false}},
		"restore": {{withDB("restore", filepath.Join(backupDir, hostile+"-missing.db")), true},
			{[]string{"restore", filepath.Join(backupDir, hostile+".db"), "--database", "sqlite:" + filepath.Join(backupDir, hostile+"-restored.db")}, true}},
		"secrets show":   {{withDB("secrets", "show"), false}},
		"version":        {{[]string{"version"}, false}},
		"config check":   {{[]string{"config", "check", "--config", hostileConfig}, true}, {[]string{"config", "check", "--addr", hostile}, false}},
		"subjects erase": {{withDB("subjects", "erase", user, "--yes"), false}},
		"tokens create":  {{withDB("tokens", "create", hostile, "--role", "viewer"), false}},
		"healthcheck":    {{[]string{"healthcheck", "--addr", s.Addr}, false}, {[]string{"healthcheck", "--url", "http://" + s.Addr + "/" + hostile}, false}},
	}
	// Commands that print nothing from the store or the outside: serve
	// and the emulator print their own addresses and generated secrets,
	// rebuild counts events (and must not run beside serve).
	notWalked := map[string]bool{"serve": true, "emulator": true, "rebuild": true}
	var missing []string
	for _, c := range commandsOf(t) {
		if _, ok := commands[c]; !ok && !notWalked[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		t.Errorf("commands the hostile-text table does not walk: %s; add them to hostileTextScenario", strings.Join(missing, ", "))
	}

	// The erasure goes last: it removes the reason messages.
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	slices.Sort(names)
	names = append(slices.DeleteFunc(names, func(n string) bool { return n == "subjects erase" }), "subjects erase")
	runs, bad := 0, 0
	for _, name := range names {
		for _, c := range commands[name] {
			for _, args := range [][]string{c.args, append(slices.Clone(c.args), "--json")} {
				runs++
				stdout, stderr, err := cliEnv(t, nil, args...)
				printed := stdout + stderr
				if err != nil {
					printed += "kycd: " + shown(describe(err)) + "\n" // as main prints it
				}
				if where := rawControl(printed); where != "" {
					bad++
					t.Errorf("kycd %s printed a raw control character: %s", shown(strings.Join(args, " ")), where)
				}
				if c.escaped && !slices.Contains(args, "--json") && !strings.Contains(printed, `\x1b]0;pwned\x07`) && !strings.Contains(printed, `\u001b]0;pwned\u0007`) {
					t.Errorf("kycd %s does not show the hostile text, escaped:\n%s", shown(strings.Join(args, " ")), printed)
				}
			}
		}
	}
	rows.add(t, faultRow{
		Fault: "Hostile text (ESC, OSC, CSI, CR, LF, TAB, C1, DEL, U+202E, a byte not UTF-8) in reason messages, an event type, " +
			"quarantined bodies, a sink and an audit entry; a viewer's request with it in its path",
		Expected: "No command prints a raw control character, in its human output or with --json; the request is refused 400 and not audited",
		Observed: fmt.Sprintf("%d command runs (%d commands, each also with --json): %d printed a raw control character; the request: %d, %d audit entries",
			runs, len(commands), bad, refused.status, len(trail.Items)),
	})
}
