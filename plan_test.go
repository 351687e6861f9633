package kycd_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kycd/kycd"
)

var t0 = time.Date(2026, 3, 17, 16, 0, 0, 0, time.UTC)

func entry(seq int64, id, hash string, ev *kycd.Event) *kycd.LogEntry {
	ev.ID = id
	return &kycd.LogEntry{Seq: seq, EventID: id, BodyHash: hash, ReceivedAt: t0.Add(time.Duration(seq) * time.Second), Event: ev}
}

func sessionEv(session string, status kycd.Status, at time.Duration) *kycd.Event {
	types := map[kycd.Status]string{kycd.StatusRejected: "kyc_session_failed", kycd.StatusVerified: "kyc_session_verified", kycd.StatusReview: "kyc_session_manual_review"}
	return &kycd.Event{Type: types[status], Timestamp: t0.Add(at), SessionID: session, Status: status,
		Subject: kycd.SubjectRef{Type: kycd.SubjectUser, ID: "u1"}}
}

func empty() *kycd.Projection {
	return &kycd.Projection{Events: map[string]kycd.KnownEvent{}, Sessions: map[string]*kycd.SessionState{}, Levels: map[kycd.SubjectRef]*kycd.LevelState{}}
}

func outcomes(p *kycd.Plan) map[string]string {
	m := map[string]string{}
	for _, e := range p.Events {
		m[e.ID] = e.Outcome
	}
	return m
}

