package main

// End-to-end tests of the configuration file (--config, KYCD_CONFIG), the
// *_FILE secrets, kycd config check, and serve's logs for production:
// --log-level, JSON on every line, no generated secret in the log stream,
// and a request id on the answer and on the request's log lines.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// writeFile writes a file of the test's, returning its path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// envOf is a getenv over vars.
func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// jsonLines parses every line of a JSON log stream, failing the test on
// a line that is not a JSON object.
func jsonLines(t *testing.T, stream string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimRight(stream, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line %d is not JSON (%v): %q", i+1, err, line)
			continue
		}
		out = append(out, rec)
	}
	return out
}

// A configuration file with three sinks, its secrets in files named by
// KYCD_*_FILE: serve starts from it, takes webhooks signed with a secret
// of the file, opens its API to the token of the file, and every sink gets
// the notifications it takes, signed with its own secret or the shared one.
func TestServeFromConfigFileWithThreeSinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const (
		ownKey   = "whsec_c2VjcmV0LW9mLXRoZS1jcm0tc2luay0xMjM0NTY="
		ralioOld = "ralio-secret-in-a-file-old"
		ralioNew = "ralio-secret-in-a-file-new"
		token    = "admin-token-from-a-file-0123456789abcdef"
	)
	crm, billing := newMerchant(t, ownKey), newMerchant(t, testSinkSecret)
	db := filepath.Join(dir, "kycd.db")
	config := writeFile(t, dir, "kycd.yaml", fmt.Sprintf(`# kycd serve's settings
addr: 127.0.0.1:1 # KYCD_ADDR overrides it
database: sqlite:%s
retry-base: 20ms
sinks:
  - name: crm
    type: http
    url: %s/kyc
    secret: %s
  - name: billing
    type: http
    url: %s/hooks?account=7
    events: [kyc.session.rejected, kyc.level.*]
  - {name: journal, type: log}
`, db, crm.URL, ownKey, billing.URL), 0o600)
	vars := map[string]string{
		"KYCD_CONFIG":             config,
		"KYCD_ADDR":               "127.0.0.1:0",
		"KYCD_ADMIN_TOKEN_FILE":   writeFile(t, dir, "admin-token", token+"\n", 0o600),
		"KYCD_RALIO_SECRETS_FILE": writeFile(t, dir, "ralio-secrets", ralioOld+"\n"+ralioNew+"\n", 0o600),
		"KYCD_SINK_SECRET_FILE":   writeFile(t, dir, "sink-secret", testSinkSecret+"\n", 0o600),
	}
	s := serve(t, envOf(vars))
	s.DB, s.Secret, s.Token = db, ralioNew, token
	if got := generatedSecrets(t, db); got != "" {
		t.Errorf("serve generated secrets although the files give them all:\n%s", got)
	}

	s.deliver(t, sessionEvent(uuid.NewString(), "kyc_session_failed", "2026-11-20T10:00:00.000Z", uuid.NewString()))
	s.Secret = ralioOld // the first secret of the file is taken too, as in a rotation
	s.deliver(t, sessionEvent(uuid.NewString(), "kyc_session_verified", "2026-11-20T10:00:00.000Z", uuid.NewString()))
	eventually(t, "both notifications at crm, the rejection at billing, both on the journal's stdout", func() bool {
		return len(crm.notifications()) == 2 && len(billing.notifications()) == 1 &&
			strings.Contains(s.Stdout.String(), "kyc.session.rejected") && strings.Contains(s.Stdout.String(), "kyc.session.verified")
	})
	if n := billing.notifications()[0]; n["type"] != "kyc.session.rejected" {
		t.Errorf("billing, which takes rejections and levels, got %v", n["type"])
	}
	if crm.badSig+billing.badSig != 0 {
		t.Errorf("%d deliveries signed with the wrong secret", crm.badSig+billing.badSig)
	}
	var sinks struct {
		Items []struct{ Name, Type, Target string }
	}
	s.getJSON(t, "/api/v1/sinks", &sinks)
	var names []string
	for _, k := range sinks.Items {
		names = append(names, k.Name+"/"+k.Type)
		if strings.Contains(k.Target, "account=7") { // a query value may be a token
			t.Errorf("sink %s shows its query value: %s", k.Name, k.Target)
		}
	}
	if got := strings.Join(names, " "); got != "billing/http crm/http journal/log" {
		t.Errorf("the API lists the sinks %s, want billing/http crm/http journal/log", got)
	}
}

