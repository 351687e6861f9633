package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycd/kycd/ralio"
)

func TestSendLoadMode(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	out := mustCLI(t, "send", "--url", s.URL+"/webhooks/ralio", "--ralio-secret", s.Secret,
		"--type", "kyc_session_verified", "--count", "40", "--concurrency", "4", "--json")
	var r loadReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	if r.Events != 40 || r.Statuses["200"] != 40 || r.PerSecond <= 0 || r.LatencyP50 <= 0 || r.LatencyMax < r.LatencyP99 || r.LatencyP99 < r.LatencyP50 {
		t.Fatalf("report = %+v, want 40 events answered 200 with ordered percentiles", r)
	}
	// Every event was new: 40 applied, none a duplicate.
	s.wantMetric(t, `kycd_events_received_total{outcome="applied",type="kyc_session_verified"} 40`)

	text := mustCLI(t, "send", "--url", s.URL+"/webhooks/ralio", "--ralio-secret", s.Secret, "--count", "5", "--rate", "100")
	if !strings.Contains(text, "sent 5 events") || !strings.Contains(text, "200: 5") || !strings.Contains(text, "p99") {
		t.Fatalf("text report = %q", text)
	}
	if _, err := cli(t, "send", "--url", s.URL+"/webhooks/ralio", "--ralio-secret", "wrong", "--count", "3"); err == nil || !strings.Contains(err.Error(), "3 of 3") {
		t.Fatalf("load with a wrong secret: err = %v, want 3 of 3 events not answered 200", err)
	}
}

// slowReceiver answers every webhook 200 after delay, counting what it got.
func slowReceiver(t *testing.T, delay time.Duration) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(delay)
		w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestSendLoadDuration(t *testing.T) {
	t.Parallel()
	s := slowReceiver(t, 20*time.Millisecond)
	out := mustCLI(t, "send", "--url", s.URL, "--ralio-secret", "s", "--duration", "200ms", "--concurrency", "2", "--json")
	var r loadReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	// Two senders at 20 ms an answer fit about 20 events in 200 ms; the
	// loop stops sending at the deadline.
	if r.Events < 2 || r.Events > 22 || r.Statuses["200"] != r.Events || r.Seconds < 0.2 || r.LatencyP50 < 20 {
		t.Fatalf("report = %+v, want 2 to 22 events answered 200 over at least 200 ms, p50 at least 20 ms", r)
	}
	if _, err := cli(t, "send", "--url", s.URL, "--ralio-secret", "s", "--duration", "-1s"); err == nil || !strings.Contains(err.Error(), "--duration") {
		t.Fatalf("--duration -1s: err = %v, want it refused", err)
	}
}

// With --rate the load is an open loop: events leave on their schedule, and
// their latency counts from when they were due, so a server slower than the
// rate shows its queue in the percentiles instead of its service time.
func TestSendLoadOpenLoop(t *testing.T) {
	t.Parallel()
	fast := slowReceiver(t, 0)
	// 20/s, so that the last event, due 50 ms before the deadline, is sent
	// in time on a loaded machine under the race detector too.
	out := mustCLI(t, "send", "--url", fast.URL, "--ralio-secret", "s", "--duration", "1s", "--rate", "20", "--concurrency", "4", "--json")
	var r loadReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	if r.Events != 20 || r.Statuses["200"] != 20 || r.Seconds < 0.95 {
		t.Fatalf("report = %+v, want the 20 events due at 20/s over 1 s, answered 200", r)
	}

	// One sender at 20 ms an answer: event i is due at 10i ms but leaves at
	// 20i ms, so its latency is 10i+20 ms. At the deadline the events still
	// waiting for the sender are reported unsent rather than prolonging the
	// run. A closed loop would report about 20 ms throughout.
	slow := slowReceiver(t, 20*time.Millisecond)
	out, err := cli(t, "send", "--url", slow.URL, "--ralio-secret", "s", "--duration", "200ms", "--rate", "100", "--concurrency", "1", "--json")
	if err == nil || !strings.Contains(err.Error(), "of 20 events were not answered 200") {
		t.Fatalf("err = %v, want some of 20 events not answered 200", err)
	}
	r = loadReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	if r.Events+r.Statuses["unsent"] != 20 || r.Statuses["200"] != r.Events || r.Statuses["unsent"] < 5 || r.LatencyMax < 70 || r.Seconds > 0.5 {
		t.Fatalf("report = %+v, want 20 events due, about half unsent at the deadline, the rest answered 200 with latencies up to ≥ 70 ms from their due times", r)
	}
}

