package main

// Issue 15, item 4: fair use of the body budget and of connections. Both
// scenarios are long (KYCD_TEST_LONG=1) and rows of docs/reliability.md.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// halfBody keeps one unsigned delivery from local holding memory: it
// declares a body of 1 MiB, sends half of it at once and then nothing,
// connecting again whenever kycd answers or closes, until stop is closed.
// held counts the requests whose half body was sent.
func halfBody(addr string, local net.Addr, stop <-chan struct{}, held *atomic.Int64) {
	half := make([]byte, 512<<10)
	for i := range half {
		half[i] = ' '
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, err := (&net.Dialer{Timeout: time.Second, LocalAddr: local}).DialContext(context.Background(), "tcp", addr)
		if err != nil {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		_, err = fmt.Fprintf(conn, "POST /webhooks/ralio HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-Signature: sha256=%s\r\nContent-Length: %d\r\n\r\n",
			addr, strings.Repeat("ab", 32), 1<<20)
		if err == nil {
			_, err = conn.Write(half)
		}
		if err == nil {
			held.Add(1)
			// Hold until kycd answers (503 at once when over the share, or
			// at the body deadline) or the test ends.
			done := make(chan struct{})
			go func() {
				_, _ = io.Copy(io.Discard, conn)
				close(done)
			}()
			select {
			case <-stop:
			case <-done:
			}
		}
		conn.Close()
	}
}

// halfBodiesScenario: 48 unsigned connections from one address each send
// half of a declared 1 MiB body and hold (issue 15: 40–64 of them held the
// 32 MiB budget and 80 % of signed deliveries got 503); Ralio, from
// another address, sends 100 signed deliveries meanwhile, each once.
func halfBodiesScenario(t *testing.T, bin string, rows *scenarioRows) {
	addr := freeAddr(t)
	startProcess(t, bin, addr, "--database", "sqlite:"+filepath.Join(t.TempDir(), "kycd.db"),
		"--ralio-secret", testSecret, "--admin-token", testToken, "--shutdown-drain", "0s")
	attacker := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	if l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("no second loopback address for the attacker: %v", err)
	} else {
		l.Close()
	}

	const conns, signed = 48, 100
	stop := make(chan struct{})
	var held atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() { halfBody(addr, attacker, stop, &held) })
	}
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); held.Load() < conns; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d half bodies sent", held.Load(), conns)
		}
	}

	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	answers := map[string]int{}
	var acked []string
	for range signed {
		id, body := newFailedEvent(2000)
		resp, err := client.Do(webhookRequest("http://"+addr, testSecret, body))
		if err != nil {
			answers[err.Error()]++
		} else {
			resp.Body.Close()
			answers[strconv.Itoa(resp.StatusCode)]++
			if resp.StatusCode == http.StatusOK {
				acked = append(acked, id)
			}
		}
		time.Sleep(100 * time.Millisecond) // 10 s: across two body deadlines of the attack
	}
	metrics := scrape(t, addr)
	t.Logf("%d half bodies sent; signed deliveries: %s; %s", held.Load(), countSummary(answers), metrics)
	if ok := answers["200"]; ok*100 < signed*95 {
		t.Errorf("%d of %d signed deliveries answered 200 beside %d unsigned half bodies, want ≥ 95 %%: %s", ok, signed, conns, countSummary(answers))
	}
	found, missing := foundEvents(t, "http://"+addr, testToken, acked)
	if len(missing) > 0 {
		t.Errorf("acknowledged events not found: %v", missing)
	}
	rows.add(t, faultRow{
		Fault: fmt.Sprintf("%d unsigned connections from one address, each declaring a 1 MiB body, sending half of it at once and holding, reconnecting when answered; meanwhile %d signed deliveries from another address, one every 100 ms, each sent once", conns, signed),
		Expected: "≥ 95 % of signed deliveries answered 200: one address holds at most its share of the body budget (--peer-body-budget, a quarter of --body-budget), " +
			"beyond it 503 at once (`kycd_webhook_body_budget_refused_total{reason=\"peer\"}`)",
		Observed: fmt.Sprintf("%s half bodies sent (with reconnections); signed deliveries: %s; %s", thousands(strconv.FormatInt(held.Load(), 10)), countSummary(answers), metrics),
		Acked:    len(acked), Found: found, Counted: true,
	})
}

// scrape is a summary of kycd's fair-use metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics") //nolint:noctx // bounded by the client's timeout
	if err != nil {
		return "metrics: " + err.Error()
	}
	defer resp.Body.Close()
	want := regexp.MustCompile(`^kycd_(webhook_body_budget_refused_total|http_connections_open|http_connections_closed_total)\b`)
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); want.MatchString(line) && !strings.HasSuffix(line, " 0") {
			out = append(out, "`"+line+"`")
		}
	}
	return strings.Join(out, ", ")
}

