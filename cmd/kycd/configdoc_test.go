package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// docs/configuration.md is the reference of every setting: its file key,
// flag, environment variable and default, written from kycd's flag set by
// TestConfigurationDoc, so that it cannot drift from the code. Regenerate:
//
//	KYCD_CONFIG_DOC=1 go test -count=1 -run '^TestConfigurationDoc$' ./cmd/kycd
const configDocPath = "../../docs/configuration.md"

func TestConfigurationDoc(t *testing.T) {
	want := configurationDoc(t)
	if os.Getenv("KYCD_CONFIG_DOC") == "1" {
		if err := os.WriteFile(configDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(configDocPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/configuration.md is not what kycd's flags say: regenerate it with\n" +
			"  KYCD_CONFIG_DOC=1 go test -count=1 -run '^TestConfigurationDoc$' ./cmd/kycd")
	}
	for name := range referenceMeaning {
		if !slices.Contains(serveFlags, name) {
			t.Errorf("referenceMeaning describes --%s, which is not one of serve's flags", name)
		}
	}
	// Every key the reference lists, a file takes.
	dir := t.TempDir()
	var file strings.Builder
	for _, name := range fileFlags() {
		if name != "sink" {
			fmt.Fprintf(&file, "%s: %s\n", fileKey(name), exampleValue(t, name))
		}
	}
	path := writeFile(t, dir, "every.yaml", file.String(), 0o600)
	if _, err := readConfigFile(path); err != nil {
		t.Errorf("a file of every documented key is refused: %v", err)
	}
}

// exampleValue is a value of flag's type, for a file that sets them all.
func exampleValue(t *testing.T, name string) string {
	t.Helper()
	f := newFlagSet(&env{}).Lookup(name)
	if v := f.DefValue; v != "" && v != "[]" {
		return strings.Trim(v, "[]")
	}
	return "x"
}

// configurationDoc writes docs/configuration.md.
func configurationDoc(t *testing.T) string {
	t.Helper()
	fs := newFlagSet(&env{})
	var b strings.Builder
	b.WriteString(`# Configuration reference

Written from kycd's flags by ` + "`TestConfigurationDoc`" + ` (` + "`cmd/kycd/configdoc_test.go`" + `); do not
edit by hand. Regenerate with

` + "```sh\nKYCD_CONFIG_DOC=1 go test -count=1 -run '^TestConfigurationDoc$' ./cmd/kycd\n```" + `

Every setting of ` + "`kycd serve`" + ` can be given four ways; the first that gives it wins:

1. its flag on the command line (` + "`--retention 720h`" + `);
2. its environment variable (` + "`KYCD_RETENTION=720h`" + `); a secret also from a file,
   named by the variable's ` + "`_FILE`" + ` twin (below);
3. the configuration file, ` + "`--config FILE`" + ` or ` + "`KYCD_CONFIG=FILE`" + ` (` + "`retention: 720h`" + `);
4. its default.

A list (` + "`--sink`" + `, ` + "`--ralio-secret`" + `, ` + "`--sink-secret`" + `) is taken whole from the first
place that gives it: sinks on the command line replace the file's, they are not
added to them. ` + "`kycd config check [--config FILE]`" + ` checks a configuration as ` + "`serve`" + `
would at start and prints every setting with where it came from, secrets
hidden.

The other commands read the settings they have a flag for, from the same
places: ` + "`kycd sessions list --config /etc/kycd/kycd.yaml`" + ` reads the file's
` + "`database`" + `. ` + "`kycd emulator`" + ` has flags of its own (last table) and reads no file.

## The configuration file

YAML: a map of settings, each under its flag's name without the dashes; a
list under the plural of a repeated flag's name (` + "`sinks`" + `, ` + "`ralio-secrets`" + `,
` + "`sink-secrets`" + `). A value is written as its flag takes it (` + "`retention: 720h`" + `,
` + "`max-body: 1048576`" + `). A key kycd does not know, a key given twice, or a value it
cannot take stops ` + "`serve`" + ` (and ` + "`config check`" + `) with the file, the line and the key.

` + "`sinks`" + ` is a list, each sink a map of the keys of ` + "`--sink`" + `'s named form (` + "`name`" + `,
` + "`type`" + `, ` + "`url`" + `, ` + "`events`" + `, ` + "`secret`" + `, and any other option ` + "`--sink`" + ` takes), where
` + "`events`" + ` and ` + "`secret`" + ` may be lists; or a string, a ` + "`--sink`" + ` value as it is
(` + "`log`" + `, ` + "`http=URL`" + `). The file goes through the same checks as ` + "`--sink`" + `.

` + "```yaml\n" + configExample + "```" + `

Keep the file readable by kycd's user only when it holds a secret, or give the
secrets in files of their own (below).

## Secrets from files

Each variable below names a file that holds the secret of its flag, as Docker
and systemd hand credentials to a service; the content is taken without its
trailing newline, a list one value a line (or comma-separated). Setting both a
variable and its ` + "`_FILE`" + ` twin is an error, and so is a file that cannot be read
or is empty.

| variable | gives | instead of |
|---|---|---|
`)
	for _, flag := range slices.Sorted(maps.Keys(secretFileVars)) {
		fmt.Fprintf(&b, "| `%s` | `--%s` | `%s` |\n", secretFileVars[flag], flag, envTwins[flag])
	}
	b.WriteString(`
## Settings of kycd serve

| file key | flag | environment | default | meaning |
|---|---|---|---|---|
`)
	for _, name := range serveFlags {
		f := fs.Lookup(name)
		key := "`" + fileKey(name) + "`"
		if name == "config" {
			key = "" // not in the file itself
		}
		fmt.Fprintf(&b, "| %s | `--%s` | %s | %s | %s |\n", key, name, envCell(name), defaultCell(f), meaning(f))
	}
	b.WriteString(`
## Flags of the other commands

Not read from the file or the environment.

| flag | default | meaning |
|---|---|---|
`)
	fs.VisitAll(func(f *pflag.Flag) {
		if !slices.Contains(serveFlags, f.Name) {
			fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", f.Name, defaultCell(f), cell(f.Usage))
		}
	})
	b.WriteString(`
## kycd emulator

Its flags are its own, with their own variables, so that ` + "`KYCD_ADDR`" + `, meant for
` + "`serve`" + `, never moves the emulator; ` + "`--log-format`" + ` and ` + "`--log-level`" + ` are ` + "`serve`" + `'s, with
the same variables.

| flag | environment | default | meaning |
|---|---|---|---|
`)
	var ec emulatorConfig
	efs := pflag.NewFlagSet("emulator", pflag.ContinueOnError)
	ec.flags(efs)
	efs.VisitAll(func(f *pflag.Flag) {
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", f.Name, emulatorEnvTwins[f.Name], defaultCell(f), cell(f.Usage))
	})
	return b.String()
}

// configExample is the configuration file the reference shows, and which
// TestConfigExampleIsValid checks kycd takes.
const configExample = `addr: 0.0.0.0:8080
database: postgres://kycd@db.internal/kycd?sslmode=require
log-format: json
log-level: info
retention: 2160h      # 90 days
sinks:
  - name: crm         # every notification
    type: http
    url: https://crm.example/kyc
  - name: billing     # rejections and level changes only
    type: http
    url: https://billing.example/hooks/kyc
    events: [kyc.session.rejected, kyc.level.*]
    # secret: whsec_…   to sign with a secret of its own
  - name: bus
    type: nats
    url: nats://nats.internal:4222?subject=kyc
# admin-token, ralio-secrets and sink-secrets from files:
#   KYCD_ADMIN_TOKEN_FILE, KYCD_RALIO_SECRETS_FILE, KYCD_SINK_SECRET_FILE
`

func TestConfigExampleIsValid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "kycd.yaml", configExample, 0o600)
	vars := map[string]string{"KYCD_ADMIN_TOKEN_FILE": writeFile(t, dir, "token", strings.Repeat("t", 40)+"\n", 0o600)}
	rep, _ := effective(t, vars, "--config", path)
	if len(rep.Sinks) != 3 || rep.Sinks[1].Name != "billing" || len(rep.Sinks[1].Events) != 2 || rep.Sinks[2].Type != "nats" {
		t.Errorf("the example's sinks read as %+v", rep.Sinks)
	}
	readme, err := os.ReadFile("../../docs/configuring.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), configExample) {
		t.Error("docs/configuring.md does not show the configuration example of docs/configuration.md (configExample)")
	}
}

