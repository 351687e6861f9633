package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/sqlite"
)

// kycd rebuild re-derives every session from the event log, the same as
// before, and sends nothing again.
func TestRebuildReproducesTheProjection(t *testing.T) {
	t.Parallel()
	m := newMerchant(t, testSinkSecret)
	sink := []string{"--sink", "http=" + m.URL, "--sink-secret", testSinkSecret}
	s := startServer(t, sink...)
	for _, name := range []string{"a-kyc_session_failed.json", "c-kyc_session_manual_review.json", "c-related_party.kyc_session_created.json"} {
		s.deliver(t, example(t, name))
	}
	before := s.session(t, failedSession)
	eventually(t, "three notifications", func() bool { return len(m.notifications()) == 3 })
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	out := mustCLI(t, "rebuild", "--database", "sqlite:"+s.DB)
	if !strings.Contains(out, "from 3 events") {
		t.Fatalf("kycd rebuild printed %q, want it to name the 3 events", out)
	}
	again := serve(t, nil, append([]string{"--addr", "127.0.0.1:0", "--database", "sqlite:" + s.DB,
		"--ralio-secret", s.Secret, "--admin-token", s.Token}, sink...)...)
	again.Token, again.Secret = s.Token, s.Secret
	after := again.session(t, failedSession)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("session after rebuild = %+v, want %+v", after, before)
	}
	// A marker shows the dispatcher ran: nothing older was sent again.
	// (The restart's watchdog finds the samples' old review and invitation
	// stalled and says so; those are new notifications, left aside here.)
	const marker = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
	again.deliver(t, sessionEvent(marker, "kyc_session_verified", "2027-01-01T00:00:00.000Z", failedSession))
	sources := func() []any {
		var out []any
		for _, n := range m.notifications() {
			if n["type"] != "kyc.session.stalled" {
				out = append(out, n["sourceEventId"])
			}
		}
		return out
	}
	eventually(t, "the marker's notification", func() bool { return len(sources()) >= 4 })
	if got := sources(); len(got) != 4 || got[3] != marker {
		t.Fatalf("notifications from events %v, want the three first ones once, then the marker", got)
	}
	// The marker continues the session's versions where the rebuild kept
	// them.
	for _, n := range m.notifications() {
		if n["sourceEventId"] == marker && (n["sessionVersion"] != float64(after.SessionVersion+1) || n["previousStatus"] != "REJECTED" || after.SessionVersion != 1) {
			t.Errorf("the marker's notification = %v, want sessionVersion %d after REJECTED (the rebuilt session's version is %d, want 1)", n, after.SessionVersion+1, after.SessionVersion)
		}
	}
}

// kycd rebuild refuses to run while a kycd serve uses the same database,
// on either store, and a serve refuses to start while a rebuild runs.
func TestRebuildRefusedWhileServing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		database func(t *testing.T) string
		open     func(t *testing.T, database string) (kycd.Store, error)
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "kycd.db") },
			func(t *testing.T, database string) (kycd.Store, error) {
				return sqlite.OpenExisting(t.Context(), strings.TrimPrefix(database, "sqlite:"))
			}},
		{"postgres", func(t *testing.T) string { return postgrestest.URL(t) },
			func(t *testing.T, database string) (kycd.Store, error) { return postgres.Open(t.Context(), database) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			database := tc.database(t)
			s := serve(t, nil, "--addr", "127.0.0.1:0", "--database", database, "--ralio-secret", testSecret, "--admin-token", testToken)
			s.Secret, s.Token = testSecret, testToken
			s.deliver(t, example(t, "a-kyc_session_failed.json"))
			before := s.session(t, failedSession)

			msg := wantCLIError(t, "rebuild", "--database", database)
			if !strings.Contains(msg, "stop every kycd serve") {
				t.Errorf("kycd rebuild while serve runs: %s, want it to say serve must be stopped", msg)
			}
			if after := s.session(t, failedSession); !reflect.DeepEqual(before, after) {
				t.Errorf("the refused rebuild changed the session: %+v, was %+v", after, before)
			}
			if err := s.stop(t); err != nil {
				t.Fatal(err)
			}
			if out := mustCLI(t, "rebuild", "--database", database); !strings.Contains(out, "from 1 events") {
				t.Errorf("kycd rebuild once serve stopped printed %q", out)
			}

			// A rebuild in progress, as the lock it holds, keeps serve from starting.
			st, err := tc.open(t, database)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			release, err := st.(kycd.Serving).ExcludeServing(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = release() }()
			_, err = cli(t, "serve", "--addr", "127.0.0.1:0", "--database", database, "--ralio-secret", testSecret, "--admin-token", testToken)
			if err == nil || !strings.Contains(err.Error(), "kycd rebuild is rewriting") {
				t.Errorf("kycd serve during a rebuild = %v, want a refusal naming the rebuild", err)
			}
		})
	}
}
