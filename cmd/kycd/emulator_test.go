package main

// kycd against `kycd emulator`: both started through run, Ralio's
// behaviour (retries, duplicates, reordering, every envelope generation)
// switched on, and kycd's state checked against the emulator's.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
)

const emulatorKey = "e2e-emulator-key"

// ralioEmulator is a running `kycd emulator`.
type ralioEmulator struct {
	URL    string
	Stdout *syncBuffer
	Stderr *syncBuffer

	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

var emulatorListening = regexp.MustCompile(`kycd emulator listening on http://(\S+) `)

// startEmulator runs `kycd emulator FLAGS…` until the test ends and returns
// once it listens. The test fails unless run returns nil when its context
// is cancelled.
func startEmulator(t *testing.T, getenv func(string) string, flags ...string) *ralioEmulator {
	t.Helper()
	if getenv == nil {
		getenv = noEnv
	}
	ctx, cancel := context.WithCancel(context.Background())
	em := &ralioEmulator{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, cancel: cancel, done: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	go func() {
		defer close(em.done)
		em.err = run(ctx, append([]string{"emulator"}, flags...), getenv, strings.NewReader(""), em.Stdout, em.Stderr)
	}()
	t.Cleanup(func() {
		em.client.CloseIdleConnections()
		em.cancel()
		select {
		case <-em.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("kycd emulator still running 20s after its context was cancelled")
		}
		if em.err != nil {
			t.Errorf("kycd emulator returned %q after its context was cancelled; want nil\nstderr:\n%s", em.err, em.Stderr)
		}
	})
	eventually(t, "kycd emulator to print its listening line", func() bool {
		select {
		case <-em.done:
			t.Fatalf("kycd emulator returned before listening: %v\nstdout:\n%s\nstderr:\n%s", em.err, em.Stdout, em.Stderr)
		default:
		}
		m := emulatorListening.FindStringSubmatch(em.Stdout.String())
		if m != nil {
			em.URL = "http://" + m[1]
		}
		return m != nil
	})
	return em
}

// call makes a request to the emulator (with the API key under /api/) and
// decodes a 2xx answer into v.
func (em *ralioEmulator) call(t *testing.T, method, path string, body any, v any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, em.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(path, "/api/") {
		req.Header.Set("Authorization", "Bearer "+emulatorKey)
	}
	resp, err := em.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, out)
		}
	}
}

type emulatorDelivery struct {
	EventID    string `json:"eventId"`
	Type       string `json:"type"`
	Generation string `json:"generation"`
	State      string `json:"state"`
	Attempts   []struct {
		Status    int    `json:"status"`
		Error     string `json:"error"`
		Answer    string `json:"answer"`
		Duplicate bool   `json:"duplicate"`
	} `json:"attempts"`
}

// settled waits until the emulator has nothing left to send and returns
// every delivery.
func (em *ralioEmulator) settled(t *testing.T, within time.Duration) []emulatorDelivery {
	t.Helper()
	var list struct {
		Deliveries []emulatorDelivery `json:"deliveries"`
		Idle       bool               `json:"idle"`
	}
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		em.call(t, http.MethodGet, "/emulator/v1/deliveries", nil, &list)
		if list.Idle {
			return list.Deliveries
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator still has webhooks to send after %s", within)
		}
	}
}