// A mistake in the file is refused before anything starts, naming the
// key (and its line), as a bad flag names itself.
func TestConfigFileMistakesRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "database: sqlite:" + filepath.Join(dir, "kycd.db") + "\n"
	for _, tt := range []struct {
		name, file string
		says       []string
	}{
		{"unknown key", db + "addr: 127.0.0.1:0\nretension: 48h\n", []string{"kycd.yaml:3", `unknown key "retension"`}},
		{"singular of a list", db + "ralio-secret: abcdefghijklmnopqr\n", []string{"kycd.yaml:2", `unknown key "ralio-secret"`, "did you mean ralio-secrets?"}},
		{"unknown sink option", db + "sinks:\n  - name: crm\n    type: http\n    url: https://crm.example/kyc\n    colour: red\n", []string{"kycd.yaml:3", "sinks", `unknown key "colour"`}},
		{"bad value", db + "retention: 90d\n", []string{"kycd.yaml:2", "retention", `"90d"`}},
		{"list for one value", db + "addr: [127.0.0.1:0]\n", []string{"kycd.yaml:2", "addr", "want one value"}},
		{"twice", db + "max-body: 2048\nmax-body: 4096\n", []string{"kycd.yaml:3", "max-body given twice (first at line 2)"}},
		{"bad sink", db + "sinks:\n  - {name: crm, type: smtp}\n", []string{"kycd.yaml:3", "--sink crm", "want http, nats or log"}},
		{"checked with the rest", db + "max-body: 10\n", []string{"--max-body 10", "--max-body was set by " + filepath.Join(dir, "kycd.yaml") + ":2"}},
		{"not YAML", "addr: [\n", []string{"not YAML"}},
	} {
		config := writeFile(t, dir, "kycd.yaml", tt.file, 0o600)
		for _, args := range [][]string{{"serve", "--config", config}, {"config", "check", "--config", config}} {
			out, errOut, err := cliEnv(t, nil, args...)
			if err == nil {
				t.Errorf("%s: kycd %s succeeded, want an error saying %q\n%s%s", tt.name, args[0], tt.says, out, errOut)
				continue
			}
			for _, want := range tt.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: kycd %s: %v\nwant it to say %q", tt.name, args[0], err, want)
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kycd.db")); !os.IsNotExist(err) {
		t.Errorf("a refused configuration created the database (stat: %v)", err)
	}

	// A *_FILE that cannot be read, is empty, or comes with its twin.
	for _, tt := range []struct {
		vars map[string]string
		says string
	}{
		{map[string]string{"KYCD_ADMIN_TOKEN_FILE": filepath.Join(dir, "missing")}, "KYCD_ADMIN_TOKEN_FILE: cannot read the secret of --admin-token"},
		{map[string]string{"KYCD_SINK_SECRET_FILE": writeFile(t, dir, "empty", "\n", 0o600)}, "the file is empty"},
		{map[string]string{"KYCD_RALIO_SECRETS": "abc", "KYCD_RALIO_SECRETS_FILE": writeFile(t, dir, "s", "def", 0o600)}, "both KYCD_RALIO_SECRETS and KYCD_RALIO_SECRETS_FILE are set"},
	} {
		_, _, err := cliEnv(t, tt.vars, "serve", "--addr", "127.0.0.1:0", "--database", "sqlite:"+filepath.Join(dir, "kycd.db"))
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("serve with %v: %v, want an error saying %q", tt.vars, err, tt.says)
		}
	}
}

