package main

// kycd as a process of its own, and kill -9 of it under load: between the
// log commit and the projection, and between the projection and the
// deliveries. Nothing acknowledged may be lost, and every notification
// keeps its id.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// buildKycd compiles this command once per test into a temporary file.
func buildKycd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kycd")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a kycd serve running as a process of its own.
type process struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	done   chan struct{} // closed once the process has exited
	err    error         // what Wait returned, set before done is closed
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess starts `kycd serve --addr addr ARGS…` and returns once it
// answers /readyz; it is killed when the test ends.
func startProcess(t *testing.T, bin, addr string, args ...string) *process {
	t.Helper()
	p := &process{addr: addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	// Not the test's context: the test stops the process itself, and a
	// cleanup may still wait for it after that context has ended.
	p.cmd = exec.CommandContext(context.Background(), bin, append([]string{"serve", "--addr", addr}, args...)...)
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "KYCD_LOG_FORMAT=text")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	p.waitReady(t, 20*time.Second)
	return p
}

// readyz returns the status of GET /readyz, or 0 when there is no answer.
func readyz(addr string) int {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/readyz", nil) // bounded by client's Timeout
	if err != nil {
		return 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReady waits, at most within, until /readyz answers 200.
func (p *process) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for readyz(p.addr) != http.StatusOK {
		select {
		case <-p.done:
			t.Fatalf("kycd at %s exited before it was ready: %v\nstderr:\n%s", p.addr, p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kycd at %s not ready after %s\nstderr:\n%s", p.addr, within, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// terminate sends SIGTERM and waits, at most within, for the process to
// exit; it returns how long that took and what Wait returned.
func (p *process) terminate(t *testing.T, within time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(within):
		p.kill()
		t.Fatalf("kycd still running %s after SIGTERM\nstderr:\n%s", within, p.stderr)
		return 0, nil
	}
}

// kill9Scenario kills a kycd process on store (SQLite or PostgreSQL) twice:
// under webhook load, while entries are committed to the log and not yet
// projected and others projected and not yet delivered; then while the
// deliveries are under way. Every acknowledged event must be stored and
// reach the merchant, each under the notification id derived from it.
func kill9Scenario(store string) func(t *testing.T, bin string, rows *scenarioRows) {
	return func(t *testing.T, bin string, rows *scenarioRows) {
		database := "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")
		if store == "PostgreSQL" {
			database = postgrestest.URL(t)
		}
		m := newMerchant(t, testSinkSecret)
		args := []string{"--database", database, "--ralio-secret", testSecret, "--admin-token", testToken,
			"--sink", "http=" + m.URL, "--sink-secret", testSinkSecret, "--retry-base", "50ms", "--retry-cap", "200ms",
			"--shutdown-drain", "0s"}
		addr := freeAddr(t)

		// 1. Under load; kill -9 once some hundreds are acknowledged.
		p := startProcess(t, bin, addr, args...)
		s := newRalioSender("http://"+addr, testSecret, 1000)
		stop := make(chan struct{})
		wait := s.run(16, 20*time.Millisecond, stop)
		s.waitAcked(t, 400, 60*time.Second)
		p.kill()
		close(stop)
		wait()
		beforeKill := len(s.ackedIDs())
		loadAnswers := s.answerSummary(-1)

		// 2. Restart: the log is projected; kill -9 again while deliveries
		// are under way (the merchant is slow: some are sent and not yet
		// recorded).
		m.delay.Store(int64(20 * time.Millisecond))
		p = startProcess(t, bin, addr, args...)
		deadline := time.Now().Add(30 * time.Second)
		for len(m.notifications()) < beforeKill/3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		atSecondKill := len(m.notifications())
		p.kill()
		m.delay.Store(0)

		// 3. Restart; Ralio sends again what was never answered 200.
		startProcess(t, bin, addr, args...)
		restarted := time.Now()
		s.flush(t, 30*time.Second)
		s.checkNoProblems(t)
		acked := s.ackedIDs()
		want := map[string]string{} // notification id → event id
		for _, id := range acked {
			want[kycd.NotificationID(id)] = id
		}
		// A delivery the killed process had leased waits for its lease (40 s)
		// to expire: another replica may still be sending it.
		if missing := m.waitNotified(acked, 90*time.Second); missing > 0 {
			t.Fatalf("%d of %d acknowledged events never reached the merchant", missing, len(want))
		}
		allNotified := time.Since(restarted)
		found, missing := foundEvents(t, "http://"+addr, testToken, acked)
		if len(missing) > 0 {
			t.Errorf("acknowledged events not found after the restarts: %v", missing)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		ids := map[string]int{}
		for i, n := range m.received {
			// Every notification, even a repeat after a kill, carries the id
			// derived from its event, so the merchant drops the repeat.
			if src, _ := n["sourceEventId"].(string); m.ids[i] != kycd.NotificationID(src) || n["id"] != m.ids[i] {
				t.Fatalf("notification %v came with webhook-id %s, want %s", n, m.ids[i], kycd.NotificationID(src))
			}
			ids[m.ids[i]]++
		}
		if m.badSig != 0 {
			t.Fatalf("%d notifications failed the signature check", m.badSig)
		}
		t.Logf("%d events acknowledged before the first kill, %d in all; the merchant got %d requests for %d notification ids over two kills",
			beforeKill, len(acked), len(m.ids), len(ids))
		rows.add(t, faultRow{
			Fault: fmt.Sprintf("kill -9 of kycd on %s under load (16 senders), then again while notifications are delivered to a slow merchant", store),
			Expected: "every event answered 200 is stored and applied after the restart and reaches the merchant, " +
				"each under the notification id derived from it (a repeat carries the same id); deliveries that got no answer, " +
				"sent again, are answered 200",
			Observed: fmt.Sprintf("first kill after %d events were acknowledged (answers: %s); second kill with %d notifications at the merchant; "+
				"after the restart every acknowledged event is found, and notified within %.1f s: %d requests reached the merchant for %d notification ids",
				beforeKill, loadAnswers, atSecondKill, allNotified.Seconds(), len(m.ids), len(ids)),
			Acked: len(acked), Found: found, Counted: true,
		})
	}
}