func TestPlanBatch(t *testing.T) {
	opt := kycd.PlanOptions{Sinks: kycd.Routes("log")}
	t.Run("duplicates and conflicts within the batch and against the store", func(t *testing.T) {
		cur := empty()
		cur.Events["e0"] = kycd.KnownEvent{Seq: 1, BodyHash: "h0"}
		p := kycd.PlanBatch([]*kycd.LogEntry{
			entry(2, "e0", "h0", sessionEv("s", kycd.StatusRejected, 0)),    // projected before: duplicate
			entry(3, "e0", "other", sessionEv("s", kycd.StatusRejected, 0)), // projected before, other body
			entry(4, "e1", "h1", sessionEv("s", kycd.StatusRejected, 0)),
			entry(5, "e1", "h1", sessionEv("s", kycd.StatusRejected, 0)), // earlier in the batch
			entry(6, "e1", "h2", sessionEv("s", kycd.StatusRejected, 0)),
		}, cur, opt)
		if len(p.Projected) != 5 || len(p.Events) != 1 || len(p.Notifications) != 1 || len(p.Sessions) != 1 {
			t.Fatalf("plan = %d projected, %d events, %d notifications, %d sessions; want 5, 1, 1, 1", len(p.Projected), len(p.Events), len(p.Notifications), len(p.Sessions))
		}
		if len(p.Conflicts) != 2 || p.Conflicts[0].OriginalSeq != 1 || p.Conflicts[1].OriginalSeq != 4 {
			t.Fatalf("conflicts = %+v, want seq 3 against 1 and seq 6 against 4", p.Conflicts)
		}
	})
	t.Run("newest wins within the batch, whatever the order", func(t *testing.T) {
		for _, order := range [][2]int64{{1, 2}, {2, 1}} {
			p := kycd.PlanBatch([]*kycd.LogEntry{
				entry(order[0], "a", "ha", sessionEv("s", kycd.StatusRejected, 0)),
				entry(order[1], "b", "hb", sessionEv("s", kycd.StatusVerified, time.Minute)),
			}, empty(), opt)
			s := p.Sessions[0]
			if s.Status != kycd.StatusVerified || s.StatusEventID != "b" || len(s.History) != 2 || s.History[0].EventID != "a" {
				t.Fatalf("order %v: session = %+v", order, s)
			}
			wantA := kycd.OutcomeApplied
			if order[0] > order[1] { // b arrived first: a is stale
				wantA = kycd.OutcomeStale
			}
			if got := outcomes(p); got["a"] != wantA || got["b"] != kycd.OutcomeApplied {
				t.Fatalf("order %v: outcomes = %v, want a %s", order, got, wantA)
			}
			if s.History[0].Applied != (wantA == kycd.OutcomeApplied) {
				t.Fatalf("order %v: history = %+v", order, s.History)
			}
		}
	})
	t.Run("a stale event against the store changes history only", func(t *testing.T) {
		cur := empty()
		cur.Sessions["s"] = &kycd.SessionState{ID: "s", Status: kycd.StatusVerified, StatusAt: t0.Add(time.Hour), StatusEventID: "z", Version: 7,
			History: []kycd.HistoryEntry{{EventID: "z", Timestamp: t0.Add(time.Hour), Applied: true}}}
		p := kycd.PlanBatch([]*kycd.LogEntry{entry(9, "a", "h", sessionEv("s", kycd.StatusRejected, 0))}, cur, opt)
		s := p.Sessions[0]
		if outcomes(p)["a"] != kycd.OutcomeStale || len(p.Notifications) != 0 || s.Status != kycd.StatusVerified || s.Version != 7 || len(s.History) != 2 || s.History[0].EventID != "a" {
			t.Fatalf("plan = %+v, session = %+v", p, s)
		}
		if len(cur.Sessions["s"].History) != 1 {
			t.Fatal("PlanBatch changed the current rows it was given")
		}
	})
	t.Run("levels, expirations and unknown types", func(t *testing.T) {
		user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: "u"}
		p := kycd.PlanBatch([]*kycd.LogEntry{
			entry(1, "l2", "h", &kycd.Event{Type: "kyc_state_updated", Timestamp: t0.Add(time.Hour), Subject: user, Level: "LIGHT"}),
			entry(2, "l1", "h", &kycd.Event{Type: "kyc_state_updated", Timestamp: t0, Subject: user, Level: "REGULAR"}),
			entry(3, "x", "h", &kycd.Event{Type: "kyc_expiration_warning", Timestamp: t0, Subject: user, Expiration: &kycd.Expiration{Date: "2027-01-01"}}),
			entry(4, "u", "h", &kycd.Event{Type: "viban_created", Timestamp: t0}),
		}, empty(), opt)
		got := outcomes(p)
		if got["l2"] != kycd.OutcomeApplied || got["l1"] != kycd.OutcomeStale || got["x"] != kycd.OutcomeApplied || got["u"] != kycd.OutcomeUnhandled {
			t.Fatalf("outcomes = %v", got)
		}
		if len(p.Levels) != 1 || p.Levels[0].Level != "LIGHT" || len(p.Subjects) != 1 || len(p.Notifications) != 2 {
			t.Fatalf("plan = levels %+v, subjects %+v, %d notifications", p.Levels, p.Subjects, len(p.Notifications))
		}
	})
	t.Run("notification ids derive from event ids; silent plans notify nothing", func(t *testing.T) {
		e := entry(1, "e", "h", sessionEv("s", kycd.StatusRejected, 0))
		a := kycd.PlanBatch([]*kycd.LogEntry{e}, empty(), opt)
		b := kycd.PlanBatch([]*kycd.LogEntry{e}, empty(), opt)
		if a.Notifications[0].Notification.ID != b.Notifications[0].Notification.ID || a.Notifications[0].Notification.ID != kycd.NotificationID("e") {
			t.Fatal("the same event planned twice got two notification ids")
		}
		if s := kycd.PlanBatch([]*kycd.LogEntry{e}, empty(), kycd.PlanOptions{Sinks: kycd.Routes("log"), Silent: true}); len(s.Notifications) != 0 || len(s.Sessions) != 1 {
			t.Fatalf("silent plan = %+v", s)
		}
	})
	t.Run("each sink takes the types of its events filter", func(t *testing.T) {
		routes := kycd.PlanOptions{Sinks: []kycd.SinkRoute{
			{Name: "crm", Events: []string{"kyc.session.rejected"}},
			{Name: "levels", Events: []string{"*.level.updated"}},
			{Name: "all"},
		}}
		user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: "u"}
		p := kycd.PlanBatch([]*kycd.LogEntry{
			entry(1, "r", "h", sessionEv("s1", kycd.StatusRejected, 0)),
			entry(2, "v", "h", sessionEv("s2", kycd.StatusVerified, 0)),
			entry(3, "l", "h", &kycd.Event{Type: "kyc_state_updated", Timestamp: t0, Subject: user, Level: "LIGHT"}),
		}, empty(), routes)
		got := map[string][]string{}
		for _, o := range p.Notifications {
			got[o.Notification.Type] = o.Sinks
		}
		want := map[string][]string{
			kycd.NotifySessionRejected: {"crm", "all"},
			kycd.NotifySessionVerified: {"all"},
			kycd.NotifyKYCLevelUpdated: {"levels", "all"},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("sinks by notification type = %v, want %v", got, want)
		}
		// A type no sink takes is not recorded at all.
		only := kycd.PlanOptions{Sinks: []kycd.SinkRoute{{Name: "crm", Events: []string{"kyc.session.rejected"}}}}
		if p := kycd.PlanBatch([]*kycd.LogEntry{entry(1, "v", "h", sessionEv("s", kycd.StatusVerified, 0))}, empty(), only); len(p.Notifications) != 0 || outcomes(p)["v"] != kycd.OutcomeApplied {
			t.Fatalf("a verification with only a rejections sink planned %d notifications (outcome %s), want none, applied", len(p.Notifications), outcomes(p)["v"])
		}
	})
	t.Run("a transition learnt from a webhook and from reconciliation applies once", func(t *testing.T) {
		for _, reconciledFirst := range []bool{false, true} {
			hook := sessionEv("s", kycd.StatusRejected, time.Minute)
			rec := sessionEv("s", kycd.StatusRejected, time.Minute)
			rec.Source = kycd.SourceReconciliation
			first, second := entry(1, "a", "h1", hook), entry(2, "b", "h2", rec)
			if reconciledFirst {
				first, second = entry(1, "b", "h2", rec), entry(2, "a", "h1", hook)
			}
			p := kycd.PlanBatch([]*kycd.LogEntry{first, second}, empty(), opt)
			if got := outcomes(p); got[first.EventID] != kycd.OutcomeApplied || got[second.EventID] != kycd.OutcomeStale || len(p.Notifications) != 1 {
				t.Fatalf("reconciled first %v: outcomes %v, %d notifications; want the first applied, the second stale, one notification", reconciledFirst, got, len(p.Notifications))
			}
			if h := p.Sessions[0].History; len(h) != 2 || (h[0].Source == kycd.SourceReconciliation) == (h[1].Source == kycd.SourceReconciliation) {
				t.Fatalf("history = %+v, want both entries, one from reconciliation", h)
			}
		}
		// Two webhooks at one time: the larger id still wins.
		p := kycd.PlanBatch([]*kycd.LogEntry{entry(1, "a", "h1", sessionEv("s", kycd.StatusRejected, 0)), entry(2, "b", "h2", sessionEv("s", kycd.StatusRejected, 0))}, empty(), opt)
		if got := outcomes(p); got["b"] != kycd.OutcomeApplied {
			t.Fatalf("outcomes %v, want b (larger id, same time) applied", got)
		}
	})
	t.Run("a session keeps its invitation's expiry until a later event sets its status", func(t *testing.T) {
		expires := t0.Add(7 * 24 * time.Hour)
		invite := &kycd.Event{Type: "related_party.kyc_session_created", Timestamp: t0, SessionID: "s", Status: kycd.StatusNotStarted,
			Subject:    kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: "rp"},
			Invitation: &kycd.Invitation{Email: "ana@example.com", ExpiresAt: expires}}
		p := kycd.PlanBatch([]*kycd.LogEntry{entry(1, "i", "h", invite)}, empty(), opt)
		if s := p.Sessions[0]; !s.ExpiresAt.Equal(expires) {
			t.Fatalf("after the invitation, expiresAt = %v, want %v", s.ExpiresAt, expires)
		}
		cur := empty()
		cur.Sessions["s"] = p.Sessions[0]
		cur.Sessions["s"].Version = 1
		// An older event is stale: the invitation's expiry stays.
		stale := kycd.PlanBatch([]*kycd.LogEntry{entry(2, "old", "h", sessionEv("s", kycd.StatusRejected, -time.Hour))}, cur, opt)
		if s := stale.Sessions[0]; s.Status != kycd.StatusNotStarted || !s.ExpiresAt.Equal(expires) {
			t.Fatalf("after a stale event, session = %s expiring %v; want NOT_STARTED expiring %v", s.Status, s.ExpiresAt, expires)
		}
		// A newer event without an invitation clears it.
		later := kycd.PlanBatch([]*kycd.LogEntry{entry(3, "v", "h", sessionEv("s", kycd.StatusVerified, time.Hour))}, cur, opt)
		if s := later.Sessions[0]; s.Status != kycd.StatusVerified || !s.ExpiresAt.IsZero() {
			t.Fatalf("after a later event, session = %s expiring %v; want VERIFIED without expiry", s.Status, s.ExpiresAt)
		}
		if !cur.Sessions["s"].ExpiresAt.Equal(expires) {
			t.Fatal("PlanBatch changed the current row it was given")
		}
	})
}
