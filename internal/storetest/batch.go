package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// Tests of the projector's batches: entries go into the log directly, as
// replicas or a crash leave them, so that one projection transaction meets
// them together.

// ralioBody is a signed-shape Ralio body (generation A) of a session event.
func ralioBody(eventID, typ, sessionID, userID string, ts time.Time, code string) []byte {
	checks := `[]`
	if code != "" {
		checks = fmt.Sprintf(`[{"type":"document-verification","state":"Refused","reasons":[{"type":"document","code":%q,"message":"m"}]}]`, code)
	}
	return fmt.Appendf(nil, `{"id":%q,"event":%q,"timestamp":%q,"data":{"sessionId":%q,"userId":%q,"checks":%s}}`,
		eventID, typ, ts.UTC().Format("2006-01-02T15:04:05.000Z"), sessionID, userID, checks)
}

// appendRaw commits bodies to the log as one batch, bypassing the
// appender's deduplication.
func appendRaw(t *testing.T, s kycd.Store, bodies ...[]byte) []*kycd.LogEntry {
	t.Helper()
	var entries []*kycd.LogEntry
	for _, b := range bodies {
		id := ""
		if rb := string(b); len(rb) > 12 && rb[:7] == `{"id":"` {
			id = rb[7:43]
		}
		entries = append(entries, &kycd.LogEntry{EventID: id, ReceivedAt: time.Now().UTC(), Body: b, BodyHash: kycd.BodyHash(b)})
	}
	if err := s.AppendLog(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq <= entries[i-1].Seq {
			t.Fatalf("AppendLog seqs %d then %d, want increasing", entries[i-1].Seq, entries[i].Seq)
		}
	}
	return entries
}

