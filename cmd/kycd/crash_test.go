package main

// kill -9 of a real kycd process: between the log commit and the
// projection, and between the projection and the deliveries. Nothing
// acknowledged may be lost, and every notification keeps its id.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// buildKycd compiles this command once per test into a temporary file.
func buildKycd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kycd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
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
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startProcess(t *testing.T, bin, addr string, args ...string) *process {
	t.Helper()
	p := &process{addr: addr, stderr: &syncBuffer{}}
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "KYCD_LOG_FORMAT=text")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kycd at %s not ready after 20s\nstderr:\n%s", addr, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func TestKill9LosesNothingAndNotifiesOncePerID(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills a kycd process")
	}
	bin := buildKycd(t)
	m := newMerchant(t, testSinkSecret)
	db := filepath.Join(t.TempDir(), "kycd.db")
	args := []string{"--database", "sqlite:" + db, "--ralio-secret", testSecret, "--admin-token", testToken,
		"--sink", "http=" + m.URL, "--sink-secret", testSinkSecret, "--retry-base", "50ms", "--retry-cap", "200ms",
		"--shutdown-drain", "0s"}
	addr := freeAddr(t)

	// 1. Events under load; kill -9 once some hundreds are acknowledged:
	// entries are committed to the log and not yet projected, others
	// projected and not yet delivered.
	p := startProcess(t, bin, addr, args...)
	var acked sync.Map // event id → true
	var nAcked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := uuid.NewString()
				body := fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_failed","timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":[{"type":"document-verification","state":"Refused","reasons":[{"type":"document","code":"EXPIRED_DOCUMENT","message":"expired"}]}]}}`,
					id, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), uuid.NewString(), uuid.NewString())
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/ralio", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, testSecret))
				resp, err := client.Do(req)
				if err != nil {
					continue // the process died under it: not acknowledged
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					acked.Store(id, true)
					nAcked.Add(1)
				}
			}
		})
	}
	for nAcked.Load() < 400 {
		time.Sleep(time.Millisecond)
	}
	p.kill()
	close(stop)
	wg.Wait()

	// 2. Restart: the log is projected; kill -9 again while deliveries
	// are under way (the merchant is slow: some are sent and not yet
	// recorded).
	m.delay.Store(int64(20 * time.Millisecond))
	p = startProcess(t, bin, addr, args...)
	deadline := time.Now().Add(30 * time.Second)
	for len(m.notifications()) < int(nAcked.Load())/3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	p.kill()
	m.delay.Store(0)

	// 3. Restart: everything acknowledged is there and reaches the
	// merchant, each under the id derived from its event.
	startProcess(t, bin, addr, args...)
	want := map[string]string{} // notification id → event id
	acked.Range(func(k, _ any) bool {
		want[kycd.NotificationID(k.(string))] = k.(string)
		return true
	})
	deadline = time.Now().Add(60 * time.Second)
	for {
		m.mu.Lock()
		got := map[string]bool{}
		for _, id := range m.ids {
			got[id] = true
		}
		m.mu.Unlock()
		missing := 0
		for id := range want {
			if !got[id] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events never reached the merchant", missing, len(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := &kycdServer{URL: "http://" + addr, Token: testToken, client: &http.Client{Timeout: 10 * time.Second}}
	for _, eid := range want {
		if ev := s.event(t, eid); ev.EventID != eid || ev.Outcome != kycd.OutcomeApplied {
			t.Fatalf("acknowledged event %s = %+v, want it stored and applied", eid, ev)
		}
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
	t.Logf("%d events acknowledged before the first kill; the merchant got %d requests for %d notification ids over two kills",
		len(want), len(m.ids), len(ids))
	if m.badSig != 0 {
		t.Fatalf("%d notifications failed the signature check", m.badSig)
	}
}
