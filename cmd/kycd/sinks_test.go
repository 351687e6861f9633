package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

const (
	oldKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	newKey = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

func TestParseSink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want sinkConfig
	}{
		{"log", sinkConfig{Name: "log", Type: "log"}},
		{"http=https://merchant.example/kyc?a=1,b", sinkConfig{Name: "http", Type: "http", URL: "https://merchant.example/kyc?a=1,b"}},
		{"nats=nats://127.0.0.1:4222?subject=kyc", sinkConfig{Name: "nats", Type: "nats", URL: "nats://127.0.0.1:4222?subject=kyc"}},
		{"name=crm,type=http,url=https://merchant.example/kyc,events=kyc.session.*,secret=" + oldKey,
			sinkConfig{Name: "crm", Type: "http", URL: "https://merchant.example/kyc", Events: []string{"kyc.session.*"}, Secrets: []string{oldKey}}},
		// Keys in any order; events and secret repeat or list with ;.
		{"type=http, url=https://m.example/k ,name=crm,events=kyc.session.rejected;kyb.*,events=kyc.level.updated,secret=" + oldKey + ";" + newKey,
			sinkConfig{Name: "crm", Type: "http", URL: "https://m.example/k", Events: []string{"kyc.session.rejected", "kyb.*", "kyc.level.updated"}, Secrets: []string{oldKey, newKey}}},
		// A value with a comma is quoted, CSV-style, as docker's --mount has it.
		{`name=crm,type=http,"url=https://m.example/k?ids=1,2"`, sinkConfig{Name: "crm", Type: "http", URL: "https://m.example/k?ids=1,2"}},
		{"name=audit,type=log,events=kyc.session.rejected", sinkConfig{Name: "audit", Type: "log", Events: []string{"kyc.session.rejected"}}},
		{"name=bus,type=nats,url=nats://127.0.0.1:4222?subject=kyc&create=1", sinkConfig{Name: "bus", Type: "nats", URL: "nats://127.0.0.1:4222?subject=kyc&create=1"}},
	}
	for _, tt := range tests {
		got, err := parseSink(tt.spec)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parseSink(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
}

// A bad --sink is refused naming the sink and the fix, and never with a
// password, a token or a secret in the message.
func TestParseSinkRefusals(t *testing.T) {
	t.Parallel()
	const pw, token = "Pa55w0rd", "T0K3N"
	url := "https://merchant:" + pw + "@merchant.example/kyc?token=" + token
	tests := []struct{ spec, want string }{
		{"smtp=mail.example.com", `unknown key "smtp"`},
		{"name=crm,type=http", "want http(s)://HOST/PATH"},
		{"name=crm,type=ftp,url=" + url, `type "ftp"`},
		{"type=http,url=" + url, "name= is missing"},
		{"name=CRM!,type=http,url=" + url, "a name is lower-case letters"},
		{"name=crm,url=" + url, "type= is missing"},
		{"name=crm,type=http,url=" + url + ",events=kyc.sesion.*", "events=kyc.sesion.* matches no notification type"},
		{"name=crm,type=http,url=" + url + ",secret=" + pw, "want the Standard Webhooks form"},
		{"name=crm,type=http,url=" + url + ",secret=whsec_" + token + "!!", "not base64"},
		{"name=crm,type=log,secret=" + oldKey, "only an http sink takes a secret"},
		{"name=crm,type=http,url=" + url + ",secret=whsec_", "the key after whsec_ is 0 bytes, want at least 24"},
		{"name=crm,type=http,url=" + url + ",secret=whsec_dG9vIHNob3J0", "the key after whsec_ is 9 bytes, want at least 24"},
		{"name=crm,type=http,url=" + url + ",tokn=" + token, `unknown key "tokn"`},
		{"name=crm,name=other,type=log", "name= given twice"},
		{"name=crm,type=http,url=" + url + "," + pw, `field 4 has no '='`},
		{"nats=nats://u:" + pw + "@127.0.0.1:4222", "want nats://HOST:PORT?subject=PREFIX"},
		{"http=not a url", "want http(s)://HOST/PATH"},
		{"name=crm,type=log,url=" + url, "a log sink takes no url"},
	}
	for _, tt := range tests {
		_, err := parseSink(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "--sink") {
			t.Errorf("parseSink(%q) = %v, want an error naming --sink and %q", tt.spec, err, tt.want)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, pw) || strings.Contains(msg, token) {
			t.Errorf("parseSink(%q) error names a credential: %s", tt.spec, msg)
		}
	}
	if _, err := parseSinks([]string{"http=https://a.example", "http=https://b.example"}); err == nil || !strings.Contains(err.Error(), `two sinks are named "http"`) {
		t.Errorf("two http shorthands = %v, want them refused for their one name", err)
	}
}

// KYCD_SINKS is one comma list: shorthands stand alone, name= begins a sink
// of the named form.
func TestSplitSinksEnv(t *testing.T) {
	t.Parallel()
	got, err := splitSinksEnv(`log, http=https://a.example/k ,name=crm,type=http,"url=https://b.example/k?ids=1,2",events=kyc.session.*,name=bus,type=nats,url=nats://127.0.0.1:4222?subject=kyc`)
	want := []string{"log", "http=https://a.example/k", `name=crm,type=http,"url=https://b.example/k?ids=1,2",events=kyc.session.*`, "name=bus,type=nats,url=nats://127.0.0.1:4222?subject=kyc"}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("splitSinksEnv = %q, %v; want %q", got, err, want)
	}
	for _, spec := range got {
		if _, err := parseSink(spec); err != nil {
			t.Errorf("a sink of KYCD_SINKS does not parse: %v", err)
		}
	}
	if _, err := splitSinksEnv("type=http,name=crm"); err == nil || !strings.Contains(err.Error(), "begin each sink of the named form with its name") {
		t.Errorf("a field before name= = %v, want the order explained", err)
	}
}

func TestSinkFlagsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"KYCD_SINKS":       "name=crm,type=http,url=https://merchant.example/kyc?token=T0K3N,events=kyc.session.rejected,log",
		"KYCD_SINK_SECRET": oldKey + "," + newKey,
	}
	e := &env{getenv: func(k string) string { return vars[k] }}
	fs := newFlagSet(e)
	if err := applyEnv(fs, e.getenv); err != nil {
		t.Fatal(err)
	}
	if err := e.cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if len(e.cfg.sinks) != 2 || e.cfg.sinks[0].Name != "crm" || e.cfg.sinks[1].Name != "log" || len(e.cfg.SinkSecrets) != 2 {
		t.Fatalf("sinks = %+v, secrets %d; want crm and log, two secrets", e.cfg.sinks, len(e.cfg.SinkSecrets))
	}
	vars["KYCD_SINKS"] = "url=https://merchant.example/kyc?token=T0K3N"
	e = &env{getenv: func(k string) string { return vars[k] }}
	err := applyEnv(newFlagSet(e), e.getenv)
	if err == nil || !strings.Contains(err.Error(), "KYCD_SINKS") || strings.Contains(err.Error(), "T0K3N") {
		t.Fatalf("a bad KYCD_SINKS = %v, want it named without its token", err)
	}
}

// newFlagSet is kycd's flags bound to e's configuration.
func newFlagSet(e *env) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kycd", pflag.ContinueOnError)
	e.cfg.flags(fs)
	return fs
}
