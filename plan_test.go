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

func TestOrderingTime(t *testing.T) {
	received := t0
	for _, c := range []struct {
		name       string
		timestamp  time.Time
		skew       time.Duration
		want       time.Time
		wantSkewed bool
	}{
		{"in the past", t0.Add(-time.Hour), time.Minute, t0.Add(-time.Hour), false},
		{"at receipt", t0, time.Minute, t0, false},
		{"ahead, within the skew", t0.Add(time.Minute), time.Minute, t0.Add(time.Minute), false},
		{"a microsecond beyond the skew", t0.Add(time.Minute + time.Microsecond), time.Minute, t0.Add(time.Minute), true},
		{"in 2099", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), 2 * time.Second, t0.Add(2 * time.Second), true},
		{"no skew given: the default", t0.Add(time.Hour), 0, t0.Add(kycd.DefaultMaxClockSkew), true},
	} {
		at, skewed := kycd.OrderingTime(c.timestamp, received, c.skew)
		if !at.Equal(c.want) || skewed != c.wantSkewed {
			t.Errorf("%s: OrderingTime = %s, %v; want %s, %v", c.name, at, skewed, c.want, c.wantSkewed)
		}
	}
}

func TestPlanBatchClockSkew(t *testing.T) {
	opt := kycd.PlanOptions{Sinks: kycd.Routes("log"), MaxClockSkew: 2 * time.Second}
	y2099 := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	future := func(e *kycd.LogEntry) *kycd.LogEntry { e.Event.Timestamp = y2099; return e }
	at := func(e *kycd.LogEntry, ts time.Time) *kycd.LogEntry { e.Event.Timestamp = ts; return e }

	// entry n is received at t0 + n s; the 2099 REJECTED is ordered at t0+3s.
	for _, c := range []struct {
		name   string
		later  *kycd.LogEntry
		status kycd.Status
	}{
		{"a real event stamped after the bound wins", at(entry(4, "v", "hv", sessionEv("s", kycd.StatusVerified, 0)), t0.Add(4*time.Second)), kycd.StatusVerified},
		{"a real event stamped before the bound is stale", at(entry(4, "v", "hv", sessionEv("s", kycd.StatusVerified, 0)), t0.Add(2*time.Second)), kycd.StatusRejected},
		{"a second skewed event received later wins", future(entry(9, "v", "hv", sessionEv("s", kycd.StatusVerified, 0))), kycd.StatusVerified},
	} {
		for _, batched := range []bool{true, false} {
			rejected := future(entry(1, "r", "hr", sessionEv("s", kycd.StatusRejected, 0)))
			var p *kycd.Plan
			if batched {
				p = kycd.PlanBatch([]*kycd.LogEntry{c.later, rejected}, empty(), opt)
			} else {
				first := kycd.PlanBatch([]*kycd.LogEntry{rejected}, empty(), opt)
				cur := empty()
				cur.Events["r"] = kycd.KnownEvent{Seq: 1, BodyHash: "hr"}
				cur.Sessions["s"] = first.Sessions[0]
				p = kycd.PlanBatch([]*kycd.LogEntry{c.later}, cur, opt)
			}
			s := p.Sessions[0]
			if s.Status != c.status {
				t.Errorf("%s (batched %v): status %s, want %s", c.name, batched, s.Status, c.status)
			}
			var r kycd.HistoryEntry
			for _, h := range s.History {
				if h.EventID == "r" {
					r = h
				}
			}
			if !r.ClockSkew || !r.OrderedAt.Equal(t0.Add(3*time.Second)) || !r.Timestamp.Equal(y2099) {
				t.Errorf("%s (batched %v): the 2099 REJECTED's history entry = %+v, want it flagged, ordered at t0+3s, its timestamp kept", c.name, batched, r)
			}
			if len(s.History) != 2 {
				t.Fatalf("%s: history = %+v", c.name, s.History)
			}
			if last := s.History[1]; last.EventID != s.StatusEventID {
				t.Errorf("%s (batched %v): history %+v not by ordering time: the last is not the status event %s", c.name, batched, s.History, s.StatusEventID)
			}
		}
	}

	t.Run("the skewed event's row is flagged, the others not; its retry is a duplicate", func(t *testing.T) {
		p := kycd.PlanBatch([]*kycd.LogEntry{
			future(entry(1, "r", "hr", sessionEv("s", kycd.StatusRejected, 0))),
			at(entry(5, "v", "hv", sessionEv("s", kycd.StatusVerified, 0)), t0.Add(5*time.Second)),
			future(entry(6, "r", "hr", sessionEv("s", kycd.StatusRejected, 0))),
		}, empty(), opt)
		if len(p.Events) != 2 || !p.Events[0].ClockSkew || p.Events[1].ClockSkew || len(p.Conflicts) != 0 {
			t.Fatalf("events = %+v, conflicts %+v; want r flagged, v not, the retry of r a duplicate", p.Events, p.Conflicts)
		}
		if s := p.Sessions[0]; s.Status != kycd.StatusVerified || !s.StatusAt.Equal(t0.Add(5*time.Second)) {
			t.Fatalf("session = %+v", s)
		}
	})
	t.Run("a skewed status event's statusAt is its ordering time", func(t *testing.T) {
		p := kycd.PlanBatch([]*kycd.LogEntry{future(entry(1, "r", "hr", sessionEv("s", kycd.StatusRejected, 0)))}, empty(), opt)
		if s := p.Sessions[0]; !s.StatusAt.Equal(t0.Add(3 * time.Second)) {
			t.Fatalf("statusAt = %s, want t0+3s", s.StatusAt)
		}
	})
	t.Run("the same transition from reconciliation, received later, changes nothing", func(t *testing.T) {
		rejected := future(entry(1, "r", "hr", sessionEv("s", kycd.StatusRejected, 0)))
		again := future(entry(60, "r2", "hr2", sessionEv("s", kycd.StatusRejected, 0)))
		again.Event.Source = kycd.SourceReconciliation
		p := kycd.PlanBatch([]*kycd.LogEntry{rejected, again}, empty(), opt)
		if got := outcomes(p); got["r"] != kycd.OutcomeApplied || got["r2"] != kycd.OutcomeStale || len(p.Notifications) != 1 {
			t.Fatalf("outcomes = %v, %d notifications; want the reconciled copy stale, one notification", got, len(p.Notifications))
		}
	})
	t.Run("a skewed level cannot hold a subject's level", func(t *testing.T) {
		user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: "u"}
		p := kycd.PlanBatch([]*kycd.LogEntry{
			entry(1, "l1", "h", &kycd.Event{Type: "kyc_state_updated", Timestamp: y2099, Subject: user, Level: "LIGHT"}),
			entry(5, "l2", "h", &kycd.Event{Type: "kyc_state_updated", Timestamp: t0.Add(5 * time.Second), Subject: user, Level: "REGULAR"}),
		}, empty(), opt)
		if len(p.Levels) != 1 || p.Levels[0].Level != "REGULAR" || !p.Events[0].ClockSkew {
			t.Fatalf("levels = %+v, events %+v", p.Levels, p.Events)
		}
	})
}
