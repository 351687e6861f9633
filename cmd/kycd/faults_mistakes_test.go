package main

// Issue 15, item 10, in the fault suite: operator mistakes that used to
// go through — a rebuild under a running serve, a serve on a taken port,
// guessable secrets on an address other machines reach.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// operatorMistakesScenario makes each mistake once and records what kycd
// did about it.
func operatorMistakesScenario(t *testing.T, _ string, rows *scenarioRows) {
	// kycd rebuild while serve runs on the same SQLite database: refused,
	// and serve goes on answering with the session it had.
	s := startServer(t)
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	before := s.session(t, failedSession)
	msg := wantCLIError(t, "rebuild", "--database", "sqlite:"+s.DB)
	after := s.session(t, failedSession)
	rows.add(t, faultRow{
		Fault:    "`kycd rebuild` while `kycd serve` runs on the same database (SQLite; PostgreSQL in `TestRebuildRefusedWhileServing`)",
		Expected: "refused, naming the fix; serve's sessions unchanged",
		Observed: fmt.Sprintf("rebuild exited with %q; session %s before and %s after, 1 event acknowledged and found", strings.ReplaceAll(firstLine(msg), s.DB, "PATH"), before.Status, after.Status),
		Acked:    1, Found: found(before.Status == after.Status), Counted: true,
	})

	// serve on a taken port: fails at once, nothing created or printed.
	taken, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	var stdout, stderr syncBuffer
	err = run(t.Context(), []string{"serve", "--addr", taken.Addr().String(), "--database", "sqlite:" + filepath.Join(dir, "kycd.db")},
		noEnv, strings.NewReader(""), &stdout, &stderr)
	entries, _ := os.ReadDir(dir)
	printed := strings.Count(stdout.String()+stderr.String(), "Generated")
	rows.add(t, faultRow{
		Fault:    "`kycd serve --addr` on a port another process listens on",
		Expected: "fails at once naming the address; no database created, no secret generated or printed",
		Observed: fmt.Sprintf("error %q; %d files created, %d secrets printed", strings.ReplaceAll(fmt.Sprint(err), taken.Addr().String(), "127.0.0.1:PORT"), len(entries), printed),
	})
	if err == nil || len(entries) != 0 || printed != 0 {
		t.Errorf("serve on a taken port: err %v, %d files, %d secrets printed", err, len(entries), printed)
	}

	// Guessable secrets on 0.0.0.0.
	var refused []string
	for _, weak := range []struct {
		name  string
		flags []string
	}{
		{"--admin-token a", []string{"--admin-token", "a", "--ralio-secret", chosenSecret}},
		{"--ralio-secret a", []string{"--admin-token", chosenToken, "--ralio-secret", "a"}},
	} {
		_, err := cli(t, append([]string{"serve", "--addr", "0.0.0.0:0", "--database", "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")}, weak.flags...)...)
		if err == nil {
			t.Errorf("serve on 0.0.0.0 with %s started", weak.name)
			continue
		}
		refused = append(refused, fmt.Sprintf("%s: %q", weak.name, err))
	}
	rows.add(t, faultRow{
		Fault:    "`kycd serve --addr 0.0.0.0:0` with `--admin-token a`, then with `--ralio-secret a`",
		Expected: "each refused, naming the flag, the length wanted and the fix, not the secret",
		Observed: fmt.Sprintf("%d of 2 refused: %s", len(refused), strings.Join(refused, "; ")),
	})
}

// found is 1 when ok, the count of an event found as it was.
func found(ok bool) int {
	if ok {
		return 1
	}
	return 0
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
