package main

// Faults of kycd's surroundings, for the fault suite: SIGTERM under load,
// PostgreSQL stopped and crashed under load (a private cluster), and a
// full disk under SQLite.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitUntil polls cond every 10 ms until it holds or within has passed,
// and reports whether it held.
func waitUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// sum adds up counts.
func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// onlyAnswers fails the test unless every answer of m is one of allowed.
func onlyAnswers(t *testing.T, when string, m map[string]int, allowed ...string) {
	t.Helper()
	for class, n := range m {
		if !slices.Contains(allowed, class) {
			t.Errorf("%s: %d deliveries answered %q, want only %q (all: %s)", when, n, class, allowed, countSummary(m))
		}
	}
}

// sigtermScenario stops kycd with SIGTERM while Ralio delivers on
// kept-alive connections.
func sigtermScenario(t *testing.T, bin string, rows *scenarioRows) {
	addr := freeAddr(t)
	// The default --shutdown-drain (1 s) is what is under test.
	args := []string{"--database", "sqlite:" + filepath.Join(t.TempDir(), "kycd.db"),
		"--ralio-secret", testSecret, "--admin-token", testToken}
	p := startProcess(t, bin, addr, args...)
	s := newRalioSender("http://"+addr, testSecret, 1000)
	stopLoad := s.start(16, 20*time.Millisecond)
	s.waitAcked(t, 300, 60*time.Second)
	s.phase.Store(1)
	took, err := p.terminate(t, 40*time.Second)
	stopLoad()
	if err != nil {
		t.Errorf("kycd exited with %v after SIGTERM, want 0\nstderr:\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "msg=stopped") {
		t.Errorf("kycd did not log that it stopped\nstderr:\n%s", p.stderr)
	}
	// Connections the kernel completed just before the listener closed are
	// reset unread: TCP's own race, which no server avoids.
	all := s.answersIn(0)
	for k, v := range s.answersIn(1) {
		all[k] += v
	}
	onlyAnswers(t, "under load and SIGTERM", all, "200", "503", answerRefused, answerNewConn)

	startProcess(t, bin, addr, args...)
	s.phase.Store(2)
	s.flush(t, 30*time.Second)
	s.checkNoProblems(t)
	acked := s.ackedIDs()
	found, missing := foundEvents(t, "http://"+addr, testToken, acked)
	if len(missing) > 0 {
		t.Errorf("acknowledged events not found after the restart: %v", missing)
	}
	rows.add(t, faultRow{
		Fault: "SIGTERM to kycd on SQLite under load (16 senders on kept-alive connections, default --shutdown-drain 1s), then a restart",
		Expected: "exit status 0 within the drain plus the requests in flight; every delivery answered 200 or 503 " +
			"(Retry-After, Connection: close), or refused a connection once the listener is closed; none sent on a kept-alive " +
			"connection that closes under it (no request in doubt); every event answered 200 found after the restart",
		Observed: fmt.Sprintf("exit status 0 %.1f s after SIGTERM; answers from the signal on: %s; all answers: %s; resent after the restart: %s",
			took.Seconds(), countSummary(s.answersIn(1)), countSummary(all), countSummary(s.answersIn(2))),
		Acked: len(acked), Found: found, Counted: true,
	})
}

// privatePostgres is a PostgreSQL cluster of one test, in a temporary
// directory on a port of its own, which the test may stop and start; never
// the shared server of KYCD_TEST_POSTGRES.
type privatePostgres struct {
	bin     string // directory of pg_ctl, initdb, postgres
	version string
	dir     string // the data directory's parent
	port    string
	cred    *syscall.Credential // whom it runs as, when the test runs as root
	URL     string
}

// postgresBin finds the directory of PostgreSQL's server binaries: the
// newest of Debian's /usr/lib/postgresql/*/bin, else pg_ctl on the PATH.
func postgresBin() (dir, version string, ok bool) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i], filepath.Base(filepath.Dir(dirs[i])), true
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), "", true
	}
	return "", "", false
}

// startPrivatePostgres creates and starts a private cluster. Without
// PostgreSQL's server binaries the test skips, unless
// KYCD_TEST_REQUIRE_SERVICES=1 (CI), where it fails. initdb refuses to
// run as root, so as root the cluster runs as the user postgres (or
// nobody).
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bin, version, ok := postgresBin()
	if !ok {
		const why = "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on the PATH"
		if os.Getenv("KYCD_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	dir, err := os.MkdirTemp("", "kycd-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &privatePostgres{bin: bin, version: version, dir: dir}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			t.Fatalf("running as root and no user postgres or nobody to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			t.Fatal(err)
		}
	}
	// MkdirTemp's directory is the user's alone: the cluster's user must
	// reach it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pg.port = strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	pg.run(t, "initdb", "-D", pg.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	pg.URL = "postgres://postgres@127.0.0.1:" + pg.port + "/postgres?sslmode=disable"
	pg.start(t)
	t.Cleanup(func() {
		cmd := pg.command("pg_ctl", "-D", pg.data(), "-m", "immediate", "-w", "stop")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	return pg
}

func (pg *privatePostgres) data() string { return filepath.Join(pg.dir, "data") }

func (pg *privatePostgres) command(name string, args ...string) *exec.Cmd {
	// Not the test's context: the server is stopped in a cleanup, after
	// that context has ended.
	cmd := exec.CommandContext(context.Background(), filepath.Join(pg.bin, name), args...)
	cmd.Dir = pg.dir
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

func (pg *privatePostgres) run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := pg.command(name, args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "log"))
		t.Fatalf("%s %s: %v\n%s\nserver log:\n%s", name, strings.Join(args, " "), err, out, log)
	}
}

