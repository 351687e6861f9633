package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sqlite"
)

// vacuumInto copies one SQLite file to dst as a consistent snapshot of
// that file alone, as a copy tool that knows nothing of the other would.
func vacuumInto(t *testing.T, src, dst string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `VACUUM INTO ?`, dst); err != nil {
		t.Fatal(err)
	}
}

// backupScenario, for the fault suite: kycd backup under load, then kycd
// restore: a start on the restored copy finds every event acknowledged
// before the backup began, projected, and notifies each of them; the serve
// that was backed up notified nothing (its merchant refused everything), so
// every notification comes from the copy.
func backupScenario(t *testing.T, _ string, rows *scenarioRows) {
	refusing := newMerchant(t, testSinkSecret)
	refusing.status.Store(http.StatusInternalServerError)
	src := startServer(t, "--sink", "http="+refusing.URL, "--sink-secret", testSinkSecret, "--retry-base", "50ms", "--retry-cap", "200ms")
	s := newRalioSender(src.URL, testSecret, 1000)
	stopLoad := s.start(4, 20*time.Millisecond)
	defer stopLoad()
	s.waitAcked(t, 200, 60*time.Second)
	before := s.ackedIDs()
	dest := filepath.Join(t.TempDir(), "backup.db")
	out := mustCLI(t, "backup", dest, "--database", "sqlite:"+src.DB)
	out0 := strings.ReplaceAll(out, filepath.Dir(dest), "DIR")
	if !strings.Contains(out, "backed up to "+dest) || !strings.Contains(out, dest+sqlite.LogSuffix) {
		t.Errorf("kycd backup printed %q, want both files named", out)
	}
	s.waitAcked(t, 50, 60*time.Second) // serve went on meanwhile
	stopLoad()
	for _, p := range []string{dest, dest + sqlite.LogSuffix} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("backup file %s: %v, mode %v; want it there, owner-only", p, err, fi.Mode())
		}
	}
	if _, err := cli(t, "backup", dest, "--database", "sqlite:"+src.DB); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("kycd backup onto an existing DEST = %v, want a refusal naming --force", err)
	}
	if err := src.stop(t); err != nil {
		t.Fatal(err)
	}

	target := filepath.Join(t.TempDir(), "kycd.db")
	out = mustCLI(t, "restore", dest, "--database", "sqlite:"+target)
	if !strings.Contains(out, "restored "+target) {
		t.Errorf("kycd restore printed %q", out)
	}
	m := newMerchant(t, testSinkSecret)
	copied := serve(t, nil, "--addr", "127.0.0.1:0", "--database", "sqlite:"+target, "--ralio-secret", testSecret,
		"--admin-token", testToken, "--sink", "http="+m.URL, "--sink-secret", testSinkSecret, "--retry-base", "50ms", "--retry-cap", "200ms")
	found, missing := foundEvents(t, copied.URL, testToken, before)
	if len(missing) > 0 {
		t.Errorf("%d of %d events acknowledged before the backup found on the restored copy; missing: %v", found, len(before), missing)
	}
	// A delivery the backed-up serve was attempting when the backup was
	// taken waits out its lease (40 s) in the copy, as after a crash.
	if n := m.waitNotified(before, 90*time.Second); n > 0 {
		t.Errorf("%d of %d events acknowledged before the backup not notified from the restored copy", n, len(before))
	}
	if _, err := cli(t, "restore", dest, "--database", "sqlite:"+target, "--force"); err == nil || !strings.Contains(err.Error(), "stop every kycd serve") {
		t.Errorf("kycd restore while serve runs on the database = %v, want a refusal", err)
	}
	if _, err := cli(t, "restore", dest, "--database", "sqlite:"+filepath.Join(t.TempDir(), "new.db")); err != nil {
		t.Errorf("kycd restore to a new path: %v", err)
	}
	rows.add(t, faultRow{
		Fault: "`kycd backup` of a SQLite database while 4 senders deliver and every delivery to the merchant fails; serve stopped; " +
			"`kycd restore` of the backup into a new path; serve started on it with a merchant that accepts",
		Expected: "backup exits 0 naming both files, owner-only; a second backup onto them refused naming --force; a restore refused while serve runs on its target; " +
			"on the restored copy every event acknowledged before the backup began is found projected and notified",
		Observed: fmt.Sprintf("%d acknowledged before the backup began, %d in all; backup: %q; on the restored copy: %d of them found, %d not notified",
			len(before), len(s.ackedIDs()), strings.TrimSpace(out0), found, m.waitNotified(before, 0)),
		Acked: len(before), Found: found, Counted: true,
	})
}

