package main

// The SQLite files' own faults, for the fault suite (issue 15, item 9): a
// disk filled and freed again without growing it, and a projection that
// cannot commit while the log still does.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// readyzDetail returns the status of GET /readyz and its problem's detail.
func readyzDetail(addr string) (int, string) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/readyz", nil) // bounded by client's Timeout
	if err != nil {
		return 0, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(body, &p)
	return resp.StatusCode, p.Detail
}

// diskWatch samples, every 100 ms until stopped, the free space of a file
// system, the size of the main file's WAL on it, and /readyz.
type diskWatch struct {
	mu      sync.Mutex
	minFree int64
	maxWAL  int64
	readyz  map[string]int // "200", "503: detail"
	stop    chan struct{}
	done    chan struct{}
}

func watchDisk(mnt, addr string) *diskWatch {
	w := &diskWatch{minFree: 1 << 62, readyz: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			free := freeBytes(mnt)
			wal := fileSize(filepath.Join(mnt, "kycd.db-wal"))
			code, detail := readyzDetail(addr)
			w.mu.Lock()
			w.minFree, w.maxWAL = min(w.minFree, free), max(w.maxWAL, wal)
			k := fmt.Sprint(code)
			if code != http.StatusOK {
				k += ": " + detail
			}
			w.readyz[k]++
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

// end stops the sampling and returns the figures.
func (w *diskWatch) end() (minFree, maxWAL int64, readyz map[string]int) {
	close(w.stop)
	<-w.done
	return w.minFree, w.maxWAL, w.readyz
}

func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * st.Bsize //nolint:gosec // G115: a tmpfs's block count fits
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// diskFreedScenario fills the file system of kycd's SQLite files while
// events arrive and frees the space again, without growing the file
// system: the projection must catch up by itself, every acknowledged event
// be projected and notified, and the main file's WAL must not grow back
// into the space freed.
func diskFreedScenario(t *testing.T, bin string, rows *scenarioRows) {
	const size, afterFreed = 40 << 20, 2500
	mnt := smallDisk(t, fmt.Sprint(size))
	m := newMerchant(t, testSinkSecret)
	addr := freeAddr(t)
	args := []string{"--database", "sqlite:" + filepath.Join(mnt, "kycd.db"), "--ralio-secret", testSecret,
		"--admin-token", testToken, "--shutdown-drain", "0s",
		"--sink", "http=" + m.URL, "--sink-secret", testSinkSecret, "--retry-base", "50ms", "--retry-cap", "200ms"}
	p := startProcess(t, bin, addr, args...)
	s := newRalioSender("http://"+addr, testSecret, 1<<10)
	stopLoad := s.start(8, 50*time.Millisecond)
	defer stopLoad()
	s.waitAcked(t, 300, 60*time.Second)
	ackedBefore := len(s.ackedIDs())

	// Full for long enough that the projection has failed for longer than
	// readiness allows.
	filler, filled := fillDisk(t, mnt)
	s.phase.Store(1)
	// Readiness follows the commits: it turns 503 at the first that fails
	// for want of space (one that still fits may succeed first).
	if !waitUntil(30*time.Second, func() bool { return readyz(addr) == http.StatusServiceUnavailable }) {
		t.Errorf("disk full: /readyz still %d after 30 s", readyz(addr))
	}
	full := watchDisk(mnt, addr)
	time.Sleep(8 * time.Second)
	_, _, readyWhileFull := full.end()
	if readyWhileFull["200"] > 0 {
		t.Errorf("disk full: /readyz answered 200 ×%d while full (all: %v)", readyWhileFull["200"], readyWhileFull)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.phase.Store(2)
	freedAt := time.Now()
	freed := watchDisk(mnt, addr)
	p.waitReady(t, 30*time.Second)
	recovered := time.Since(freedAt)
	// Enough events that the main file's WAL, at its budget of a
	// roomier disk (32 MiB), would take more than the space freed.
	s.waitAcked(t, afterFreed, 90*time.Second)
	stopLoad()
	s.flush(t, 30*time.Second)
	s.checkNoProblems(t)
	acked := s.ackedIDs()
	unnotified := m.waitNotified(acked, 60*time.Second)
	if unnotified > 0 {
		t.Errorf("%d of %d acknowledged events not notified after the space was freed", unnotified, len(acked))
	}
	found, missing := foundEvents(t, "http://"+addr, testToken, acked)
	if len(missing) > 0 {
		t.Errorf("acknowledged events not projected after the space was freed: %v", missing)
	}
	caughtUp := time.Since(freedAt)
	minFree, maxWAL, readyAfter := freed.end()
	finalFree, finalWAL := freeBytes(mnt), fileSize(filepath.Join(mnt, "kycd.db-wal"))
	if code, detail := readyzDetail(addr); code != http.StatusOK {
		t.Errorf("after the projection caught up: /readyz %d %s", code, detail)
	}
	onlyAnswers(t, "before and after", s.answersIn(0), "200", "503")
	onlyAnswers(t, "disk full", s.answersIn(1), "200", "503")
	onlyAnswers(t, "after the space was freed", s.answersIn(2), "200", "503")
	// The space freed was filler; what kycd wrote since is a few MiB of
	// log. The WAL must stay within its budget on a file system this
	// small, and leave most of the space free.
	if maxWAL > 16<<20 {
		t.Errorf("the main file's WAL grew to %s after the space was freed, want at most 16 MiB", mib(maxWAL))
	}
	if minFree < filled/4 {
		t.Errorf("after the space was freed, free space fell to %s of the %s freed", mib(minFree), mib(filled))
	}
	rows.add(t, faultRow{
		Fault: fmt.Sprintf("a disk filled and freed recovers without growing it: kycd's SQLite files on a %d MiB tmpfs, filled by another file "+
			"for 8 s while 8 senders deliver 1 KiB events to kycd notifying an HTTP sink; the file then removed, the file system not grown, and %d more events acknowledged", size>>20, afterFreed),
		Expected: "while full: /readyz 503 from the first failed commit on, deliveries 200 or 503; once freed: /readyz 200 by itself, the projection catches up, every event " +
			"answered 200 projected and notified; the main file's WAL stays within its budget (at most 16 MiB) and most of the freed space stays free",
		Observed: fmt.Sprintf("%d acknowledged before; filler of %s; while full: deliveries %s, /readyz %s; once freed: ready after %.1f s, "+
			"deliveries %s, every acknowledged event projected and notified %.1f s after the space was freed; main WAL at most %s "+
			"(%s at the end), free space at least %s (%s at the end)",
			ackedBefore, mib(filled), countSummary(s.answersIn(1)), countSummary(readyWhileFull), recovered.Seconds(),
			countSummary(s.answersIn(2)), caughtUp.Seconds(), mib(maxWAL), mib(finalWAL), mib(minFree), mib(finalFree)),
		Acked: len(acked), Found: found, Counted: true,
	})
	t.Logf("readyz after the space was freed: %v", readyAfter)
}

// projectionLockScenario holds the main file's write lock from another
// process, as an operator's sqlite3 shell left in a transaction would,
// while events arrive: the log, a file of its own, still acknowledges
// them, and /readyz must say that the projection cannot commit, until the
// lock is released and it catches up by itself.
func projectionLockScenario(t *testing.T, bin string, rows *scenarioRows) {
	dbPath := filepath.Join(t.TempDir(), "kycd.db")
	m := newMerchant(t, testSinkSecret)
	addr := freeAddr(t)
	p := startProcess(t, bin, addr, "--database", "sqlite:"+dbPath, "--ralio-secret", testSecret,
		"--admin-token", testToken, "--shutdown-drain", "0s",
		"--sink", "http="+m.URL, "--sink-secret", testSinkSecret, "--retry-base", "50ms", "--retry-cap", "200ms")
	s := newRalioSender("http://"+addr, testSecret, 1000)
	stopLoad := s.start(4, 50*time.Millisecond)
	defer stopLoad()
	s.waitAcked(t, 100, 60*time.Second)

	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	lockedAt := time.Now()
	s.phase.Store(1)
	var detail string
	notReady := waitUntil(30*time.Second, func() bool {
		var code int
		code, detail = readyzDetail(addr)
		return code == http.StatusServiceUnavailable
	})
	noticed := time.Since(lockedAt)
	if !notReady {
		t.Errorf("/readyz still 200 %s after another process took the main file's write lock", noticed.Round(time.Second))
	} else if !strings.Contains(detail, "projection has failed to commit") {
		t.Errorf("/readyz 503 for %q, want the projection named", detail)
	}
	// The log still takes events (until --max-backlog, 20,000, is
	// reached: then 503).
	ackedLocked := s.answersIn(1)["200"]
	if ackedLocked == 0 {
		t.Errorf("while the main file was locked no delivery was acknowledged (%s); the log is another file and should take them", countSummary(s.answersIn(1)))
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	heldFor := time.Since(lockedAt)
	s.phase.Store(2)
	releasedAt := time.Now()
	p.waitReady(t, 30*time.Second)
	readyAfter := time.Since(releasedAt)
	stopLoad()
	s.flush(t, 30*time.Second)
	s.checkNoProblems(t)
	acked := s.ackedIDs()
	// The backlog (up to --max-backlog) is projected first: a read waits
	// 5 s at most for it, the notifications as long as they take.
	if n := m.waitNotified(acked, 90*time.Second); n > 0 {
		t.Errorf("%d of %d acknowledged events not notified after the lock was released", n, len(acked))
	}
	found, missing := foundEvents(t, "http://"+addr, testToken, acked)
	if len(missing) > 0 {
		t.Errorf("acknowledged events not projected after the lock was released: %v", missing)
	}
	onlyAnswers(t, "while the main file is locked", s.answersIn(1), "200", "503")
	rows.add(t, faultRow{
		Fault: "the projection cannot commit while the log can: another process holds the main file's write lock (BEGIN IMMEDIATE, as a sqlite3 shell left in a transaction) " +
			"while 4 senders deliver, then releases it",
		Expected: "deliveries still 200 (the log is another file) until the backlog cap, then 503; /readyz 503 naming the projection once it has failed to commit for 5 s; " +
			"once released: /readyz 200 by itself, every event answered 200 projected and notified",
		Observed: fmt.Sprintf("/readyz 503 %.1f s after the lock was taken: %q; deliveries while locked: %s (%d acknowledged); held %.1f s; "+
			"ready %.1f s after the release",
			noticed.Seconds(), detail, countSummary(s.answersIn(1)), ackedLocked, heldFor.Seconds(), readyAfter.Seconds()),
		Acked: len(acked), Found: found, Counted: true,
	})
}
