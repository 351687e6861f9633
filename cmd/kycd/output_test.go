package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// stdout is the log sink's: one notification per line, and nothing else,
// so a pipe of kycd serve into a consumer reads notifications only. The
// banners and the logs go to stderr, the generated secrets to a file
// (stderr being no terminal), and JSON logs give durations in seconds.
func TestStdoutCarriesOnlyNotifications(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "kycd.db")
	s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db, "--log-format", "json", "--shutdown-drain", "250ms")
	if !strings.Contains(s.Stderr.String(), "kycd listening on") {
		t.Errorf("stderr has no %q:\n%s", "kycd listening on", s.Stderr)
	}
	// The generated secrets are not in the log stream, but in a file.
	for _, want := range []string{"Generated a Ralio webhook secret", "Generated an admin token"} {
		if !strings.Contains(generatedSecrets(t, db), want) {
			t.Errorf("the generated-secrets file has no %q:\n%s", want, generatedSecrets(t, db))
		}
	}
	mustCLI(t, "send", "--addr", s.Addr, "--database", "sqlite:"+db)
	eventually(t, "the notification on stdout", func() bool { return strings.Contains(s.Stdout.String(), "kyc.session.rejected") })
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(s.Stdout.String()), "\n") {
		var n struct{ ID, Type string }
		if err := json.Unmarshal([]byte(line), &n); err != nil || n.ID == "" || !strings.HasPrefix(n.Type, "kyc.") {
			t.Errorf("stdout has a line that is not a notification: %q", line)
		}
	}
	var drain any
	for _, line := range strings.Split(strings.TrimSpace(s.Stderr.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["drain"] != nil {
			drain = rec["drain"]
		}
	}
	if drain != 0.25 {
		t.Errorf("the shutdown's log line gives drain %v (%T), want 0.25 (seconds):\n%s", drain, drain, s.Stderr)
	}
}