// received is what a Ralio receiver makes of the bodies a load sent it.
type received struct {
	mu       sync.Mutex
	events   map[string]bool // by event id
	sessions map[string]bool // by data.sessionId
	lengths  map[int]int     // body lengths, counted
	problems []string
}

// ralioReceiver answers 200 to every event that Ralio could have sent: its
// signature verifies with secret and ralio.Parse takes its body. It answers
// 400 to anything else and keeps what it saw.
func ralioReceiver(t *testing.T, secret string) (*httptest.Server, *received) {
	t.Helper()
	v, err := ralio.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	got := &received{events: map[string]bool{}, sessions: map[string]bool{}, lengths: map[int]int{}}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.mu.Lock()
		defer got.mu.Unlock()
		got.lengths[len(body)]++
		if err := v.Verify(body, r.Header.Get(ralio.SignatureHeader)); err != nil {
			got.problems = append(got.problems, "signature: "+err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ev, err := ralio.Parse(body)
		if err != nil {
			got.problems = append(got.problems, "parse: "+err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if got.events[ev.ID] {
			got.problems = append(got.problems, "event id sent twice: "+ev.ID)
		}
		got.events[ev.ID] = true
		if ev.SessionID != "" {
			if got.sessions[ev.SessionID] {
				got.problems = append(got.problems, "session id sent twice: "+ev.SessionID)
			}
			got.sessions[ev.SessionID] = true
		}
		w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(s.Close)
	return s, got
}

// The load sends Ralio's sample as it is, white space and all, each event
// with its own event and session id, signed so that Ralio's verifier takes
// it. (TestSendLoadMode shows kycd applying every one of them.)
func TestSendLoadEvents(t *testing.T) {
	t.Parallel()
	sample, err := ralio.Sample(ralio.TypeSessionFailed)
	if err != nil {
		t.Fatal(err)
	}
	s, got := ralioReceiver(t, "load-secret")
	mustCLI(t, "send", "--url", s.URL, "--ralio-secret", "load-secret", "--count", "300", "--concurrency", "6")
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.problems) > 0 {
		t.Fatalf("the receiver refused events: %v", got.problems[:min(5, len(got.problems))])
	}
	if len(got.events) != 300 || len(got.sessions) != 300 {
		t.Fatalf("%d distinct event ids and %d session ids in 300 events, want 300 each", len(got.events), len(got.sessions))
	}
	if got.lengths[len(sample)] != 300 {
		t.Fatalf("body lengths %v, want all 300 of the sample's %d bytes", got.lengths, len(sample))
	}

	// A file whose ids and timestamp cannot be overwritten in place (not
	// UUID-sized, no timestamp at all) is sent as new events all the same.
	odd := filepath.Join(t.TempDir(), "odd.json")
	if err := os.WriteFile(odd, []byte(`{"eventId":"e1","event":"kyc_session_verified","data":{"sessionId":"s1","userId":"550e8400-e29b-41d4-a716-446655440001","checks":[]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, got = ralioReceiver(t, "load-secret")
	mustCLI(t, "send", "--url", s.URL, "--ralio-secret", "load-secret", "--file", odd, "--count", "20", "--concurrency", "3")
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.problems) > 0 || len(got.events) != 20 || len(got.sessions) != 20 {
		t.Fatalf("from %s: %d distinct event ids, %d session ids, problems %v; want 20 valid new events", odd, len(got.events), len(got.sessions), got.problems)
	}
}

// The bodies a load makes for every sample type: the sample's bytes but for
// a fresh event id, session id (when it has one) and timestamp.
func TestLoadEventsKeepTheSample(t *testing.T) {
	t.Parallel()
	v, _ := ralio.NewVerifier("k")
	for _, typ := range ralio.SampleTypes() {
		sample, _ := ralio.Sample(typ)
		want, err := ralio.Parse(sample)
		if err != nil {
			t.Fatalf("%s: the sample does not parse: %v", typ, err)
		}
		l, err := newLoadEvents(sample)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		w := newEventWriter(l, "k", bytes.Clone(l.body))
		now := time.Date(2026, 12, 8, 1, 2, 3, 456e6, time.UTC)
		var first []byte
		for i := range 3 {
			body, sig := w.next(now)
			if err := v.Verify(body, string(sig)); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			ev, err := ralio.Parse(body)
			if err != nil {
				t.Fatalf("%s: %v\n%s", typ, err, body)
			}
			if len(body) != len(sample) || ev.ID == want.ID || (want.SessionID != "") != (ev.SessionID != "") ||
				(want.SessionID != "" && ev.SessionID == want.SessionID) || !ev.Timestamp.Equal(now) ||
				ev.Type != want.Type || ev.Subject != want.Subject {
				t.Fatalf("%s: event %+v from the sample's %+v, want its bytes with new ids, stamped %s", typ, ev, want, now)
			}
			if i == 0 {
				first = bytes.Clone(body)
			} else if bytes.Equal(first, body) {
				t.Fatalf("%s: two events alike", typ)
			}
		}
	}
}

// BenchmarkLoadEvent compares making a load's event by re-encoding the
// sample (freshen, what the load did before, and what --new-id still does)
// with overwriting it in place.
func BenchmarkLoadEvent(b *testing.B) {
	sample, _ := ralio.Sample(ralio.TypeSessionFailed)
	b.Run("freshen", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev, _ := freshen(sample, true)
			_ = ralio.Sign(ev, "secret")
		}
	})
	b.Run("in-place", func(b *testing.B) {
		l, err := newLoadEvents(sample)
		if err != nil {
			b.Fatal(err)
		}
		w := newEventWriter(l, "secret", bytes.Clone(l.body))
		b.ReportAllocs()
		for b.Loop() {
			w.next(time.Now())
		}
	})
}

// A server that closes each connection after its answer, saying so or not,
// gets every event all the same, each once: the load opens a new connection,
// and sends again on one only an event that no answer had begun for.
func TestSendLoadClosedConnections(t *testing.T) {
	t.Parallel()
	for _, say := range []bool{true, false} {
		v, _ := ralio.NewVerifier("s")
		var mu sync.Mutex
		ids := map[string]int{}
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			ev, err := ralio.Parse(body)
			if err != nil || v.Verify(body, r.Header.Get(ralio.SignatureHeader)) != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			mu.Lock()
			ids[ev.ID]++
			mu.Unlock()
			if say {
				w.Header().Set("Connection", "close")
				w.Write([]byte(`{"received":true}`))
				return
			}
			// Answer, then close without a word, as a server does with a
			// connection it finds idle too long.
			c, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_, err = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"received\":true}")
			if err == nil {
				err = buf.Flush()
			}
			if err != nil {
				t.Error(err)
			}
			c.Close()
		}))
		t.Cleanup(s.Close)
		out := mustCLI(t, "send", "--url", s.URL, "--ralio-secret", "s", "--count", "30", "--concurrency", "3", "--json")
		var r loadReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("--json output is not a report: %v\n%s", err, out)
		}
		mu.Lock()
		if r.Statuses["200"] != 30 || len(ids) != 30 {
			t.Fatalf("Connection: close said %v: report %+v, %d distinct events received, want 30 answered 200", say, r, len(ids))
		}
		for id, n := range ids {
			if n != 1 {
				t.Fatalf("Connection: close said %v: event %s received %d times", say, id, n)
			}
		}
		mu.Unlock()
	}
}

// An interrupted load (Ctrl-C) does not wait for the answers in flight.
func TestSendLoadInterrupted(t *testing.T) {
	t.Parallel()
	s := slowReceiver(t, 4*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	var stdout, stderr syncBuffer
	began := time.Now()
	err := run(ctx, []string{"send", "--url", s.URL, "--ralio-secret", "s", "--duration", "30s", "--concurrency", "2"},
		noEnv, strings.NewReader(""), &stdout, &stderr)
	if took := time.Since(began); err == nil || took > 2*time.Second {
		t.Fatalf("interrupted after 300 ms: returned %v after %s, want an error within 2 s (answers take 4 s)", err, took)
	}
}
