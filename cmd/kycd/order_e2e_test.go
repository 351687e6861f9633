package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/testenv"
)

// orderedMerchant answers 503 to the first notification of each session
// of flaky, three times, then 200, and notes the types of every session's
// notifications in the order they were accepted.
type orderedMerchant struct {
	*httptest.Server
	mu       sync.Mutex
	flaky    map[string]int      // session → 503s left for its first notification
	accepted map[string][]string // session → types accepted, in order
}

func newOrderedMerchant(t *testing.T) *orderedMerchant {
	m := &orderedMerchant{flaky: map[string]int{}, accepted: map[string][]string{}}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n struct{ Type, SessionID string }
		body, _ := io.ReadAll(r.Body)
		// Slow, so that the kill finds deliveries in flight: sent, and not
		// yet recorded.
		time.Sleep(50 * time.Millisecond)
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if n.Type == "kyc.session.rejected" && m.flaky[n.SessionID] > 0 {
			m.flaky[n.SessionID]--
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		m.accepted[n.SessionID] = append(m.accepted[n.SessionID], n.Type)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(m.Close)
	return m
}

// Two replicas on PostgreSQL, one killed -9 halfway, a merchant that fails
// the first notification of half the sessions a few times: each session's
// notifications reach the merchant in the order kycd applied them (a
// repeat after the kill allowed, never an older one after a newer one).
func TestOrderAcrossReplicasKill9(t *testing.T) {
	testenv.Long(t) // the killed replica's leases take 40 s to run out
	t.Parallel()
	db := postgrestest.URL(t)
	bin := buildKycd(t)
	m := newOrderedMerchant(t)
	args := []string{"--database", db, "--ralio-secret", testSecret, "--admin-token", testToken,
		"--sink", "http=" + m.URL, "--sink-secret", testSinkSecret, "--retry-base", "50ms", "--retry-cap", "200ms", "--shutdown-drain", "0s"}
	a := startProcess(t, bin, freeAddr(t), args...)
	b := startProcess(t, bin, freeAddr(t), args...)

	const sessions = 16
	types := []string{"kyc_session_failed", "kyc_session_manual_review", "kyc_session_verified"}
	rank := map[string]int{"kyc.session.rejected": 0, "kyc.session.review": 1, "kyc.session.verified": 2}
	var ids []string
	m.mu.Lock()
	for i := range sessions {
		ids = append(ids, uuid.NewString())
		if i%2 == 0 {
			m.flaky[ids[i]] = 3
		}
	}
	m.mu.Unlock()
	client := &http.Client{Timeout: 10 * time.Second}
	at := time.Now().UTC()
	for i, session := range ids {
		if i == sessions/2 {
			a.kill() // with deliveries leased, some sent and not recorded
		}
		for j, typ := range types {
			to := b
			if i < sessions/2 && j%2 == 0 {
				to = a
			}
			body := sessionEvent(uuid.NewString(), typ, at.Add(time.Duration(i*10+j)*time.Second).Format(time.RFC3339Nano), session)
			resp, err := client.Do(webhookRequest("http://"+to.addr, testSecret, body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("event %d of session %d answered %d", j, i, resp.StatusCode)
			}
		}
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		m.mu.Lock()
		done := 0
		for _, s := range ids {
			kinds := map[string]bool{}
			for _, typ := range m.accepted[s] {
				kinds[typ] = true
			}
			if len(kinds) == 3 {
				done++
			}
		}
		m.mu.Unlock()
		if done == sessions {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions' three notifications reached the merchant\nreplica b:\n%s", done, sessions, b.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	repeats := 0
	for i, s := range ids {
		got := m.accepted[s]
		seen := map[string]bool{}
		for k, typ := range got {
			if k > 0 && rank[typ] < rank[got[k-1]] {
				t.Errorf("session %d: the merchant got %v: %s after %s, older after newer", i, got, typ, got[k-1])
			}
			if seen[typ] {
				repeats++
			}
			seen[typ] = true
		}
		if len(seen) != 3 {
			t.Errorf("session %d: the merchant got %v, want all three", i, got)
		}
	}
	t.Logf("%d sessions in order at the merchant, %d repeats after the kill", sessions, repeats)
}
