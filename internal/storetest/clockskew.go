package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// testClockSkew: an event stamped beyond the maximum clock skew after its
// receipt holds its session only until receipt + skew; a later real event
// wins; the store keeps the flag and the ordering time, a retry of the
// skewed event stays a duplicate, and a rebuild gives the same session.
func testClockSkew(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	d := newDriver(t, s, "crm")
	d.opt.MaxClockSkew = 2 * time.Second
	sid, sub := uuid.NewString(), newUser()
	received := time.Now().UTC().Truncate(time.Microsecond)
	y2099 := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

	rejected := subjectSessionEvent(sid, sub, kycd.StatusRejected, 0, refused)
	rejected.Timestamp, rejected.ReceivedAt = y2099, received
	d.append(rejected)
	if p := d.project(100); len(p.Events) != 1 || !p.Events[0].ClockSkew {
		t.Fatalf("plan of the 2099 event = %+v, want it flagged", p.Events)
	}
	if sess := session(t, s, sid); sess.Status != kycd.StatusRejected || !sess.StatusAt.Equal(received.Add(2*time.Second)) {
		t.Fatalf("session = %+v, want REJECTED with statusAt the receipt + 2s", sess)
	}

	early := subjectSessionEvent(sid, sub, kycd.StatusVerified, 0)
	early.Timestamp, early.ReceivedAt = received.Add(time.Second), received.Add(time.Second)
	verified := subjectSessionEvent(sid, sub, kycd.StatusVerified, 0)
	verified.Timestamp, verified.ReceivedAt = received.Add(3*time.Second), received.Add(3*time.Second)
	retry := *rejected
	retry.ReceivedAt = received.Add(4 * time.Second)
	d.append(early)
	d.append(verified, &retry)
	p := d.project(100)
	if got := outcomesOf(p); got[early.ID] != kycd.OutcomeStale || got[verified.ID] != kycd.OutcomeApplied || len(p.Events) != 2 || len(p.Conflicts) != 0 {
		t.Fatalf("outcomes = %v (conflicts %v), want the early VERIFIED stale, the later applied, the retry a duplicate", got, p.Conflicts)
	}
	sess := session(t, s, sid)
	if sess.Status != kycd.StatusVerified || sess.StatusEventID != verified.ID || !sess.StatusAt.Equal(verified.Timestamp) {
		t.Fatalf("session = %+v, want VERIFIED by %s", sess, verified.ID)
	}
	if len(sess.History) != 3 {
		t.Fatalf("history = %+v, want 3 entries", sess.History)
	}
	byID := map[string]kycd.HistoryEntry{}
	for _, h := range sess.History {
		byID[h.EventID] = h
	}
	if h := byID[rejected.ID]; !h.ClockSkew || !h.OrderedAt.Equal(received.Add(2*time.Second)) || !h.Timestamp.Equal(y2099) || h.OrderedAt.Location() != time.UTC {
		t.Fatalf("the 2099 event's history entry = %+v, want flagged, ordered at the receipt + 2s, its timestamp kept", h)
	}
	if h := byID[verified.ID]; h.ClockSkew || !h.OrderedAt.IsZero() {
		t.Fatalf("the real event's history entry = %+v, want it unflagged", h)
	}
	if ids := []string{sess.History[0].EventID, sess.History[1].EventID, sess.History[2].EventID}; ids[0] != early.ID || ids[1] != rejected.ID || ids[2] != verified.ID {
		t.Fatalf("history order = %v, want by ordering time: early, 2099 (at receipt + 2s), verified", ids)
	}
	if rec, err := s.Event(ctx, rejected.ID); err != nil || !rec.Timestamp.Equal(y2099) || rec.Outcome != kycd.OutcomeApplied {
		t.Fatalf("event record = %+v, %v; want its 2099 timestamp kept, applied", rec, err)
	}

	if _, err := ingest.ResetProjection(ctx, s); err != nil {
		t.Fatal(err)
	}
	d.opt.Silent = true
	d.project(100)
	if after := session(t, s, sid); !equalJSON(after, sess) {
		t.Fatalf("session rebuilt = %+v, want %+v", after, sess)
	}
}

func outcomesOf(p *kycd.Plan) map[string]string {
	m := map[string]string{}
	for _, e := range p.Events {
		m[e.ID] = e.Outcome
	}
	return m
}
