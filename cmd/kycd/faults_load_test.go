package main

// Load as Ralio sends it, for the fault suite: new signed events, each sent
// again (the same bytes) after a 503 or a connection error until kycd
// answers 200, with every answer counted by the phase of the fault it was
// sent in.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// newFailedEvent is a new kyc_session_failed of a new session and user,
// padded with an unknown field (kept, not refused) to about size bytes.
func newFailedEvent(size int) (id string, body []byte) {
	id = uuid.NewString()
	head := fmt.Sprintf(`{"id":%q,"event":"kyc_session_failed","timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":[{"type":"document-verification","state":"Refused","reasons":[{"type":"document","code":"EXPIRED_DOCUMENT","message":"expired"}]}]},"padding":"`,
		id, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), uuid.NewString(), uuid.NewString())
	const tail = `"}`
	return id, []byte(head + strings.Repeat("x", max(size-len(head)-len(tail), 0)) + tail)
}

// Answer classes of a delivery that got no HTTP answer.
const (
	answerRefused   = "connection refused"
	answerNewConn   = "no answer on a new connection"
	answerKeptAlive = "no answer on a kept-alive connection"
)

// ralioSender delivers events to one kycd as Ralio does.
type ralioSender struct {
	url, secret string
	size        int
	client      *http.Client
	// phase is the phase of the fault a delivery is sent in; the answer is
	// counted under it.
	phase atomic.Int32

	mu       sync.Mutex
	acked    map[string]bool   // answered 200
	pending  map[string][]byte // sent and not yet answered 200
	answers  map[int32]map[string]int
	problems []string // answers that no phase allows: a 4xx, a 503 without Retry-After, …
	nAcked   atomic.Int64
}

func newRalioSender(url, secret string, size int) *ralioSender {
	return &ralioSender{
		url: url, secret: secret, size: size,
		// Ralio waits 60 s; kycd bounds its own work well inside that.
		client:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		acked:   map[string]bool{},
		pending: map[string][]byte{},
		answers: map[int32]map[string]int{},
	}
}

// deliver sends body once and reports whether kycd answered 200.
func (s *ralioSender) deliver(ctx context.Context, id string, body []byte) bool {
	phase := s.phase.Load()
	var reused bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(c httptrace.GotConnInfo) { reused = c.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/webhooks/ralio", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, s.secret))
	resp, err := s.client.Do(req)
	var class string
	var answer []byte
	switch {
	case ctx.Err() != nil:
		return false // the sender stopped; not an answer of kycd's
	case errors.Is(err, syscall.ECONNREFUSED):
		class = answerRefused
	case err != nil && reused:
		class = answerKeptAlive
	case err != nil:
		class = answerNewConn
	default:
		answer, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		class = strconv.Itoa(resp.StatusCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answers[phase] == nil {
		s.answers[phase] = map[string]int{}
	}
	s.answers[phase][class]++
	switch {
	case err != nil:
	case resp.StatusCode == http.StatusOK:
		s.acked[id] = true
		delete(s.pending, id)
		s.nAcked.Add(1)
		return true
	case resp.StatusCode == http.StatusServiceUnavailable:
		if resp.Header.Get("Retry-After") == "" {
			s.problems = append(s.problems, "503 without Retry-After: "+string(bytes.TrimSpace(answer)))
		}
	default:
		// A 4xx loses the event for good: Ralio never retries it.
		s.problems = append(s.problems, fmt.Sprintf("%d to a valid signed event: %s", resp.StatusCode, bytes.TrimSpace(answer)))
	}
	s.pending[id] = body
	return false
}

// run sends new events from workers goroutines until stop is closed,
// each event again after a 503 or a connection error (after pause) until
// it is answered 200.
func (s *ralioSender) run(workers int, pause time.Duration, stop <-chan struct{}) (wait func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				id, body := newFailedEvent(s.size)
				for !s.deliver(ctx, id, body) {
					select {
					case <-stop:
						return
					case <-time.After(pause):
					}
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	return func() {
		<-stop
		cancel()
		wg.Wait()
		s.client.CloseIdleConnections()
	}
}

// start runs s.run until the stop it returns is called, which waits for
// the senders to end; a second call does nothing, so a test may stop the
// load midway and defer stop for the paths that end early.
func (s *ralioSender) start(workers int, pause time.Duration) (stop func()) {
	ch := make(chan struct{})
	wait := s.run(workers, pause, ch)
	var once sync.Once
	return func() { once.Do(func() { close(ch); wait() }) }
}

// waitAcked waits, at most within, until n more events than before are
// acknowledged.
func (s *ralioSender) waitAcked(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	target := s.nAcked.Load() + n
	deadline := time.Now().Add(within)
	for s.nAcked.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events acknowledged after %s; answers so far: %s", s.nAcked.Load(), target, within, s.answerSummary(-1))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flush sends every pending event again, as Ralio's retries would, until
// each is answered 200; within bounds it.
func (s *ralioSender) flush(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s.mu.Lock()
		pending := make(map[string][]byte, len(s.pending))
		for id, b := range s.pending {
			pending[id] = b
		}
		s.mu.Unlock()
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still not acknowledged %s after the fault; answers: %s", len(pending), within, s.answerSummary(-1))
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for id, b := range pending {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.deliver(context.Background(), id, b)
			})
		}
		wg.Wait()
		time.Sleep(50 * time.Millisecond)
	}
}

// ackedIDs returns the ids of the events answered 200.
func (s *ralioSender) ackedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.acked))
	for id := range s.acked {
		ids = append(ids, id)
	}
	return ids
}

// answersIn returns the answers to deliveries sent in phase.
func (s *ralioSender) answersIn(phase int32) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.answers[phase] {
		out[k] = v
	}
	return out
}

// answerSummary is the answers of phase (-1: all phases) as "200 ×812, 503 ×37".
func (s *ralioSender) answerSummary(phase int32) string {
	s.mu.Lock()
	all := map[string]int{}
	for p, m := range s.answers {
		if phase < 0 || p == phase {
			for k, v := range m {
				all[k] += v
			}
		}
	}
	s.mu.Unlock()
	return countSummary(all)
}

// countSummary writes counts as "200 ×812, 503 ×37", most frequent first.
func countSummary(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// checkNoProblems fails the test for every answer no phase allows.
func (s *ralioSender) checkNoProblems(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) > 0 {
		t.Errorf("%d answers a valid signed event must never get, e.g. %q", len(s.problems), s.problems[:min(5, len(s.problems))])
	}
}

// foundEvents returns how many of ids kycd at url returns stored and
// applied, and up to ten that it does not. The load of the fault suite is
// new sessions only: each of its events must be applied.
func foundEvents(t *testing.T, url, token string, ids []string) (found int, missing []string) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ok, why := eventStored(client, url, token, id, kycd.OutcomeApplied)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				found++
			} else if len(missing) < 10 {
				missing = append(missing, id+": "+why)
			}
		})
	}
	wg.Wait()
	slices.Sort(missing)
	return found, missing
}

// eventStored reports whether GET /api/v1/events/{id} returns the event
// projected with one of outcomes.
func eventStored(client *http.Client, url, token, id string, outcomes ...string) (bool, string) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url+"/api/v1/events/"+id, nil) // bounded by client's Timeout
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	var ev eventView
	if err := json.Unmarshal(body, &ev); err != nil {
		return false, err.Error()
	}
	if !strings.EqualFold(ev.EventID, id) || !slices.Contains(outcomes, ev.Outcome) {
		return false, fmt.Sprintf("stored as %+v", ev)
	}
	return true, ""
}