// start starts the cluster and returns once it accepts connections. fsync
// is off: the faults are crashes of PostgreSQL's processes, not of the
// machine, whose page cache keeps what they wrote.
func (pg *privatePostgres) start(t *testing.T) {
	t.Helper()
	pg.run(t, "pg_ctl", "-D", pg.data(), "-l", filepath.Join(pg.dir, "log"), "-w", "-t", "60",
		"-o", "-p "+pg.port+" -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off", "start")
}

// stop stops the cluster: "fast" (clients disconnected, a clean
// shutdown) or "immediate" (every process killed; recovery from the WAL
// at the next start).
func (pg *privatePostgres) stop(t *testing.T, mode string) {
	t.Helper()
	pg.run(t, "pg_ctl", "-D", pg.data(), "-m", mode, "-w", "-t", "60", "stop")
}

// postgresOutageScenario stops a private PostgreSQL under a kycd process
// in load, once cleanly (fast) and once as a crash (immediate), and
// restarts it each time.
func postgresOutageScenario(t *testing.T, bin string, rows *scenarioRows) {
	pg := startPrivatePostgres(t)
	addr := freeAddr(t)
	p := startProcess(t, bin, addr, "--database", pg.URL, "--ralio-secret", testSecret, "--admin-token", testToken,
		"--shutdown-drain", "0s")
	s := newRalioSender("http://"+addr, testSecret, 1000)
	stopLoad := s.start(8, 50*time.Millisecond)
	defer stopLoad()

	type outage struct {
		mode, what     string
		ackedBefore    int
		readyzDown     bool
		down, recovery time.Duration
		phase          int32
	}
	var outages []outage
	for i, mode := range []string{"fast", "immediate"} {
		s.waitAcked(t, 200, 60*time.Second)
		o := outage{mode: mode, ackedBefore: len(s.ackedIDs()), phase: int32(3*i + 1)}
		o.what = map[string]string{"fast": "stopped (pg_ctl stop -m fast)", "immediate": "crashed (pg_ctl stop -m immediate: every process killed, recovery from the WAL)"}[mode]
		pg.stop(t, mode)
		downAt := time.Now()
		// Deliveries sent from now on reach a kycd whose database is down.
		s.phase.Store(o.phase)
		o.readyzDown = waitUntil(15*time.Second, func() bool { return readyz(addr) == http.StatusServiceUnavailable })
		if !o.readyzDown {
			t.Errorf("PostgreSQL %s: /readyz still answers %d after 15 s", o.what, readyz(addr))
		}
		// Down for a few seconds: long enough for kycd's pool to try its
		// connections again and again, and for every sender to retry.
		if !waitUntil(20*time.Second, func() bool { return time.Since(downAt) >= 3*time.Second && sum(s.answersIn(o.phase)) >= 40 }) {
			t.Errorf("PostgreSQL %s: only %d deliveries answered in 20 s", o.what, sum(s.answersIn(o.phase)))
		}
		s.phase.Store(o.phase + 1)
		o.down = time.Since(downAt)
		pg.start(t)
		upAt := time.Now()
		p.waitReady(t, 30*time.Second)
		o.recovery = time.Since(upAt)
		s.phase.Store(o.phase + 2)
		onlyAnswers(t, "PostgreSQL "+o.what, s.answersIn(o.phase), "503")
		outages = append(outages, o)
	}
	s.waitAcked(t, 200, 60*time.Second)
	stopLoad()
	s.flush(t, 30*time.Second)
	s.checkNoProblems(t)
	for ph := range int32(7) {
		if ph%3 != 1 {
			onlyAnswers(t, fmt.Sprintf("phase %d", ph), s.answersIn(ph), "200", "503")
		}
	}
	acked := s.ackedIDs()
	found, missing := foundEvents(t, "http://"+addr, testToken, acked)
	if len(missing) > 0 {
		t.Errorf("acknowledged events not found after the outages: %v", missing)
	}
	for i, o := range outages {
		r := faultRow{
			Fault: fmt.Sprintf("PostgreSQL %s under load (8 senders), then started again: a private %s cluster, kycd running throughout",
				o.what, cmpOr("PostgreSQL "+pg.version, "PostgreSQL")),
			Expected: "while it is down: every delivery answered 503 with Retry-After (never a 4xx), /readyz 503; " +
				"once it is up: /readyz 200 by itself, deliveries 200; every event answered 200 before, during or after found",
			Observed: fmt.Sprintf("%d acknowledged before the stop; down %.1f s: deliveries %s, /readyz %s; ready %.1f s after the start; "+
				"sent during the start: %s; after: %s",
				o.ackedBefore, o.down.Seconds(), countSummary(s.answersIn(o.phase)), map[bool]string{true: "503", false: "not 503"}[o.readyzDown],
				o.recovery.Seconds(), countSummary(s.answersIn(o.phase+1)), countSummary(s.answersIn(o.phase+2))),
		}
		if i == len(outages)-1 {
			// The figures are those of the whole run: both outages, then
			// Ralio's retries of what was not answered 200.
			r.Acked, r.Found, r.Counted = len(acked), found, true
			r.Observed += fmt.Sprintf("; events acknowledged over both outages and the retries: %d", len(acked))
		}
		rows.add(t, r)
	}
}