// effective runs kycd config check --json.
func effective(t *testing.T, vars map[string]string, args ...string) (effectiveConfig, string) {
	t.Helper()
	out, errOut, err := cliEnv(t, vars, append([]string{"config", "check", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("kycd config check %v: %v\n%s", args, err, errOut)
	}
	var rep effectiveConfig
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("kycd config check --json printed no JSON (%v):\n%s", err, out)
	}
	return rep, out
}

// setting is the setting of rep under key.
func (rep effectiveConfig) setting(t *testing.T, key string) settingSource {
	t.Helper()
	for _, s := range rep.Settings {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("kycd config check lists no %s", key)
	return settingSource{}
}

// A flag wins over its environment variable, which wins over the file,
// which wins over the default; kycd config check says which gave each
// value, and serve runs with the same.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := writeFile(t, dir, "kycd.yaml", "database: sqlite:"+filepath.Join(dir, "kycd.db")+"\n"+
		"retention: 100h\nmax-backlog: 500\nretry-cap: 2m\nlog-level: error\n", 0o600)
	vars := map[string]string{"KYCD_RETENTION": "200h", "KYCD_MAX_BACKLOG": "600"}
	rep, _ := effective(t, vars, "--config", config, "--retention", "300h")
	for _, want := range []settingSource{
		{Key: "retention", Value: "300h0m0s", Source: "flag"},                                                // flag > env > file
		{Key: "max-backlog", Value: "600", Source: "env KYCD_MAX_BACKLOG"},                                   // env > file
		{Key: "retry-cap", Value: "2m0s", Source: "file " + config + ":4"},                                   // file > default
		{Key: "retry-base", Value: "1s", Source: "default"},                                                  // default
		{Key: "database", Value: "sqlite:" + filepath.Join(dir, "kycd.db"), Source: "file " + config + ":1"}, // a path
	} {
		if got := rep.setting(t, want.Key); got.Value != want.Value || got.Source != want.Source {
			t.Errorf("%s = %q from %q, want %q from %q", want.Key, got.Value, got.Source, want.Value, want.Source)
		}
	}
	// A list is taken whole from the first place that gives it.
	sinks := writeFile(t, dir, "sinks.yaml", "sinks:\n  - {name: crm, type: http, url: https://crm.example/kyc}\n  - log\n", 0o600)
	for _, tt := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{nil, nil, "crm log"},
		{map[string]string{"KYCD_SINKS": "name=ops,type=log"}, nil, "ops"},
		{map[string]string{"KYCD_SINKS": "name=ops,type=log"}, []string{"--sink", "http=https://x.example/k"}, "http"},
	} {
		rep := must(effective(t, tt.vars, append([]string{"--config", sinks}, tt.args...)...))
		var names []string
		for _, k := range rep.Sinks {
			names = append(names, k.Name)
		}
		if got := strings.Join(names, " "); got != tt.want {
			t.Errorf("sinks from the file, %v and %v: %s, want %s", tt.vars, tt.args, got, tt.want)
		}
	}

	// KYCD_CONFIG names the file as --config does, and --config wins.
	other := writeFile(t, dir, "other.yaml", "retention: 400h\n", 0o600)
	if got := must(effective(t, map[string]string{"KYCD_CONFIG": config})).setting(t, "retention"); got.Value != "100h0m0s" {
		t.Errorf("KYCD_CONFIG: retention %q, want the file's 100h", got.Value)
	}
	if got := must(effective(t, map[string]string{"KYCD_CONFIG": config}, "--config", other)).setting(t, "retention"); got.Value != "400h0m0s" {
		t.Errorf("--config over KYCD_CONFIG: retention %q, want the flag's file's 400h", got.Value)
	}
	// The CLI reads the file's database too.
	mustCLI(t, "migrate", "--config", config)
	if _, err := os.Stat(filepath.Join(dir, "kycd.db")); err != nil {
		t.Errorf("kycd migrate --config did not use the file's database: %v", err)
	}
	// serve runs with what config check said: the file's log-level error
	// keeps its INFO lines out, KYCD_LOG_LEVEL puts them back.
	quiet := serve(t, nil, "--config", config, "--addr", "127.0.0.1:0")
	if strings.Contains(quiet.Stderr.String(), "level=INFO") {
		t.Errorf("log-level: error in the file, yet INFO lines:\n%s", quiet.Stderr)
	}
	loud := serve(t, envOf(map[string]string{"KYCD_LOG_LEVEL": "info"}), "--config", config, "--addr", "127.0.0.1:0")
	if !strings.Contains(loud.Stderr.String(), "level=INFO msg=serving") {
		t.Errorf("KYCD_LOG_LEVEL=info over the file's error, yet no INFO line:\n%s", loud.Stderr)
	}
}