func TestEmulatorFlags(t *testing.T) {
	t.Parallel()
	required := []string{"--webhook-url", "http://127.0.0.1:1/webhooks/ralio", "--ralio-secret", "s", "--api-key", "k"}
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		args   []string
		getenv func(string) string
		says   []string
	}{
		{[]string{"--ralio-secret", "s", "--api-key", "k"}, nil, []string{"--webhook-url is required"}},
		{[]string{"--webhook-url", "http://x/", "--api-key", "k"}, nil, []string{"--ralio-secret is required"}},
		{[]string{"--webhook-url", "http://x/", "--ralio-secret", "s"}, nil, []string{"--api-key is required"}},
		{[]string{"--webhook-url", "ftp://x/", "--ralio-secret", "s", "--api-key", "k"}, nil, []string{"--webhook-url", "http(s)://"}},
		{append(slices.Clone(required), "--duplicates", "1.5"), nil, []string{"--duplicates 1.5", "0 to 1"}},
		{append(slices.Clone(required), "--reorder", "-1s"), nil, []string{"--reorder"}},
		{append(slices.Clone(required), "--generation", "D"), nil, []string{"--generation", "A, B, C or mixed"}},
		{append(slices.Clone(required), "--retry-max-attempts", "0"), nil, []string{"--retry-max-attempts 0"}},
		{append(slices.Clone(required), "--retry-base", "0s"), nil, []string{"--retry-base"}},
		{append(slices.Clone(required), "--addr", "nowhere"), nil, []string{"--addr", "HOST:PORT"}},
		{required, env("KYCD_EMULATOR_DUPLICATES", "often"), []string{"KYCD_EMULATOR_DUPLICATES", "--duplicates"}},
		{required, env("KYCD_EMULATOR_GENERATION", "Z"), []string{"--generation"}},
		{[]string{"--ralio-secret", "s", "--api-key", "k"}, env("KYCD_EMULATOR_WEBHOOK_URL", "nope"), []string{"--webhook-url \"nope\""}},
		{required, env("KYCD_LOG_FORMAT", "xml"), []string{"--log-format"}},
		{required, env("KYCD_LOG_LEVEL", "loud"), []string{"--log-level \"loud\"", "debug, info, warn or error"}},
		{append(slices.Clone(required), "--log-level", "trace"), nil, []string{"--log-level \"trace\""}},
	} {
		getenv := c.getenv
		if getenv == nil {
			getenv = noEnv
		}
		var stdout, stderr syncBuffer
		err := run(t.Context(), append([]string{"emulator"}, c.args...), getenv, strings.NewReader(""), &stdout, &stderr)
		if err == nil {
			t.Errorf("kycd emulator %v: no error, want one saying %q", c.args, c.says)
			continue
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("kycd emulator %v: %q, want it to say %q", c.args, err, s)
			}
		}
	}
}

// The emulator reads its own environment twins, and serve's (KYCD_ADDR,
// KYCD_RALIO_SECRETS) do not reach its flags of the same names.
func TestEmulatorEnvironment(t *testing.T) {
	t.Parallel()
	type webhook struct {
		body []byte
		sig  string
	}
	recv := make(chan webhook, 1)
	merchant := serveFunc(t, func(_ http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case recv <- webhook{body, r.Header.Get(ralio.SignatureHeader)}:
		default:
		}
	})
	em := startEmulator(t, func(k string) string {
		return map[string]string{
			"KYCD_ADDR":                  "not an address",
			"KYCD_RALIO_SECRETS":         "serve-secret",
			"KYCD_EMULATOR_ADDR":         "127.0.0.1:0",
			"KYCD_EMULATOR_WEBHOOK_URL":  merchant + "/webhooks/ralio",
			"KYCD_EMULATOR_RALIO_SECRET": "emulator-secret",
			"KYCD_EMULATOR_API_KEY":      emulatorKey,
			"KYCD_EMULATOR_GENERATION":   "b",
			"KYCD_EMULATOR_SEED":         "42",
		}[k]
	})
	if out := em.Stdout.String(); !strings.Contains(out, "generation B") || !strings.Contains(out, "seed 42") {
		t.Errorf("stdout = %q, want generation B and seed 42 from the environment", out)
	}
	var a struct{ EventID string }
	em.call(t, http.MethodPost, "/emulator/v1/sessions/"+uuid.NewString()+"/outcome", map[string]any{"event": "kyc_session_verified", "userId": uuid.NewString()}, &a)
	select {
	case wh := <-recv:
		if wh.sig != ralio.Sign(wh.body, "emulator-secret") {
			t.Errorf("webhook signed %q, want the signature with KYCD_EMULATOR_RALIO_SECRET", wh.sig)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no webhook reached the merchant")
	}
}

