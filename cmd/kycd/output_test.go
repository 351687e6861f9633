package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// stdout is the log sink's: one notification per line, and nothing else,
// so a pipe of kycd serve into a consumer reads notifications only. The
// banners, the generated secrets and the logs go to stderr, and JSON logs
// give durations in seconds.
func TestStdoutCarriesOnlyNotifications(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "kycd.db")
	s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+db, "--log-format", "json", "--shutdown-drain", "250ms")
	for _, want := range []string{"kycd listening on", "Generated a Ralio webhook secret", "Generated an admin token"} {
		if !strings.Contains(s.Stderr.String(), want) {
			t.Errorf("stderr has no %q:\n%s", want, s.Stderr)
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