// must is the value of a call that returned two, the second ignored.
func must[T, U any](v T, _ U) T { return v }

// kycd config check prints the whole effective configuration, and no
// secret of it: not the tokens, the webhook and signing secrets, the API
// key, nor the passwords and tokens in URLs.
func TestConfigCheckHidesSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const (
		token   = "admin-token-HUNTER2-0123456789abcdefghij"
		ralio   = "ralio-HUNTER2-abcdefghijklmnopqrstu" // 32 characters at least: on 0.0.0.0
		sinkKey = "whsec_SFVOVEVSMi1zaW5rLWtleS0wMTIzNDU2Nzg5"
		apiKey  = "api-key-HUNTER2"
	)
	config := writeFile(t, dir, "kycd.yaml", fmt.Sprintf(`addr: 0.0.0.0:8080
database: postgres://kycd:pgHUNTER2pw@db.internal/kycd?sslmode=require
ralio-secrets: [%s]
ralio-api-url: https://ralio.example
sinks:
  - name: crm
    type: http
    url: https://user:urlHUNTER2@crm.example/kyc?token=queryHUNTER2
    secret: %s
  - nats=nats://natsHUNTER2@127.0.0.1:4222?subject=kyc
`, ralio, sinkKey), 0o600)
	vars := map[string]string{"KYCD_ADMIN_TOKEN_FILE": writeFile(t, dir, "token", token+"\n", 0o600), "KYCD_RALIO_API_KEY": apiKey}
	rep, out := effective(t, vars, "--config", config)
	text, errOut, err := cliEnv(t, vars, "config", "check", "--config", config)
	if err != nil {
		t.Fatalf("kycd config check: %v\n%s", err, errOut)
	}
	for _, printed := range []string{out, text} {
		if strings.Contains(printed, "HUNTER2") || strings.Contains(printed, "SFVOVEVSMi") {
			t.Errorf("kycd config check printed a secret:\n%s", printed)
		}
	}
	for key, source := range map[string]string{"admin-token": "env KYCD_ADMIN_TOKEN_FILE", "ralio-secrets": "file " + config + ":3", "ralio-api-key": "env KYCD_RALIO_API_KEY"} {
		if got := rep.setting(t, key); got.Value != "hidden" || !got.Secret || got.Source != source {
			t.Errorf("%s = %+v, want hidden, from %s", key, got, source)
		}
	}
	if got := rep.setting(t, "sink-secrets"); got.Value != "" || got.Source != "default" {
		t.Errorf("sink-secrets = %+v, want not set", got)
	}
	if got := rep.setting(t, "database").Value; got != "postgres://kycd:xxxxx@db.internal/kycd?sslmode=require" {
		t.Errorf("database shown as %q", got)
	}
	if len(rep.Sinks) != 2 || rep.Sinks[0].Secrets != 1 || rep.Sinks[0].URL != "https://user:xxxxx@crm.example/kyc?token=xxxxx" || rep.Sinks[1].URL != "nats://xxxxx@127.0.0.1:4222?subject=kyc" {
		t.Errorf("sinks shown as %+v", rep.Sinks)
	}
	for _, want := range []string{"configuration file: " + config, "admin-token", "hidden", "env KYCD_ADMIN_TOKEN_FILE", "crm", "1 hidden", "the configuration is valid"} {
		if !strings.Contains(text, want) {
			t.Errorf("kycd config check printed no %q:\n%s", want, text)
		}
	}
	// What serve would refuse at start, config check refuses too.
	short := writeFile(t, dir, "short", "too-short\n", 0o600)
	_, _, err = cliEnv(t, map[string]string{"KYCD_ADMIN_TOKEN_FILE": short}, "config", "check", "--config", config)
	if err == nil || !strings.Contains(err.Error(), "--admin-token") || strings.Contains(err.Error(), "too-short") {
		t.Errorf("config check with a short admin token on 0.0.0.0 = %v, want it refused, naming --admin-token, not its value", err)
	}
}