// serveFunc serves h on loopback until the test ends and returns its URL.
func serveFunc(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// truthSession is a session as the emulator's REST API tells it.
type truthSession struct {
	ID      string
	Subject subjectRef
	State   string
	Fails   []failure
}

// TestEmulatorDrivesKycd drives a few hundred outcomes, KYC and KYB level
// changes, invitations and warnings through the emulator with duplicates,
// reordering and mixed generations on, and checks that kycd ends with the
// emulator's truth: every session's status, subject and failures, every
// level.
//
// Not parallel: it keeps both CPUs busy for seconds, and runs before the
// parallel tests start rather than against their time limits.
func TestEmulatorDrivesKycd(t *testing.T) {
	kycd := startServer(t)
	em := startEmulator(t, nil, "--addr", "127.0.0.1:0", "--webhook-url", kycd.URL+"/webhooks/ralio",
		"--ralio-secret", kycd.Secret, "--api-key", emulatorKey,
		"--duplicates", "0.3", "--reorder", "300ms", "--generation", "mixed", "--seed", "20261126",
		"--retry-base", "50ms", "--retry-max-attempts", "30")

	// 30 users with a session each (10 with a second), and 2 businesses
	// inviting 5 related parties each.
	var users, parties, businesses []string
	var sessions []string
	for i := range 30 {
		uid := uuid.NewString()
		users = append(users, uid)
		for range 1 + i%3/2 {
			var s struct{ ID string }
			em.call(t, http.MethodPost, "/api/v1/account/users/"+uid+"/identity-verifications", nil, &s)
			sessions = append(sessions, s.ID)
		}
	}
	for range 2 {
		b := uuid.NewString()
		businesses = append(businesses, b)
		for range 5 {
			var inv struct{ RelatedPartyID, SessionID string }
			em.call(t, http.MethodPost, "/emulator/v1/business-users/"+b+"/related-parties", map[string]any{}, &inv)
			parties = append(parties, inv.RelatedPartyID)
			sessions = append(sessions, inv.SessionID)
		}
	}

	// The outcomes, from 6 drivers at once; levels with them.
	events := []string{"kyc_session_failed", "kyc_session_verified", "kyc_session_manual_review", "kyc_session_expired"}
	codes := []struct{ check, typ, code, message string }{
		{"document-verification", "document", "EXPIRED_DOCUMENT", "The provided document has expired"},
		{"face-matching", "face-match", "NO_MATCH", "Face does not match the document photo"},
		{"document-verification", "document", "KYC.DOC.DETERIORATED", "The document is damaged and cannot be read"},
		{"liveness", "liveness", "LOW_CONFIDENCE", "Liveness could not be confirmed"},
	}
	type level struct{ at, level string }
	var mu sync.Mutex
	levels := map[string]level{} // subject id → newest level
	var wg sync.WaitGroup
	for d := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(d), 7)) //nolint:gosec // G115: d counts 0 to 5
			for i := range 50 {
				sid := sessions[rng.IntN(len(sessions))]
				ev := events[rng.IntN(len(events))]
				body := map[string]any{"event": ev}
				if ev == "kyc_session_failed" {
					var checks []any
					for _, c := range codes[:1+rng.IntN(len(codes))] {
						checks = append(checks, map[string]any{"type": c.check, "state": "Refused", "reasons": []any{
							map[string]any{"type": c.typ, "code": c.code, "message": c.message, "category": "DOC"},
						}})
					}
					body["checks"] = checks
				}
				em.call(t, http.MethodPost, "/emulator/v1/sessions/"+sid+"/outcome", body, nil)
				if i%5 == 0 {
					path, subject := "/emulator/v1/users/", users[rng.IntN(len(users))]
					if rng.IntN(3) == 0 {
						path, subject = "/emulator/v1/related-parties/", parties[rng.IntN(len(parties))]
					}
					lv := []string{"REGULAR", "LIGHT"}[rng.IntN(2)]
					var a struct{ Timestamp string }
					em.call(t, http.MethodPost, path+subject+"/kyc-level", map[string]any{"level": lv}, &a)
					if i%10 == 0 {
						em.call(t, http.MethodPost, path+subject+"/expiration-warning", nil, nil)
					}
					mu.Lock()
					if a.Timestamp > levels[subject].at {
						levels[subject] = level{a.Timestamp, lv}
					}
					mu.Unlock()
				}
				if i%10 == 5 {
					b := businesses[rng.IntN(len(businesses))]
					lv := []string{"REGULAR", "LIGHT"}[rng.IntN(2)]
					var a struct{ Timestamp string }
					em.call(t, http.MethodPost, "/emulator/v1/business-users/"+b+"/kyb-level", map[string]any{"level": lv}, &a)
					mu.Lock()
					if a.Timestamp > levels[b].at {
						levels[b] = level{a.Timestamp, lv}
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	deliveries := em.settled(t, 60*time.Second)
	generations := map[string]int{}
	duplicatesAnswered := 0
	for _, d := range deliveries {
		generations[d.Generation]++
		if d.State != "delivered" {
			t.Errorf("webhook %s (%s, generation %s) ended %s: %+v", d.EventID, d.Type, d.Generation, d.State, d.Attempts)
		}
		for _, a := range d.Attempts {
			if a.Duplicate && strings.Contains(a.Answer, `"duplicate":true`) {
				duplicatesAnswered++
			}
		}
	}
	if len(deliveries) < 300+10+60+30 {
		t.Errorf("%d webhooks, want at least 400", len(deliveries))
	}
	if generations["A"] == 0 || generations["B"] == 0 || generations["C"] == 0 {
		t.Errorf("generations sent: %v, want A, B and C", generations)
	}
	if duplicatesAnswered == 0 {
		t.Errorf("no duplicate was sent and recognised by kycd")
	}

	// The truth, read through the emulator's REST API as a reconciler would.
	var truth []truthSession
	readSubject := func(typ, id string) {
		for p := 1; ; p++ {
			var page struct {
				Data []struct {
					ID    string `json:"id"`
					State string `json:"state"`
				} `json:"data"`
				Pagination struct {
					Next *int `json:"next"`
				} `json:"pagination"`
			}
			em.call(t, http.MethodGet, fmt.Sprintf("/api/v1/account/users/%s/identity-verifications?page=%d&pageSize=1", id, p), nil, &page)
			for _, s := range page.Data {
				var checks struct {
					Checks []struct {
						Type           string `json:"type"`
						RefusedReasons []struct {
							Code    string `json:"code"`
							Message string `json:"message"`
						} `json:"refused_reasons"`
					} `json:"checks"`
				}
				em.call(t, http.MethodGet, "/api/v1/account/users/"+id+"/identity-verifications/"+s.ID+"/checks", nil, &checks)
				ts := truthSession{ID: s.ID, Subject: subjectRef{typ, id}, State: s.State}
				for _, c := range checks.Checks {
					for _, r := range c.RefusedReasons {
						ts.Fails = append(ts.Fails, failure{c.Type, r.Code, r.Message})
					}
				}
				truth = append(truth, ts)
			}
			if page.Pagination.Next == nil {
				return
			}
		}
	}
	for _, u := range users {
		readSubject("user", u)
	}
	for _, p := range parties {
		readSubject("related-party", p)
	}
	if len(truth) != len(sessions) {
		t.Fatalf("the REST API lists %d sessions, want %d", len(truth), len(sessions))
	}

	stale := 0
	for _, want := range truth {
		a := kycd.api(t, http.MethodGet, "/api/v1/sessions/"+want.ID)
		if want.State == "NOT_STARTED" && want.Subject.Type == "user" {
			if a.status != http.StatusNotFound {
				t.Errorf("session %s never had an outcome, yet kycd answers %s", want.ID, a)
			}
			continue
		}
		got := kycd.session(t, want.ID)
		if got.Status != want.State || got.Subject != want.Subject || !slices.Equal(got.Failures, want.Fails) {
			t.Errorf("session %s in kycd: %s of %+v with failures %+v\nin the emulator: %s of %+v with failures %+v\nkycd history: %+v",
				want.ID, got.Status, got.Subject, got.Failures, want.State, want.Subject, want.Fails, got.History)
		}
		for _, h := range got.History {
			if !h.Applied {
				stale++
			}
		}
	}
	if stale == 0 {
		t.Errorf("no event reached kycd out of order: --reorder had no effect")
	}
	for id, want := range levels {
		typ := "user"
		switch {
		case slices.Contains(parties, id):
			typ = "related-party"
		case slices.Contains(businesses, id):
			typ = "business"
		}
		var got subjectView
		kycd.getJSON(t, "/api/v1/subjects/"+id+"?type="+typ, &got)
		if got.Level != want.level {
			t.Errorf("%s %s has level %q in kycd, want %q (set at %s)", typ, id, got.Level, want.level, want.at)
		}
	}
	t.Logf("%d sessions, %d webhooks (generations %v), %d duplicates recognised, %d stale arrivals",
		len(truth), len(deliveries), generations, duplicatesAnswered, stale)
}
