package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The users a hostileRalioAPI answers each its own way (issue 15, "Why"
// 3); any other user is unknown to it (404).
const (
	hostileHuge     = "0a000000-0000-4000-8000-000000000001" // a page of 5.5 M {} items
	hostileEndless  = "0a000000-0000-4000-8000-000000000002" // a next that never ends
	hostileThrottle = "0a000000-0000-4000-8000-000000000003" // 429 with Retry-After: 300, always
	hostileRedirect = "0a000000-0000-4000-8000-000000000004" // a redirect to another host
	hostileFail     = "0a000000-0000-4000-8000-000000000005" // 502, always
)

var hostileUsers = []string{hostileHuge, hostileEndless, hostileThrottle, hostileRedirect, hostileFail}

// hostileRalioAPI is a Ralio REST API whose answers once crashed serve.
type hostileRalioAPI struct {
	*httptest.Server
	elsewhere atomic.Int32 // requests that reached the other host
}

func newHostileRalioAPI(t *testing.T) *hostileRalioAPI {
	t.Helper()
	h := &hostileRalioAPI{}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.elsewhere.Add(1)
		fmt.Fprint(w, `{"data":[],"pagination":{"page":1,"numPages":1,"total":0,"next":null}}`)
	}))
	t.Cleanup(other.Close)
	// 5.5 M {} items, 16.5 MB: within the 16 MiB read cap, which did not
	// bound what they were decoded into.
	var huge bytes.Buffer
	huge.WriteString(`{"data":[`)
	huge.WriteString(strings.Repeat("{},", 5_500_000))
	huge.WriteString(`{}],"pagination":{"page":1,"pageSize":100,"numPages":1,"total":5500001,"next":null}}`)
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/api/v1/account/users/"), "/")
		switch uid {
		case hostileHuge:
			w.Write(huge.Bytes())
		case hostileEndless:
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			fmt.Fprintf(w, `{"data":[{"id":"%s","state":"STARTED"}],"pagination":{"page":%d,"pageSize":100,"numPages":%d,"total":%d,"next":%d}}`,
				uuid.NewString(), page, page+1, 100*(page+1), page+1)
		case hostileThrottle:
			w.Header().Set("Retry-After", "300")
			w.WriteHeader(http.StatusTooManyRequests)
		case hostileRedirect:
			http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound) //nolint:gosec // G710: the test sends the client to its second host on purpose
		case hostileFail:
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// checkHostileRun checks a run's record (GET /api/v1/reconciliations or
// kycd reconcile --json) against the hostile answers: failed, one error
// per hostile user, each saying what was wrong.
func checkHostileRun(t *testing.T, run map[string]any) {
	t.Helper()
	errs, _ := run["errors"].([]any)
	if run["state"] != "failed" || len(errs) != len(hostileUsers) {
		t.Fatalf("run = %v, want failed with one error per hostile user", run)
	}
	want := map[string]string{
		hostileHuge:     `"data" holds more than 1000 items`,
		hostileEndless:  "pagination goes on",
		hostileThrottle: "would pass the run's deadline",
		hostileRedirect: "another host than --ralio-api-url's: not followed",
		hostileFail:     "status 502",
	}
	for uid, msg := range want {
		found := false
		for _, e := range errs {
			s, _ := e.(string)
			found = found || strings.Contains(s, uid) && strings.Contains(s, msg)
		}
		if !found {
			t.Errorf("errors %q: none about user %s saying %q", errs, uid, msg)
		}
	}
}

// kycd reconcile against the hostile answers: it ends within its
// deadline, failed, exits 1, shows its progress, follows no redirect to
// another host, and its peak RSS stays far below the 2.95 GB it reached.
func TestReconcileCommandAgainstHostileRalio(t *testing.T) {
	t.Parallel()
	bin := buildKycd(t)
	api := newHostileRalioAPI(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "kycd.db")
	mustCLI(t, "migrate", "--database", db)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "reconcile", "--json", "--database", db, "--ralio-api-url", api.URL, "--ralio-api-key", "k",
		"--user", strings.Join(hostileUsers, ","), "--reconcile-rate", "100", "--reconcile-timeout", "6s", "--reconcile-request-timeout", "5s")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// VmHWM is the process's own peak since it exec'd, polled until it
	// exits: ru_maxrss would also count this test's memory, which the child
	// shares until it execs (1.7 GB under -race).
	var rss int64
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
poll:
	for {
		select {
		case err = <-exited:
			break poll
		case <-time.After(5 * time.Millisecond):
			if b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); rerr == nil {
				rss = max(rss, parseHWM(b))
			}
		}
	}
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("kycd reconcile: %v, want exit status 1\nstderr:\n%s", err, &stderr)
	}
	var run map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &run); err != nil {
		t.Fatalf("stdout %q: %v", &stdout, err)
	}
	checkHostileRun(t, run)
	if !strings.Contains(stderr.String(), "reconcile: 5 users to check\n") || !strings.Contains(stderr.String(), "reconcile: 5 of 5 users checked") ||
		!strings.Contains(stderr.String(), "reconcile failed: 5 errors") {
		t.Errorf("stderr:\n%s\nwant the progress and why it failed", &stderr)
	}
	if n := api.elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests, want none", n)
	}
	if took > 12*time.Second {
		t.Errorf("kycd reconcile took %s, want it within its 6s deadline and a start", took)
	}
	t.Logf("kycd reconcile against the hostile answers: %s, peak RSS (VmHWM, polled every 5 ms) %.1f MiB", took.Round(time.Millisecond), float64(rss)/(1<<20))
	if rss == 0 {
		t.Skip("no /proc/PID/status: the peak RSS cannot be read here")
	}
	if rss > 300<<20 {
		t.Errorf("peak RSS %d bytes, want under 300 MiB", rss)
	}
	out := mustCLI(t, "reconcile", "--help")
	if !strings.Contains(out, "--reconcile-timeout") || !strings.Contains(out, "--reconcile-request-timeout") {
		t.Errorf("kycd reconcile --help lacks the deadlines:\n%s", out)
	}
}