// fillDisk writes a file in dir until the file system is full, and
// returns its path and size.
func fillDisk(t *testing.T, dir string) (string, int64) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			w, err := f.Write(buf)
			n += int64(w)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return path, n
}

// smallDisk mounts a tmpfs of size (as mount's size= takes it) for the
// test, or skips it where mounting is not allowed.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("a full disk needs a small file system to fill, and mounting a tmpfs failed (%v): run as root (CAP_SYS_ADMIN) to try it", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

// diskFullScenario runs kycd on SQLite files in a small tmpfs and fills
// it under load: deliveries must get 503 (Ralio retries), /readyz must
// fail, and both must recover by themselves once space is freed.
func diskFullScenario(t *testing.T, bin string, rows *scenarioRows) {
	const size = "32m"
	mnt := smallDisk(t, size)
	addr := freeAddr(t)
	args := []string{"--database", "sqlite:" + filepath.Join(mnt, "kycd.db"), "--ralio-secret", testSecret,
		"--admin-token", testToken, "--shutdown-drain", "0s"}
	p := startProcess(t, bin, addr, args...)
	// Bodies of 16 KiB fill the log's WAL quickly once it can no longer be
	// checkpointed into a file that cannot grow.
	s := newRalioSender("http://"+addr, testSecret, 16<<10)
	stopLoad := s.start(8, 50*time.Millisecond)
	defer stopLoad()
	s.waitAcked(t, 100, 60*time.Second)
	ackedBefore := len(s.ackedIDs())

	filler, filled := fillDisk(t, mnt)
	fullAt := time.Now()
	s.phase.Store(1)
	readyzDown := waitUntil(30*time.Second, func() bool { return readyz(addr) == http.StatusServiceUnavailable })
	// Full for a few seconds: readiness probes again, the projector and
	// every sender retry.
	got503 := waitUntil(30*time.Second, func() bool { return time.Since(fullAt) >= 3*time.Second && s.answersIn(1)["503"] >= 20 })
	fullFor := time.Since(fullAt)
	if !readyzDown {
		t.Errorf("disk full: /readyz still %d after 30 s", readyz(addr))
	}
	if !got503 {
		t.Errorf("disk full: deliveries answered %s in 30 s, want 503s", countSummary(s.answersIn(1)))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.phase.Store(2)
	freedAt := time.Now()
	p.waitReady(t, 30*time.Second)
	recovered := time.Since(freedAt)
	s.waitAcked(t, 100, 60*time.Second)
	stopLoad()
	s.flush(t, 30*time.Second)
	s.checkNoProblems(t)
	onlyAnswers(t, "disk full", s.answersIn(1), "200", "503")
	onlyAnswers(t, "before and after", s.answersIn(0), "200", "503")
	onlyAnswers(t, "before and after", s.answersIn(2), "200", "503")

	// What the files hold must survive a restart.
	if _, err := p.terminate(t, 40*time.Second); err != nil {
		t.Errorf("kycd exited with %v after SIGTERM\nstderr:\n%s", err, p.stderr)
	}
	startProcess(t, bin, addr, args...)
	acked := s.ackedIDs()
	found, missing := foundEvents(t, "http://"+addr, testToken, acked)
	if len(missing) > 0 {
		t.Errorf("acknowledged events not found after the disk was freed and kycd restarted: %v", missing)
	}
	rows.add(t, faultRow{
		Fault: fmt.Sprintf("disk full under load: kycd's SQLite files on a %s MiB tmpfs, filled by another file while 8 senders deliver 16 KiB events; "+
			"the file then removed; then kycd restarted", strings.TrimSuffix(size, "m")),
		Expected: "while full: deliveries 503 with Retry-After (a commit that still fits the WAL may be 200), /readyz 503; " +
			"once freed: /readyz 200 by itself and deliveries 200; every event answered 200 found after the restart",
		Observed: fmt.Sprintf("%d acknowledged before; filler of %.1f MiB; full for %.1f s: deliveries %s, /readyz %s; "+
			"ready %.1f s after the space was freed; after: %s",
			ackedBefore, float64(filled)/(1<<20), fullFor.Seconds(), countSummary(s.answersIn(1)), map[bool]string{true: "503", false: "not 503"}[readyzDown],
			recovered.Seconds(), countSummary(s.answersIn(2))),
		Acked: len(acked), Found: found, Counted: true,
	})
}
