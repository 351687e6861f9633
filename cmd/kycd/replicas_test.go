package main

import (
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// Two kycd replicas on one PostgreSQL database, as behind a load balancer:
// Ralio's deliveries and retries land on either, and every event has one
// effect and reaches the merchant once.
func TestTwoReplicasOnPostgreSQL(t *testing.T) {
	t.Parallel()
	db := postgrestest.URL(t)
	m := newMerchant(t, testSinkSecret)
	start := func() *kycdServer {
		s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", db, "--ralio-secret", testSecret,
			"--admin-token", testToken, "--sink", "http="+m.URL, "--sink-secret", testSinkSecret)
		s.Secret, s.Token = testSecret, testToken
		return s
	}
	a, b := start(), start()

	const n = 20
	var sessions []string
	for i := range n {
		session := uuid.NewString()
		sessions = append(sessions, session)
		ev := sessionEvent(uuid.NewString(), "kyc_session_failed", time.Now().UTC().Format(time.RFC3339Nano), session)
		first, retry := a, b
		if i%2 == 1 {
			first, retry = b, a
		}
		first.deliver(t, ev)
		// Ralio's retry after a lost answer lands on the other replica.
		wantJSON(t, retry.post(t, ev), http.StatusOK, `{"received":true,"duplicate":true}`)
	}
	eventually(t, "every notification at the merchant", func() bool { return len(m.notifications()) >= n })
	got := m.notifications()
	if len(got) != n {
		t.Fatalf("merchant received %d notifications, want %d", len(got), n)
	}
	var ids []string
	for _, n := range got {
		ids = append(ids, n["sessionId"].(string))
	}
	sort.Strings(ids)
	sort.Strings(sessions)
	for i := range ids {
		if ids[i] != sessions[i] {
			t.Fatalf("notified sessions %v, want each of %v once", ids, sessions)
		}
	}
	// Either replica reads what the other recorded.
	wantStatus(t, a.session(t, sessions[1]), "REJECTED")
	wantStatus(t, b.session(t, sessions[0]), "REJECTED")
}
