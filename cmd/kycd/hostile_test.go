package main

// A kycd process under hostile and heavy traffic: slow unsigned bodies
// must never keep Ralio's signed deliveries out, and many large bodies at
// once must stay within a bounded memory.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kycd/kycd/internal/testenv"
)

// trickle keeps one unsigned delivery on its way: it declares a body of
// 100,000 bytes and sends one byte a second, connecting again whenever kycd
// closes the connection, until stop is closed. started counts the requests
// whose headers were sent.
func trickle(addr string, stop <-chan struct{}, started *atomic.Int64) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(context.Background(), "tcp", addr)
		if err != nil {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		// A well-formed signature, only wrong: kycd cannot tell it from
		// Ralio's before the whole body is there.
		_, err = fmt.Fprintf(conn, "POST /webhooks/ralio HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-Signature: sha256=%s\r\nContent-Length: 100000\r\n\r\n",
			addr, strings.Repeat("ab", 32))
		if err == nil {
			started.Add(1)
		}
		t := time.NewTicker(time.Second)
		for err == nil {
			select {
			case <-stop:
				err = net.ErrClosed
			case <-t.C:
				conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, err = conn.Write([]byte{'{'})
			}
		}
		t.Stop()
		conn.Close()
	}
}

// signedEvent is a valid, signed-to-be kyc_session_failed of a new id,
// padded with an unknown field (kept, not refused) to size bytes.
func signedEvent(size int) []byte {
	_, body := newFailedEvent(size)
	return body
}

// slowBodiesScenario holds 320 unsigned deliveries trickling their bodies
// (issue 7: 256 of them took every place of signed deliveries for a
// minute) and checks that 40 signed deliveries sent meanwhile all get 200.
func slowBodiesScenario(t *testing.T, bin string, rows *scenarioRows) {
	addr := freeAddr(t)
	startProcess(t, bin, addr, "--database", "sqlite:"+filepath.Join(t.TempDir(), "kycd.db"),
		"--ralio-secret", testSecret, "--admin-token", testToken, "--shutdown-drain", "0s")

	const slow = 320
	stop := make(chan struct{})
	var started atomic.Int64
	var wg sync.WaitGroup
	for range slow {
		wg.Go(func() { trickle(addr, stop, &started) })
	}
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); started.Load() < slow; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d slow requests started", started.Load(), slow)
		}
	}
	// Past the first bytes of every slow body, and across the moment kycd
	// cuts them and they connect again.
	time.Sleep(1500 * time.Millisecond)

	const signed = 40
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	answers := make([]string, signed)
	ids := make([]string, signed)
	var sent sync.WaitGroup
	for i := range signed {
		sent.Go(func() {
			id, body := newFailedEvent(2000)
			resp, err := client.Do(webhookRequest("http://"+addr, testSecret, body))
			if err != nil {
				answers[i] = err.Error()
				return
			}
			resp.Body.Close()
			answers[i] = strconv.Itoa(resp.StatusCode)
			if resp.StatusCode == http.StatusOK {
				ids[i] = id
			}
		})
		time.Sleep(150 * time.Millisecond)
	}
	sent.Wait()
	ok := 0
	var acked []string
	for i, a := range answers {
		if a == "200" {
			ok++
			acked = append(acked, ids[i])
		}
	}
	t.Logf("%d slow unsigned requests started; %d of %d signed deliveries answered 200: %v", started.Load(), ok, signed, answers)
	if ok != signed {
		t.Fatalf("%d of %d signed deliveries answered 200 while %d unsigned bodies trickled in, want all: %v", ok, signed, slow, answers)
	}
	found, missing := foundEvents(t, "http://"+addr, testToken, acked)
	if len(missing) > 0 {
		t.Errorf("acknowledged events not found: %v", missing)
	}
	rows.add(t, faultRow{
		Fault: fmt.Sprintf("%d unsigned connections each declaring a 100,000-byte body and sending 1 byte/s, reconnecting when cut; meanwhile %d signed deliveries, one every 150 ms", slow, signed),
		Expected: "every signed delivery answered 200: a slow body holds neither a commit place nor more memory than it sent, " +
			"and is cut after the 5 s body deadline",
		Observed: fmt.Sprintf("%d slow requests started (with reconnections); %d of %d signed deliveries answered 200", started.Load(), ok, signed),
		Acked:    ok, Found: found, Counted: true,
	})
}