// referenceMeaning is, for the flags whose one-line usage leaves out what
// an operator needs (limits, units, what else follows the setting), the
// reference's fuller text; the other flags' usage is their meaning.
// TestConfigurationDoc refuses an entry for a flag kycd does not have.
var referenceMeaning = map[string]string{
	"addr":                      "listen address (`serve`), target (`send`)",
	"database":                  "`sqlite:PATH`, or `postgres://USER:PASS@HOST/DB` for several replicas",
	"ralio-secret":              "Ralio webhook secret; a comma list accepts several during a rotation; at least 32 characters each when `--addr` is not loopback",
	"admin-token":               "the admin token named `admin` (more tokens: `kycd tokens create`); required, and at least 32 characters, when `--addr` is not loopback",
	"sink":                      "where notifications go: `name=NAME,type=http|nats|log,url=URL[,events=…][,order=session|none][,secret=…]`, or `http=URL`, `nats=URL?subject=PREFIX`, `log` (see docs/notifications.md)",
	"sink-secret":               "Standard Webhooks secret(s) (`whsec_` + the base64 of a key of at least 24 bytes) of the http sinks without their own; a comma list signs with each, for a rotation",
	"retention":                 "how long raw bodies, quarantined bodies and the personal data derived from them (contact details, reason messages, action text) are kept (and the `MaxAge` of a NATS stream that `create=1` makes, updated at each start); event ids are kept for good (see \"Data protection\")",
	"audit-retention":           "how long audit entries are kept",
	"max-body":                  "largest webhook body, bytes",
	"body-budget":               "bytes of webhook bodies held in memory at once; a delivery beyond it gets 503 (which Ralio retries); must be more than `--max-body`",
	"peer-body-budget":          "bytes of webhook bodies the requests of one peer address (IPv4, IPv6 /64) hold at once; beyond it 503; more than `--max-body`, at most `--body-budget`; behind a reverse proxy give `--trusted-proxies`, so that the peer is the client the proxy names",
	"max-connections":           "most HTTP connections open at once; at the cap the one idle the longest is closed for a new one, untrusted first; 503 when none is idle",
	"untrusted-idle-timeout":    "how long a connection that never sent a valid signature or API token may stay idle (before its first request or between two); `0`: the server's 120 s",
	"retry-base":                "first notification retry delay",
	"retry-cap":                 "longest retry delay",
	"retry-max-attempts":        "attempts before a delivery is dead",
	"retry-max-age":             "age after which a delivery is dead",
	"guidance":                  "JSON file of reason code → guidance sentence",
	"shutdown-drain":            "on shutdown, how long requests on open connections get 503 (which Ralio retries) with `Connection: close` before idle connections close; new connections are refused from the start",
	"ralio-api-url":             "base URL of Ralio's REST API, for reconciliation",
	"ralio-api-key":             "its API key (never printed)",
	"reconcile-every":           "`serve`: reconcile this often, e.g. `1h`",
	"reconcile-rate":            "most requests per second to Ralio's REST API",
	"reconcile-timeout":         "deadline of a reconciliation run, its waits for `Retry-After` included; a run still going then stops `interrupted` and the next resumes; at least `1s`",
	"reconcile-request-timeout": "deadline of one request to Ralio's REST API, its answer read whole (retried like a 5xx), within the run's deadline; at least `100ms`",
	"review-alert-after":        "`serve`: how long a session may stay in REVIEW before it is stalled (listed, counted, notified once); at least `1m`",
	"max-clock-skew":            "how far after its receipt an event may be stamped and still be ordered at its timestamp; one stamped later (a clock ahead, a forged date) is ordered at its receipt plus this, so a later real event still wins, and is flagged in the session's history (`clockSkew`, `orderedAt`), logged at warn and counted in `kycd_events_clock_skewed_total`; every process on one database must use the same value; between `1s` and `24h`",
	"signature-hold-retention":  "how long a body refused for its signature is kept in the signature hold, for a replay after a wrong secret",
	"signature-hold-max-count":  "most bodies in the signature hold; beyond it the oldest go first",
	"signature-hold-max-bytes":  "most body bytes in the signature hold; beyond it the oldest go first; at least `--max-body`",
	"max-backlog":               "events acknowledged but not yet projected beyond which webhooks get 503 (which Ralio retries), so projection lag stays bounded",
	"log-format":                "logs on stderr as `text` or `json`; with `json` every line on stderr is one JSON object (the banner and a failed start's error too); JSON gives durations in seconds (`\"drain\":0.25`), text in Go's units (`drain=250ms`)",
	"log-level":                 "the least severe log lines written: `debug`, `info`, `warn` or `error`",
	"generated-secrets-file":    "where `serve` writes the secrets it generates (Ralio secret, admin token, signing secret) when stderr is not a terminal, created readable by its owner only; the log names it, never the secrets. Default: `kycd-generated-secrets` beside the SQLite database, else in `$STATE_DIRECTORY`, else in the working directory",
	"config":                    "the YAML configuration file (above); a flag or an environment variable overrides each of its settings",
	"tls-cert":                  "`serve`: serve HTTPS with this PEM certificate file (the server's certificate, then its chain), with `--tls-key`; both files are read again on `SIGHUP` (see docs/configuring.md, \"TLS and reverse proxies\")",
	"tls-key":                   "the PEM private key of `--tls-cert`; give both or neither",
	"trusted-proxies":           "`serve`: comma list of reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` / `Forwarded` header names the client, for the audit trail, the logs and `--peer-body-budget`; any other peer's header is ignored",
}

// meaning is the reference's text for f.
func meaning(f *pflag.Flag) string {
	if m, ok := referenceMeaning[f.Name]; ok {
		return cell(m)
	}
	return cell(f.Usage)
}

// envCell is the environment column of flag: its variable, and for a
// secret its _FILE twin.
func envCell(flag string) string {
	v := "`" + envTwins[flag] + "`"
	if fv, ok := secretFileVars[flag]; ok {
		v += ", `" + fv + "`"
	}
	return v
}

// defaultCell is f's default, as the reference shows it.
func defaultCell(f *pflag.Flag) string {
	switch f.DefValue {
	case "", "[]":
		return ""
	}
	return "`" + f.DefValue + "`"
}

// cell is s fit for a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
