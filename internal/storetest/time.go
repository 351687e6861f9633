package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// Tests of event time: kycd keeps Ralio's times to the microsecond
// (kycd.EventTimePrecision), so newest-wins picks the same event on every
// store, whether the planner compares two events of one batch in memory or
// an event with the row a store kept.

// timedBody is a Ralio body of a session event at the RFC 3339 time ts.
func timedBody(eventID, typ, sessionID, userID, ts string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"event":%q,"timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":[]}}`,
		eventID, typ, ts, sessionID, userID)
}

func testSubMicrosecondOrder(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := pipeline(t, s)
	const small, large = "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-8fff-fffffffffffe"
	for _, tc := range []struct {
		name         string
		first, other string // the timestamps of the events with the small and the large id
		winner       string // the id that wins
		at           string // the winner's time as kept
	}{
		// Nanoseconds say small is newer; at microseconds they are equal,
		// and the larger id wins.
		{"equal at µs, later ns", "2026-03-17T16:00:00.123456900Z", "2026-03-17T16:00:00.123456100Z", large, "2026-03-17T16:00:00.123456Z"},
		{"equal", "2026-03-17T16:00:00.123456789Z", "2026-03-17T16:00:00.123456789Z", large, "2026-03-17T16:00:00.123456Z"},
		// Two nanoseconds apart across a microsecond: the later wins.
		{"next µs", "2026-03-17T16:00:00.123457001Z", "2026-03-17T16:00:00.123456999Z", small, "2026-03-17T16:00:00.123457Z"},
	} {
		for _, arrival := range []string{"one batch, small first", "one batch, large first", "small, then large", "large, then small"} {
			sid, user := uuid.NewString(), uuid.NewString()
			// Fresh ids per session, with the order of small and large.
			a, b := small[:24]+sid[24:], large[:24]+sid[24:]
			bodies := map[string][]byte{
				small: timedBody(a, "kyc_session_failed", sid, user, tc.first),
				large: timedBody(b, "kyc_session_verified", sid, user, tc.other),
			}
			switch arrival {
			case "one batch, small first":
				appendRaw(t, s, bodies[small], bodies[large])
				drain(t, in)
			case "one batch, large first":
				appendRaw(t, s, bodies[large], bodies[small])
				drain(t, in)
			case "small, then large":
				receive(t, in, bodies[small], bodies[large])
			case "large, then small":
				receive(t, in, bodies[large], bodies[small])
			}
			want, status := a, kycd.StatusRejected
			if tc.winner == large {
				want, status = b, kycd.StatusVerified
			}
			sess := session(t, s, sid)
			at, _ := time.Parse(time.RFC3339Nano, tc.at)
			if sess.StatusEventID != want || sess.Status != status || !sess.StatusAt.Equal(at) {
				t.Errorf("%s, %s: session = %s at %s from %s; want %s at %s from %s", tc.name, arrival,
					sess.Status, sess.StatusAt.Format(time.RFC3339Nano), sess.StatusEventID, status, tc.at, want)
			}
			for _, h := range sess.History {
				if h.Timestamp.Nanosecond()%1000 != 0 || h.EventID == want && !h.Applied {
					t.Errorf("%s, %s: history entry %+v, want its time in microseconds, the winner's applied", tc.name, arrival, h)
				}
			}
			if rec, err := s.Event(ctx, want); err != nil || !rec.Timestamp.Equal(at) {
				t.Errorf("%s, %s: Event = %+v, %v; want its time at %s", tc.name, arrival, rec, err, tc.at)
			}
		}
	}
}

// receive hands bodies to the write path one at a time, as webhooks, each
// projected before the next.
func receive(t *testing.T, in *ingest.Ingester, bodies ...[]byte) {
	t.Helper()
	for _, b := range bodies {
		if _, err := in.Receive(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		drain(t, in)
	}
}

// testRebuildKeepsTimes: a session's history, written from the events in
// memory as they arrive, reads the same after a rebuild derives it from
// the log: both keep times to the microsecond.
func testRebuildKeepsTimes(t *testing.T, s kycd.Store) {
	in := pipeline(t, s)
	sid, user := uuid.NewString(), uuid.NewString()
	receive(t, in,
		timedBody(uuid.NewString(), "kyc_session_failed", sid, user, "2026-03-17T16:00:00.123456789Z"),
		timedBody(uuid.NewString(), "kyc_session_verified", sid, user, "2026-03-17T16:00:01.000000001Z"))
	before := session(t, s, sid)
	if _, err := in.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := session(t, s, sid)
	if !equalJSON(after, before) {
		t.Fatalf("session after a rebuild = %+v, want %+v", after, before)
	}
	utcMicro := func(ts time.Time) bool { return ts.Location() == time.UTC && ts.Nanosecond()%1000 == 0 }
	if !utcMicro(after.StatusAt) {
		t.Fatalf("status time %s, want UTC to the microsecond", after.StatusAt)
	}
	for _, h := range after.History {
		if !utcMicro(h.Timestamp) || !utcMicro(h.ReceivedAt) {
			t.Fatalf("history entry %+v, want its times in UTC to the microsecond", h)
		}
		rec, err := s.Event(context.Background(), h.EventID)
		if err != nil || !utcMicro(rec.Timestamp) || !utcMicro(rec.ReceivedAt) || !rec.Timestamp.Equal(h.Timestamp) || !rec.ReceivedAt.Equal(h.ReceivedAt) {
			t.Fatalf("Event = %+v, %v; want the history's times, in UTC to the microsecond", rec, err)
		}
	}
}