func drain(t *testing.T, in *ingest.Ingester) {
	t.Helper()
	if _, err := in.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func deliveries(t *testing.T, s kycd.Store) []*kycd.Delivery {
	t.Helper()
	rows, err := s.Deliveries(context.Background(), kycd.DeliveryQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func testBatchRefusals(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := pipeline(t, s)
	sid, user, id := uuid.NewString(), uuid.NewString(), uuid.NewString()
	body := ralioBody(id, "kyc_session_failed", sid, user, base, "EXPIRED_DOCUMENT")
	other := ralioBody(id, "kyc_session_failed", sid, user, base, "NO_MATCH")
	invalid := []byte(`{"id":"` + uuid.NewString() + `","event":"kyc_session_failed"}`)
	appendRaw(t, s, body, body, other, invalid)
	drain(t, in)

	sess := session(t, s, sid)
	if sess.Status != kycd.StatusRejected || len(sess.History) != 1 || sess.Failures[0].Code != "EXPIRED_DOCUMENT" {
		t.Fatalf("session = %+v, want REJECTED by the first copy only, one history entry", sess)
	}
	if ds := deliveries(t, s); len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1: a duplicate in the batch notified", len(ds))
	}
	q, err := s.Quarantine(ctx, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]*kycd.Quarantined{}
	for _, it := range q {
		reasons[it.Reason] = it
	}
	if len(q) != 2 || reasons[kycd.QuarantineConflict] == nil || reasons[kycd.QuarantineInvalid] == nil {
		t.Fatalf("quarantine = %+v, want one conflict and one invalid body", q)
	}
	if c := reasons[kycd.QuarantineConflict]; string(c.Body) != string(other) || string(c.OriginalBody) != string(body) || c.EventID != id {
		t.Fatalf("conflict item = %+v, want the other body with the original", c)
	}
	if inv := reasons[kycd.QuarantineInvalid]; string(inv.Body) != string(invalid) || len(inv.Problem) == 0 {
		t.Fatalf("invalid item = %+v, want the body and its problem", inv)
	}
	if left, err := s.UnprojectedLog(ctx, 1<<62, 10); err != nil || len(left) != 0 {
		t.Fatalf("unprojected after drain = %d entries, %v; want none", len(left), err)
	}
}

func testBatchOrders(t *testing.T, s kycd.Store) {
	in := pipeline(t, s)
	for _, newerFirst := range []bool{false, true} {
		sid, user := uuid.NewString(), uuid.NewString()
		older := ralioBody(uuid.NewString(), "kyc_session_failed", sid, user, base, "NO_MATCH")
		newer := ralioBody(uuid.NewString(), "kyc_session_verified", sid, user, base.Add(time.Minute), "")
		before := len(deliveries(t, s))
		if newerFirst {
			appendRaw(t, s, newer, older)
		} else {
			appendRaw(t, s, older, newer)
		}
		drain(t, in)
		sess := session(t, s, sid)
		if sess.Status != kycd.StatusVerified || len(sess.Failures) != 0 || len(sess.History) != 2 {
			t.Fatalf("newer first %v: session = %+v, want VERIFIED with both events in its history", newerFirst, sess)
		}
		if sess.History[0].Status != kycd.StatusRejected || sess.History[0].Applied == newerFirst {
			t.Fatalf("newer first %v: history = %+v, want the older event applied only when it came first", newerFirst, sess.History)
		}
		want := 2
		if newerFirst {
			want = 1
		}
		if got := len(deliveries(t, s)) - before; got != want {
			t.Fatalf("newer first %v: %d notifications, want %d (only events newest on arrival notify)", newerFirst, got, want)
		}
	}
}

func testProjectedTwice(t *testing.T, s kycd.Store) {
	in := pipeline(t, s)
	sid := uuid.NewString()
	body := ralioBody(uuid.NewString(), "kyc_session_failed", sid, uuid.NewString(), base, "NO_MATCH")
	appendRaw(t, s, body)
	drain(t, in)
	// The same entry again in a later batch, as after a crash between a
	// replica's log commit and its answer, or two replicas receiving it.
	appendRaw(t, s, body)
	drain(t, in)
	if h := session(t, s, sid).History; len(h) != 1 {
		t.Fatalf("history = %+v, want one entry", h)
	}
	ds := deliveries(t, s)
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	if q, _ := s.Quarantine(context.Background(), false, 10); len(q) != 0 {
		t.Fatalf("quarantine = %+v, want none: it is the same body", q)
	}
}

func testRebuild(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := pipeline(t, s)
	var sids []string
	for i := range 5 {
		sid, user := uuid.NewString(), uuid.NewString()
		sids = append(sids, sid)
		appendRaw(t, s,
			ralioBody(uuid.NewString(), "kyc_session_failed", sid, user, base.Add(time.Duration(i)*time.Minute), "NO_MATCH"),
			ralioBody(uuid.NewString(), "kyc_session_manual_review", sid, user, base.Add(time.Hour), ""),
			ralioBody(uuid.NewString(), "kyc_session_verified", sid, user, base.Add(time.Duration(i)*time.Second), ""))
	}
	drain(t, in)
	before := map[string]*kycd.Session{}
	for _, sid := range sids {
		before[sid] = session(t, s, sid)
	}
	nd := len(deliveries(t, s))

	n, err := in.Rebuild(ctx)
	if err != nil || n != 15 {
		t.Fatalf("Rebuild = %d, %v; want 15 entries projected again", n, err)
	}
	for _, sid := range sids {
		got, want := session(t, s, sid), before[sid]
		if got.Status != want.Status || got.StatusEventID != want.StatusEventID || !slices.EqualFunc(got.History, want.History, sameHistory) || len(got.Checks) != len(want.Checks) {
			t.Fatalf("session %s after rebuild = %+v, want %+v", sid, got, want)
		}
	}
	if got := len(deliveries(t, s)); got != nd {
		t.Fatalf("%d deliveries after rebuild, want %d: a rebuild must not notify again", got, nd)
	}
}

func sameHistory(a, b kycd.HistoryEntry) bool {
	return a.EventID == b.EventID && a.Applied == b.Applied && a.Status == b.Status && a.Timestamp.Equal(b.Timestamp)
}

// testOddText stores events whose strings hold U+0000 (which PostgreSQL
// refuses in text) and invalid UTF-8, as signed Ralio bodies may: both
// stores keep the raw body as received and the same cleaned text.
func testOddText(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := pipeline(t, s)
	sid, id, other := uuid.NewString(), uuid.NewString(), uuid.NewString()
	body := []byte(`{"id":"` + id + `","event":"kyc_session_failed","timestamp":"2026-03-17T16:00:00.000Z","data":{"sessionId":"` + sid +
		`","userId":"` + uuid.NewString() + `","checks":[{"type":"document\u0000verification","state":"Refused","reasons":[{"type":"document","code":"NUL\u0000CODE","message":"bad byte: ` + "\xff" + `"}]}]}}`)
	unknown := []byte(`{"id":"` + other + `","event":"viban\u0000created","timestamp":"2026-03-17T16:00:00.000Z","data":{}}`)
	appendRaw(t, s, body, unknown)
	drain(t, in)
	sess := session(t, s, sid)
	if sess.Status != kycd.StatusRejected || len(sess.Checks) != 1 {
		t.Fatalf("session = %+v, want REJECTED with its check", sess)
	}
	c := sess.Checks[0]
	if c.Type != "document\uFFFDverification" || c.Reasons[0].Code != "NUL\uFFFDCODE" || c.Reasons[0].Message != "bad byte: \uFFFD" {
		t.Fatalf("check = %+v, want U+0000 and the invalid byte as U+FFFD", c)
	}
	rec, err := s.Event(ctx, id)
	if err != nil || string(rec.Body) != string(body) {
		t.Fatalf("Event = %+v, %v; want the raw body as received", rec, err)
	}
	if rec, err := s.Event(ctx, other); err != nil || rec.Type != "viban\uFFFDcreated" || rec.Outcome != kycd.OutcomeUnhandled {
		t.Fatalf("unknown event = %+v, %v; want its type cleaned, unhandled", rec, err)
	}
}

// testClaimByBytes: a projection batch stops taking entries once their
// bodies pass the bound, and the next batch takes the rest.
func testClaimByBytes(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	var bodies [][]byte
	for range 3 {
		bodies = append(bodies, ralioBody(uuid.NewString(), "kyc_session_verified", uuid.NewString(), uuid.NewString(), base, ""))
	}
	appendRaw(t, s, bodies...)
	size := int64(len(bodies[0]))
	for _, tt := range []struct {
		maxBytes int64
		want     int
	}{{1, 1}, {size + 1, 2}, {10 * size, 3}} {
		tx, err := s.BeginProjection(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tx.ClaimLog(ctx, 10, tt.maxBytes)
		if rerr := tx.Rollback(ctx); rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil || len(got) != tt.want {
			t.Fatalf("ClaimLog(10, %d bytes) = %d entries, %v; want %d (bodies of %d bytes)", tt.maxBytes, len(got), err, tt.want, size)
		}
	}
	in := pipeline(t, s)
	drain(t, in)
	if left, err := s.UnprojectedLog(ctx, 1<<62, 10); err != nil || len(left) != 0 {
		t.Fatalf("unprojected after drain = %d, %v; want none", len(left), err)
	}
}
