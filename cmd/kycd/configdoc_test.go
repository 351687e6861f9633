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
		fmt.Fprintf(&b, "| %s | `--%s` | %s | %s | %s |\n", key, name, envCell(name), defaultCell(f), cell(f.Usage))
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
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), configExample) {
		t.Error("README.md does not show the configuration example of docs/configuration.md (configExample)")
	}
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