// With --log-format json, every line serve writes to stderr is JSON, from
// its first start (banner included) to its stop; the secrets it generates
// are in no line, but in a file only its owner may read, which the log
// names.
func TestJSONLogsOnFirstStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "kycd.db")
	m := newMerchant(t, testSinkSecret)
	s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db, "--log-format", "json", "--sink", "http="+m.URL)
	written := generatedSecrets(t, db)
	secret := regexp.MustCompile(`Generated a Ralio webhook secret[^\n]*\n\s+(\S+)`).FindStringSubmatch(written)
	token := regexp.MustCompile(`Generated an admin token[^\n]*\n\s+(\S+)`).FindStringSubmatch(written)
	sinkKey := regexp.MustCompile(`whsec_\S+`).FindString(written)
	if secret == nil || token == nil || sinkKey == "" {
		t.Fatalf("the generated-secrets file lacks the Ralio secret, the admin token or the signing secret:\n%s", written)
	}
	fi, err := os.Stat(filepath.Join(dir, generatedSecretsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the generated-secrets file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	s.DB, s.Secret, s.Token = db, secret[1], token[1]
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	s.mustDo(t, webhookRequest(s.URL, "not the secret", body(t))) // a warning
	wantStatus(t, s.session(t, failedSession), "REJECTED")
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	lines := jsonLines(t, s.Stderr.String())
	var named, banner, stopped bool
	for _, rec := range lines {
		msg, _ := rec["msg"].(string)
		named = named || (strings.HasPrefix(msg, "generated ") && rec["file"] == filepath.Join(dir, generatedSecretsFile))
		banner = banner || strings.HasPrefix(msg, "kycd listening on http://")
		stopped = stopped || msg == "stopped"
		if rec["time"] == nil || rec["level"] == nil {
			t.Errorf("a log line without time or level: %v", rec)
		}
	}
	if !named || !banner || !stopped || len(lines) < 5 {
		t.Errorf("want lines naming the secrets file (%v), the banner (%v) and the stop (%v) among the %d:\n%s", named, banner, stopped, len(lines), s.Stderr)
	}
	for _, v := range []string{secret[1], token[1], sinkKey} {
		if strings.Contains(s.Stderr.String(), v) || strings.Contains(s.Stdout.String(), v) {
			t.Errorf("a generated secret is in the output streams:\n%s", s.Stderr)
		}
	}

	// A start that fails logs its error as JSON too.
	taken, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, errOut, err := cliEnv(t, nil, "serve", "--addr", taken.Addr().String(), "--database", "sqlite:"+db, "--log-format", "json")
	if _, logged := errors.AsType[*loggedError](err); !logged {
		t.Errorf("serve on a taken port = %v (%T), want the error logged", err, err)
	}
	if recs := jsonLines(t, errOut); len(recs) != 1 || recs[0]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(recs[0]["err"]), "--addr") {
		t.Errorf("serve on a taken port logged %q, want one JSON error line naming --addr", errOut)
	}
}