// thousandConnectionsScenario opens 1,000 connections that never finish
// their request line and headers while Ralio delivers, then sends 1,000
// signed deliveries at once, each on a connection of its own.
func thousandConnectionsScenario(t *testing.T, bin string, rows *scenarioRows) {
	addr := freeAddr(t)
	startProcess(t, bin, addr, "--database", "sqlite:"+filepath.Join(t.TempDir(), "kycd.db"),
		"--ralio-secret", testSecret, "--admin-token", testToken, "--shutdown-drain", "0s")
	const n = 1000

	// 1. A thousand idle connections, each with half a request.
	idle := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range n {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatalf("connection %d of %d: %v", len(idle)+1, n, err)
		}
		idle = append(idle, c)
		if _, err := fmt.Fprintf(c, "POST /webhooks/ralio HTTP/1.1\r\nHost: %s\r\n", addr); err != nil {
			t.Fatal(err)
		}
	}
	s := newRalioSender("http://"+addr, testSecret, 1000)
	const signed = 40
	for range signed {
		id, body := newFailedEvent(1000)
		s.deliver(t.Context(), id, body)
	}
	idleAnswers := s.answersIn(0)
	if idleAnswers["200"] != signed {
		t.Errorf("%d of %d signed deliveries answered 200 while %d connections idled: %s", idleAnswers["200"], signed, n, countSummary(idleAnswers))
	}
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	idleAcked := s.ackedIDs()

	// 2. A thousand signed deliveries at once, each on a new connection.
	s.phase.Store(1)
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			id, body := newFailedEvent(1000)
			<-start
			s.deliver(t.Context(), id, body)
		})
	}
	close(start)
	wg.Wait()
	s.client.CloseIdleConnections()
	burst := s.answersIn(1)
	for class := range burst {
		if class != "200" && class != "503" {
			t.Errorf("%d of %d simultaneous deliveries answered %s, want only 200 or 503 (Ralio retries): %s", burst[class], n, class, countSummary(burst))
		}
	}
	s.phase.Store(2)
	s.flush(t, 30*time.Second)
	s.checkNoProblems(t)
	var burstAcked []string
	for _, id := range s.ackedIDs() {
		if !slices.Contains(idleAcked, id) {
			burstAcked = append(burstAcked, id)
		}
	}
	idleFound, missing := foundEvents(t, "http://"+addr, testToken, idleAcked)
	burstFound, missing2 := foundEvents(t, "http://"+addr, testToken, burstAcked)
	if missing = append(missing, missing2...); len(missing) > 0 {
		t.Errorf("acknowledged events not found: %v", missing)
	}
	rows.add(t, faultRow{
		Fault:    fmt.Sprintf("1,000 connections open at once, each with half a request and then nothing; meanwhile %d signed deliveries", signed),
		Expected: "every signed delivery answered 200 (idle connections hold no place of signed deliveries; kycd closes them after 5 s without a request, --untrusted-idle-timeout)",
		Observed: fmt.Sprintf("%s idle connections held; signed deliveries: %s", thousands(strconv.Itoa(n)), countSummary(idleAnswers)),
		Acked:    len(idleAcked), Found: idleFound, Counted: true,
	})
	rows.add(t, faultRow{
		Fault:    "1,000 signed deliveries at once, each on a connection of its own, then Ralio's retries of those answered 503",
		Expected: "each answered 200, or 503 with Retry-After when the places of commits are taken (never a 4xx or a dropped connection); every retry then 200",
		Observed: fmt.Sprintf("at once: %s; retries: %s", countSummary(burst), countSummary(s.answersIn(2))),
		Acked:    len(burstAcked), Found: burstFound, Counted: true,
	})
}

// vmHWM is the peak resident memory of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	n := parseHWM(b)
	if n == 0 {
		t.Fatal("no VmHWM in /proc/PID/status")
	}
	return n
}