// inconsistentPairScenario, for the fault suite: two files copied at
// different moments, the event log first: serve refuses to start and says
// what to do; kycd rebuild repairs the pair; a start then projects and
// notifies an event sent after it.
func inconsistentPairScenario(t *testing.T, _ string, rows *scenarioRows) {
	src := startServer(t)
	s := newRalioSender(src.URL, testSecret, 1000)
	stopLoad := s.start(4, 20*time.Millisecond)
	defer stopLoad()
	s.waitAcked(t, 100, 60*time.Second)
	inLog := s.ackedIDs()
	dir := t.TempDir()
	copyDB := filepath.Join(dir, "kycd.db")
	vacuumInto(t, src.DB+sqlite.LogSuffix, copyDB+sqlite.LogSuffix)
	s.waitAcked(t, 200, 60*time.Second)
	stopLoad()
	// Projected past the log's copy before the main file is copied.
	ackedAtMain := len(s.ackedIDs())
	foundEvents(t, src.URL, testToken, s.ackedIDs())
	vacuumInto(t, src.DB, copyDB)
	if err := src.stop(t); err != nil {
		t.Fatal(err)
	}

	args := []string{"serve", "--addr", "127.0.0.1:0", "--database", "sqlite:" + copyDB, "--ralio-secret", testSecret, "--admin-token", testToken}
	_, err := cli(t, args...)
	if err == nil || !strings.Contains(err.Error(), "ahead of its event log") || !strings.Contains(err.Error(), "kycd rebuild --database sqlite:"+copyDB) {
		t.Fatalf("serve on a log copied before its main file = %v, want a refusal that names the problem and kycd rebuild", err)
	}
	refusal := strings.ReplaceAll(err.Error(), copyDB, "PATH")
	rebuilt := mustCLI(t, "rebuild", "--database", "sqlite:"+copyDB)

	m := newMerchant(t, testSinkSecret)
	again := serve(t, nil, append(args[1:], "--sink", "http="+m.URL, "--sink-secret", testSinkSecret)...)
	found, missing := foundEvents(t, again.URL, testToken, inLog)
	if len(missing) > 0 {
		t.Errorf("%d of the %d events in the copied log found after the rebuild; missing: %v", found, len(inLog), missing)
	}
	later := newRalioSender(again.URL, testSecret, 1000)
	id, body := newFailedEvent(1000)
	if !later.deliver(t.Context(), id, body) {
		t.Fatalf("a webhook after the rebuild was not acknowledged: %s", later.answerSummary(-1))
	}
	projected, why := eventStored(&http.Client{Timeout: 20 * time.Second}, again.URL, testToken, id, kycd.OutcomeApplied)
	if !projected {
		t.Errorf("a webhook sent after the rebuild is not projected: %s", why)
	}
	notified := m.waitNotified([]string{id}, eventuallyWithin) == 0
	if !notified {
		t.Errorf("a webhook sent after the rebuild was not notified")
	}
	if projected {
		found++
	}
	rows.add(t, faultRow{
		Fault: "a SQLite pair copied at two moments, the event log first (each file a consistent snapshot of itself, as a copy tool makes) while 4 senders deliver, " +
			"then serve started on the copy",
		Expected: "serve refuses to start, naming the problem and the fix (restore one backup, or kycd rebuild); after `kycd rebuild` it starts, " +
			"every event in the copied log is found, and a webhook sent after the start is projected and notified",
		Observed: fmt.Sprintf("%d acknowledged when the log was copied, %d when the main file was; serve: %q; rebuild: %q; after it: %d of the log's events found; "+
			"the later webhook projected: %t, notified: %t",
			len(inLog), ackedAtMain, refusal, strings.TrimSpace(rebuilt), found-map[bool]int{true: 1}[projected], projected, notified),
		Acked: len(inLog) + 1, Found: found, Counted: true,
	})
}