// apiJSON GETs url with token into v and returns the status (0 when no
// answer came).
func apiJSON(url, token string, v any) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) != nil {
		return 0
	}
	return resp.StatusCode
}

// reconcileHostileScenario: serve --reconcile-every 1m against the
// hostile answers, under load from Ralio-like senders. serve stays up,
// its memory bounded, and every event it acknowledged is found.
func reconcileHostileScenario(t *testing.T, bin string, rows *scenarioRows) {
	api := newHostileRalioAPI(t)
	addr := freeAddr(t)
	p := startProcess(t, bin, addr, "--database", "sqlite:"+filepath.Join(t.TempDir(), "kycd.db"),
		"--ralio-secret", testSecret, "--admin-token", testToken,
		"--ralio-api-url", api.URL, "--ralio-api-key", "k", "--reconcile-every", "1m", "--reconcile-rate", "1000",
		"--reconcile-timeout", "45s", "--reconcile-request-timeout", "10s")
	url := "http://" + addr
	s := newRalioSender(url, testSecret, 1000)
	// kycd knows a session of each hostile user, so the run asks for them.
	for _, uid := range hostileUsers {
		id := uuid.NewString()
		body := fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_manual_review","timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":[]}}`,
			id, time.Now().UTC().Format(time.RFC3339Nano), uuid.NewString(), uid)
		if !s.deliver(context.Background(), id, body) {
			t.Fatalf("the event of hostile user %s was not acknowledged: %s", uid, s.answerSummary(-1))
		}
	}
	// The senders start with the run (the users of which are those known
	// when it starts: the hostile ones) and deliver while it goes on.
	var run map[string]any
	var stop chan struct{}
	wait := func() {}
	deadline := time.Now().Add(150 * time.Second)
	for run == nil || run["state"] == "running" {
		if time.Now().After(deadline) {
			if stop != nil {
				close(stop)
				wait()
			}
			t.Fatalf("no reconciliation finished within 150s: %v\nstderr:\n%s", run, p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
		var list struct{ Reconciliations []map[string]any }
		if code := apiJSON(url+"/api/v1/reconciliations", testToken, &list); code == http.StatusOK && len(list.Reconciliations) > 0 {
			run = list.Reconciliations[0]
		}
		if run != nil && stop == nil {
			stop = make(chan struct{})
			wait = s.run(4, 20*time.Millisecond, stop)
		}
	}
	ready := readyz(addr)
	peak := vmHWM(t, p.cmd.Process.Pid)
	close(stop)
	wait()
	if s.nAcked.Load() < int64(len(hostileUsers))+10 {
		t.Errorf("only %d events acknowledged in all, want the senders to have delivered during the run", s.nAcked.Load())
	}
	checkHostileRun(t, run)
	if ready != http.StatusOK {
		t.Errorf("/readyz answered %d after the run, want 200", ready)
	}
	if peak > 300<<20 {
		t.Errorf("serve's peak RSS (VmHWM) %d bytes, want under 300 MiB", peak)
	}
	if n := api.elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests, want none", n)
	}
	s.flush(t, 30*time.Second)
	s.checkNoProblems(t)
	acked := s.ackedIDs()
	found, missing := foundEvents(t, url, testToken, acked)
	if len(missing) > 0 {
		t.Errorf("acknowledged events not found: %v", missing)
	}
	started, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(run["startedAt"]))
	finished, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(run["finishedAt"]))
	rows.add(t, faultRow{
		Fault: "Ralio's REST API answering `serve --reconcile-every 1m` with what once crashed it, one user each: a page of 5.5 M `{}` items (16.5 MB), " +
			"a `next` that never ends, 429 with `Retry-After: 300`, a redirect to another host, 502 to every request; 4 senders delivering during the run",
		Expected: "serve stays up and ready, peak RSS under 300 MiB; the run ends `failed` within `--reconcile-timeout` (45 s) with one error per user " +
			"(items capped at 1,000, pagination stopped past the announced pages, a wait past the deadline not waited, the redirect not followed, " +
			"502 after its retries); no request reaches the other host; every event answered 200 found",
		Observed: fmt.Sprintf("run `%v` after %.1f s with %d errors; /readyz %d; peak RSS (VmHWM) %.0f MiB; %d requests to the other host; answers: %s",
			run["state"], finished.Sub(started).Seconds(), len(run["errors"].([]any)), ready, float64(peak)/(1<<20), api.elsewhere.Load(), countSummary(s.answersIn(0))),
		Acked: len(acked), Found: found, Counted: true,
	})
}