// parseHWM reads VmHWM, in bytes, from the text of /proc/PID/status; 0
// when it has none.
func parseHWM(status []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

func TestManyLargeBodiesStayWithinMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a kycd process and sends it 270 MB at once")
	}
	testenv.Long(t)
	bin := buildKycd(t)
	addr := freeAddr(t)
	p := startProcess(t, bin, addr, "--database", "sqlite:"+filepath.Join(t.TempDir(), "kycd.db"),
		"--ralio-secret", testSecret, "--admin-token", testToken, "--shutdown-drain", "0s")

	const n, size = 300, 900_000
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = signedEvent(size)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	codes := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range bodies {
		wg.Go(func() {
			<-start
			resp, err := client.Do(webhookRequest("http://"+addr, testSecret, bodies[i]))
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for i, c := range codes {
		if errs[i] != nil {
			t.Errorf("delivery %d: %v", i, errs[i])
			continue
		}
		count[c]++
	}
	// The projection of what was acknowledged counts too.
	s := &kycdServer{URL: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second}}
	eventually(t, "the projection to catch up", func() bool {
		return strings.Contains(s.metrics(t), "\nkycd_projection_backlog 0\n")
	})
	peak := vmHWM(t, p.cmd.Process.Pid)
	t.Logf("%d concurrent signed bodies of %d bytes: answers %v; peak RSS (VmHWM) %.1f MiB", n, size, count, float64(peak)/(1<<20))
	for c := range count {
		if c != http.StatusOK && c != http.StatusServiceUnavailable {
			t.Errorf("answer %d to %d deliveries, want only 200 or 503", c, count[c])
		}
	}
	if count[http.StatusOK] == 0 {
		t.Error("no delivery answered 200")
	}
	if peak > 256<<20 {
		t.Errorf("peak RSS %.1f MiB, want at most 256 MiB", float64(peak)/(1<<20))
	}
}

func TestBodyBudgetFlagNamesItself(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "k.db")
	_, err := cli(t, "serve", "--addr", "127.0.0.1:0", "--database", db, "--body-budget", "1000")
	if err == nil || !strings.Contains(err.Error(), "--body-budget") || !strings.Contains(err.Error(), "--max-body") {
		t.Errorf("--body-budget under --max-body: err = %v, want one naming --body-budget and --max-body", err)
	}
	getenv := func(k string) string {
		if k == "KYCD_BODY_BUDGET" {
			return "lots"
		}
		return ""
	}
	var stdout, stderr syncBuffer
	err = run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--database", db}, getenv, strings.NewReader(""), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "KYCD_BODY_BUDGET") || !strings.Contains(err.Error(), "--body-budget") {
		t.Errorf("KYCD_BODY_BUDGET=lots: err = %v, want one naming KYCD_BODY_BUDGET and --body-budget", err)
	}
}

// Shutting down under load: no request is sent on a kept-alive connection
// that then closes under it, which would leave Ralio not knowing whether
// kycd took the event; every one is answered (200 or 503), or finds no
// listener.
func TestShutdownUnderKeepAliveLoadLeavesNoRequestInDoubt(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--shutdown-drain", "1s")
	var stopped atomic.Bool
	var answered, refused, reset atomic.Int64
	var mu sync.Mutex
	var inDoubt []string // sent on a kept-alive connection that closed under it
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for !stopped.Load() {
				req := webhookRequest(s.URL, s.Secret, signedEvent(1000))
				var reused bool
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(c httptrace.GotConnInfo) { reused = c.Reused },
				}))
				resp, err := client.Do(req)
				switch {
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				case err != nil && !reused:
					// A connection the kernel completed just before the
					// listener closed is reset: TCP's own race, which no
					// server avoids; the request was never read.
					reset.Add(1)
					continue
				case err != nil:
					mu.Lock()
					inDoubt = append(inDoubt, err.Error())
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
					mu.Lock()
					inDoubt = append(inDoubt, resp.Status)
					mu.Unlock()
				}
				answered.Add(1)
			}
		})
	}
	eventually(t, "load to build up", func() bool { return answered.Load() >= 200 })
	err := s.stop(t)
	stopped.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("kycd serve returned %v", err)
	}
	t.Logf("%d requests answered; %d refused a connection after shutdown; %d new connections reset as the listener closed; %d on kept-alive connections failed",
		answered.Load(), refused.Load(), reset.Load(), len(inDoubt))
	if len(inDoubt) > 0 {
		t.Fatalf("%d requests sent on a kept-alive connection failed during shutdown, e.g. %v", len(inDoubt), inDoubt[:min(5, len(inDoubt))])
	}
}