// fdLimitScenario runs kycd with an open-file limit of 1,024 and opens
// 1,100 keep-alive connections, each idle after one GET /healthz (issue 15:
// with 1,004 accept4 failed with too many open files and a signed delivery
// timed out after 30 s); a signed delivery must then be answered within
// 2 s. Once
// with the defaults, once without the untrusted idle timeout, so that the
// connection cap alone is shown to hold.
func fdLimitScenario(t *testing.T, bin string, rows *scenarioRows) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skipf("no prlimit: %v", err)
	}
	wrapper := filepath.Join(t.TempDir(), "kycd-1024")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --nofile=1024 %s \"$@\"\n", prlimit, bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		name  string
		flags []string
	}{
		{"defaults (--max-connections from the limit: 768; --untrusted-idle-timeout 5s)", nil},
		{"--untrusted-idle-timeout 0 (the connection cap alone)", []string{"--untrusted-idle-timeout", "0"}},
	} {
		addr := freeAddr(t)
		p := startProcess(t, wrapper, addr, append([]string{"--database", "sqlite:" + filepath.Join(t.TempDir(), "kycd.db"),
			"--ralio-secret", testSecret, "--admin-token", testToken, "--shutdown-drain", "0s"}, v.flags...)...)
		limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
		if !regexp.MustCompile(`Max open files\s+1024\s+1024`).Match(limits) {
			t.Fatalf("kycd runs with limits\n%s\nwant 1024 open files", limits)
		}

		// More than the limit allows open at once (issue 15 held 1,004).
		const n = 1100
		var mu sync.Mutex
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		var answered, failed atomic.Int64
		var wg sync.WaitGroup
		opened := time.Now()
		for range 50 {
			wg.Go(func() {
				for range n / 50 {
					c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(t.Context(), "tcp", addr)
					if err != nil {
						failed.Add(1)
						continue
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					answered.Add(1)
				}
			})
		}
		wg.Wait()
		openedIn := time.Since(opened)

		_, body := newFailedEvent(1000)
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		start := time.Now()
		resp, err := client.Do(webhookRequest("http://"+addr, testSecret, body))
		took := time.Since(start)
		client.CloseIdleConnections()
		status := ""
		acked := 0
		if err != nil {
			status = err.Error()
		} else {
			resp.Body.Close()
			status = strconv.Itoa(resp.StatusCode)
			if resp.StatusCode == http.StatusOK {
				acked = 1
			}
		}
		// Still open: the idle connections kycd has not closed.
		stillOpen := 0
		for _, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					stillOpen++
				}
			}
		}
		metrics := scrape(t, addr)
		t.Logf("%s: %d idle connections answered (%d failed) in %s; signed delivery %s in %s; %d still open; %s",
			v.name, answered.Load(), failed.Load(), openedIn.Round(time.Millisecond), status, took.Round(time.Millisecond), stillOpen, metrics)
		if status != "200" || took > 2*time.Second {
			t.Errorf("%s: signed delivery beside %d idle connections under a 1,024-file limit: %s in %s, want 200 within 2 s", v.name, n, status, took)
		}
		if strings.Contains(p.stderr.String(), "too many open files") {
			t.Errorf("%s: kycd ran out of file descriptors:\n%s", v.name, grepLines(p.stderr.String(), "too many open files"))
		}
		found := 0
		if acked == 1 {
			found, _ = foundEvents(t, "http://"+addr, testToken, []string{mustEventID(t, body)})
		}
		rows.add(t, faultRow{
			Fault: fmt.Sprintf("kycd under an open-file limit of 1,024 (prlimit), %s: %s keep-alive connections opened at once, each idle after one GET /healthz; then one signed delivery",
				v.name, thousands(strconv.Itoa(n))),
			Expected: "the signed delivery answered 200 within 2 s: at the cap kycd closes the connection idle the longest (untrusted first) for the new one, " +
				"and never runs out of file descriptors",
			Observed: fmt.Sprintf("%s of %s idle connections answered in %s; the signed delivery: %s in %s; %d idle connections left open; %s",
				thousands(strconv.FormatInt(answered.Load(), 10)), thousands(strconv.Itoa(n)), openedIn.Round(100*time.Millisecond), status, took.Round(time.Millisecond), stillOpen, metrics),
			Acked: acked, Found: found, Counted: true,
		})
		for _, c := range conns {
			c.Close()
		}
		conns = conns[:0]
		p.kill()
	}
}