// Every answer carries X-Request-Id, the client's own when sane, and every
// log line written while serving the request names it.
func TestRequestIDOnAnswerAndLogLines(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--log-format", "json")
	eventID, body := newFailedEvent(200)
	req := webhookRequest(s.URL, s.Secret, body)
	req.Header.Set("X-Request-Id", "ralio-delivery-42")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "ralio-delivery-42" {
		t.Errorf("a webhook with X-Request-Id ralio-delivery-42 answered X-Request-Id %q", got)
	}
	bad := webhookRequest(s.URL, "not the secret", body)
	bad.Header.Set("X-Request-Id", "bad-signature-7")
	if resp, err = s.client.Do(bad); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, insane := range []string{"", "has spaces in it", strings.Repeat("x", 129), "quote\"d"} {
		api := newRequest(http.MethodGet, s.URL+"/api/v1/stats", nil, http.Header{"Authorization": {"Bearer " + s.Token}})
		if insane != "" {
			api.Header.Set("X-Request-Id", insane)
		}
		resp, err := s.client.Do(api)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Id"); uuid.Validate(got) != nil {
			t.Errorf("X-Request-Id %q answered %q, want a new UUID", insane, got)
		}
	}
	eventually(t, "the webhook's log lines", func() bool { return strings.Contains(s.Stderr.String(), "webhook signature refused") })

	byID := map[string][]string{}
	for _, rec := range jsonLines(t, s.Stderr.String()) {
		if id, ok := rec["request_id"].(string); ok {
			byID[id] = append(byID[id], fmt.Sprint(rec["msg"], " ", rec["event_id"]))
		}
	}
	if got := byID["ralio-delivery-42"]; len(got) != 1 || got[0] != "event received "+eventID {
		t.Errorf("the lines of request ralio-delivery-42: %q, want its event received %s", got, eventID)
	}
	if got := byID["bad-signature-7"]; len(got) != 1 || !strings.HasPrefix(got[0], "webhook signature refused") {
		t.Errorf("the lines of request bad-signature-7: %q, want its signature refusal", got)
	}
}

// body is a webhook body no test has sent.
func body(t *testing.T) []byte {
	t.Helper()
	_, b := newFailedEvent(100)
	return b
}

// --log-level warn keeps the warnings and drops every INFO line, the
// banner's too.
func TestLogLevelWarnDropsInfo(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "kycd.db")
	addr := freeAddr(t)
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", addr, "--database", "sqlite:" + db, "--ralio-secret", testSecret,
			"--admin-token", testToken, "--log-format", "json", "--log-level", "warn", "--shutdown-drain", "0s"}, noEnv, strings.NewReader(""), &stdout, &stderr)
	}()
	s := &kycdServer{URL: "http://" + addr, Addr: addr, DB: db, Secret: testSecret, Token: testToken, Stdout: &stdout, Stderr: &stderr,
		client: &http.Client{Timeout: 10 * time.Second}}
	eventually(t, "/readyz to answer 200", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve returned %v\n%s", err, &stderr)
		default:
		}
		resp, err := s.client.Do(newRequest(http.MethodGet, s.URL+"/readyz", nil, nil))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	s.mustDo(t, webhookRequest(s.URL, "not the secret", body(t)))
	eventually(t, "the signature's warning", func() bool { return strings.Contains(stderr.String(), "webhook signature refused") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, rec := range jsonLines(t, stderr.String()) {
		if rec["level"] != "WARN" && rec["level"] != "ERROR" {
			t.Errorf("--log-level warn wrote a %v line: %v", rec["level"], rec)
		}
	}
}
