package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// These tests drive the driver's side of the write path directly: entries
// into the log, a projection transaction that plans with kycd.PlanBatch,
// resets and purges. The conformance suite (storetest) covers the same
// through package ingest.

var base = time.Date(2026, 3, 17, 16, 0, 0, 0, time.UTC)

func open(t testing.TB) *postgres.Store {
	t.Helper()
	return postgrestest.Open(t, postgrestest.URL(t))
}

// logEntry wraps ev as the appender hands it over: body, hash and the
// decoded event in memory.
func logEntry(ev *kycd.Event) *kycd.LogEntry {
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = time.Now().UTC().Truncate(time.Microsecond)
	}
	ev.Body = fmt.Appendf(nil, `{"id":%q,"event":%q}`, ev.ID, ev.Type)
	ev.BodyHash = "hash-" + ev.ID
	return &kycd.LogEntry{EventID: ev.ID, ReceivedAt: ev.ReceivedAt, Body: ev.Body, BodyHash: ev.BodyHash, Event: ev}
}

var rejectedChecks = []kycd.Check{
	{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{
		{Type: "document", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired", Category: "DOC"},
		{Type: "document", Code: "BLURRY", Message: `Say "cheese" <&> \ é`},
	}},
	{Type: "liveness", State: "Validated", Reasons: []kycd.Reason{}},
}

func sessionEntry(sessionID, userID string, status kycd.Status, offset time.Duration) *kycd.LogEntry {
	ev := &kycd.Event{
		ID:        uuid.NewString(),
		Type:      map[kycd.Status]string{kycd.StatusRejected: "kyc_session_failed", kycd.StatusVerified: "kyc_session_verified", kycd.StatusReview: "kyc_session_manual_review"}[status],
		Timestamp: base.Add(offset),
		SessionID: sessionID,
		Subject:   kycd.SubjectRef{Type: kycd.SubjectUser, ID: userID},
		Status:    status,
	}
	if status == kycd.StatusRejected {
		ev.Checks = rejectedChecks
	}
	return logEntry(ev)
}

func levelEntry(sub kycd.SubjectRef, level string, offset time.Duration) *kycd.LogEntry {
	return logEntry(&kycd.Event{ID: uuid.NewString(), Type: "kyc_state_updated", Timestamp: base.Add(offset), Subject: sub, Level: level})
}

func expirationEntry(sub kycd.SubjectRef) *kycd.LogEntry {
	return logEntry(&kycd.Event{ID: uuid.NewString(), Type: "kyc_expiration_warning", Timestamp: base, Subject: sub,
		Expiration: &kycd.Expiration{Date: "2026-04-01", DaysRemaining: 15}})
}

func unhandledEntry() *kycd.LogEntry {
	return logEntry(&kycd.Event{ID: uuid.NewString(), Type: "kyc_something_new", Timestamp: base})
}

// appendLog commits entries as one batch and checks their seqs.
func appendLog(t testing.TB, s *postgres.Store, entries ...*kycd.LogEntry) {
	t.Helper()
	if err := s.AppendLog(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	var prev int64
	for _, e := range entries {
		if e.Seq <= prev {
			t.Fatalf("AppendLog seqs %v, want positive and increasing", seqs(entries))
		}
		prev = e.Seq
	}
}

func seqs(entries []*kycd.LogEntry) []int64 {
	var out []int64
	for _, e := range entries {
		out = append(out, e.Seq)
	}
	return out
}

// project runs one projection transaction over everything unprojected, as
// the projector does. known gives the decoded events by seq (the projector
// decodes bodies; these tests keep the events they made).
func project(t testing.TB, s *postgres.Store, opt kycd.PlanOptions, known ...*kycd.LogEntry) *kycd.Plan {
	t.Helper()
	ctx := context.Background()
	bySeq := map[int64]*kycd.LogEntry{}
	for _, e := range known {
		bySeq[e.Seq] = e
	}
	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	claimed, err := tx.ClaimLog(ctx, 1000, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claimed {
		e, ok := bySeq[c.Seq]
		if !ok {
			t.Fatalf("claimed entry %d (%s) the test does not know", c.Seq, c.EventID)
		}
		if c.EventID != e.EventID || string(c.Body) != string(e.Body) || c.BodyHash != e.BodyHash || !c.ReceivedAt.Equal(e.ReceivedAt) {
			t.Fatalf("claimed %+v, appended %+v", c, e)
		}
		c.Event = e.Event
	}
	cur, err := tx.Current(ctx, kycd.Keys(claimed))
	if err != nil {
		t.Fatal(err)
	}
	plan := kycd.PlanBatch(claimed, cur, opt)
	if err := tx.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("Rollback after Commit = %v, want nil", err)
	}
	return plan
}

// Replicas share the log: an entry appended by any of them is known
// before its projection. The rest of the log's contract is the
// conformance suite's (storetest).
func TestKnownBeforeProjection(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	entries := []*kycd.LogEntry{unhandledEntry(), unhandledEntry()}
	appendLog(t, s, entries...)
	if known, err := s.KnownEvents(ctx, []string{entries[0].EventID}); err != nil || known[entries[0].EventID] != (kycd.KnownEvent{Seq: entries[0].Seq, BodyHash: entries[0].BodyHash}) {
		t.Fatalf("KnownEvents of an unprojected entry = %v, %v; want it, from the log", known, err)
	}
}

// One batch holding a session's event and an older one, a level, an
// expiration warning and an unhandled event projects into every table.
func TestProjection(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	sessionID, userID := uuid.NewString(), uuid.NewString()
	user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: userID}
	business := kycd.SubjectRef{Type: kycd.SubjectBusiness, ID: uuid.NewString()}
	rejected := sessionEntry(sessionID, userID, kycd.StatusRejected, 0)
	older := sessionEntry(sessionID, userID, kycd.StatusVerified, -time.Minute)
	level := levelEntry(user, "REGULAR", 0)
	expiring := expirationEntry(business)
	unhandled := unhandledEntry()
	entries := []*kycd.LogEntry{rejected, older, level, expiring, unhandled}
	appendLog(t, s, entries...)
	opt := kycd.PlanOptions{Sinks: kycd.Routes("a", "b")}
	plan := project(t, s, opt, entries...)
	if len(plan.Notifications) != 3 {
		t.Fatalf("plan notifies %d times, want 3", len(plan.Notifications))
	}

	sess, err := s.Session(ctx, sessionID)
	if err != nil {
		t.Fatal(err)
	}
	sess.Complete() // as every reader gets it
	if sess.Status != kycd.StatusRejected || sess.StatusEventID != rejected.EventID || !sess.StatusAt.Equal(base) || sess.Subject != user {
		t.Fatalf("session = %+v", sess)
	}
	if !equalJSON(sess.Checks, rejectedChecks) || !equalJSON(sess.Failures, kycd.Failures(rejectedChecks)) {
		t.Fatalf("checks = %+v, failures = %+v", sess.Checks, sess.Failures)
	}
	if len(sess.History) != 2 || sess.History[0].EventID != older.EventID || sess.History[0].Applied ||
		sess.History[1].EventID != rejected.EventID || !sess.History[1].Applied || !sess.History[1].ReceivedAt.Equal(rejected.ReceivedAt) ||
		sess.History[1].ReceivedAt.Location() != time.UTC {
		t.Fatalf("history = %+v", sess.History)
	}

	sub, err := reads(s).Subject(ctx, userID, "")
	if err != nil || sub.Type != kycd.SubjectUser || sub.Level != "REGULAR" || !sub.LevelAt.Equal(base) ||
		len(sub.Sessions) != 1 || sub.Sessions[0].ID != sessionID {
		t.Fatalf("Subject(user) = %+v, %v", sub, err)
	}
	if sub, err := reads(s).Subject(ctx, business.ID, ""); err != nil || sub.Type != kycd.SubjectBusiness || sub.Level != "" || len(sub.Sessions) != 0 {
		t.Fatalf("Subject(business with an expiration warning) = %+v, %v", sub, err)
	}
	if _, err := reads(s).Subject(ctx, userID, kycd.SubjectBusiness); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("Subject(user id, business) = %v, want ENOTFOUND", err)
	}

	for _, e := range entries {
		rec, err := s.Event(ctx, e.EventID)
		if err != nil || string(rec.Body) != string(e.Body) || rec.BodyHash != e.BodyHash || rec.Type != e.Event.Type ||
			!rec.ReceivedAt.Equal(e.ReceivedAt) || rec.SessionID != e.Event.SessionID {
			t.Fatalf("Event(%s) = %+v, %v", e.EventID, rec, err)
		}
	}
	outcomes := map[string]string{}
	for _, ev := range plan.Events {
		outcomes[ev.ID] = ev.Outcome
	}
	if rec, _ := s.Event(ctx, older.EventID); rec.Outcome != kycd.OutcomeStale || outcomes[older.EventID] != kycd.OutcomeStale {
		t.Fatalf("older event outcome = %q, want stale", rec.Outcome)
	}
	if rec, _ := s.Event(ctx, unhandled.EventID); rec.Outcome != kycd.OutcomeUnhandled {
		t.Fatalf("unhandled event outcome = %q", rec.Outcome)
	}

	ids := []string{uuid.NewString()}
	for _, e := range entries {
		ids = append(ids, e.EventID)
	}
	known, err := s.KnownEvents(ctx, ids)
	if err != nil || len(known) != len(entries) {
		t.Fatalf("KnownEvents = %v, %v", known, err)
	}
	for _, e := range entries {
		if known[e.EventID] != (kycd.KnownEvent{Seq: e.Seq, BodyHash: e.BodyHash}) {
			t.Fatalf("KnownEvents[%s] = %+v, want seq %d", e.EventID, known[e.EventID], e.Seq)
		}
	}
	if rest, err := s.UnprojectedLog(ctx, 1<<62, 100); err != nil || len(rest) != 0 {
		t.Fatalf("UnprojectedLog after projecting = %v, %v", rest, err)
	}

	page, err := (&app.Service{Store: s}).Deliveries(ctx, kycd.DeliveryFilter{Limit: 100})
	if err != nil || len(page.Items) != 6 {
		t.Fatalf("deliveries = %v, %v; want 3 notifications × 2 sinks", page, err)
	}
	ds := page.Items
	for _, d := range ds {
		full, err := s.Delivery(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != kycd.DeliveryPending || !d.CreatedAt.Equal(full.NextAttemptAt) || !slices.Contains([]string{
			kycd.NotificationID(rejected.EventID), kycd.NotificationID(level.EventID), kycd.NotificationID(expiring.EventID),
		}, d.NotificationID) {
			t.Fatalf("delivery = %+v", full)
		}
	}

	// Last received first, a page at a time.
	var listed []string
	cursor := ""
	for range 10 {
		page, err := reads(s).Events(ctx, kycd.EventFilter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			listed = append(listed, e.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	for i, e := range entries {
		if len(listed) != len(entries) || listed[len(listed)-1-i] != e.EventID {
			t.Fatalf("events listed %v, want the reverse of %v", listed, ids[1:])
		}
	}
	if page, err := reads(s).Events(ctx, kycd.EventFilter{Type: "kyc_state_updated"}); err != nil || len(page.Events) != 1 || page.Events[0].ID != level.EventID {
		t.Fatalf("events of one type = %+v, %v", page, err)
	}

	st, err := statsSince(s, base, 10)
	if err != nil {
		t.Fatal(err)
	}
	if st.SessionsBy[kycd.StatusRejected] != 1 || len(st.TopFailureCodes) != 2 ||
		st.TopFailureCodes[0] != (kycd.CodeCount{Code: "BLURRY", Count: 1}) || st.TopFailureCodes[1] != (kycd.CodeCount{Code: "EXPIRED_DOCUMENT", Count: 1}) ||
		len(st.FailuresByDay) != 2 || st.FailuresByDay[0] != (kycd.DayCodeCount{Day: "2026-03-17", Code: "BLURRY", Count: 1}) {
		t.Fatalf("stats = %+v", st)
	}
	if st, _ := statsSince(s, base.Add(time.Second), 10); len(st.TopFailureCodes) != 0 {
		t.Fatalf("stats after the rejection = %+v, want no codes", st)
	}

	// A newer event in a later batch updates the row read.
	newer := sessionEntry(sessionID, userID, kycd.StatusVerified, time.Minute)
	newerLevel := levelEntry(user, "LIGHT", time.Minute)
	appendLog(t, s, newer, newerLevel)
	project(t, s, opt, newer, newerLevel)
	sess, err = s.Session(ctx, sessionID)
	if err != nil || sess.Status != kycd.StatusVerified || len(sess.Checks) != 0 || len(kycd.Failures(sess.Checks)) != 0 || len(sess.History) != 3 {
		t.Fatalf("session after a newer event = %+v, %v", sess, err)
	}
	if sub, _ := reads(s).Subject(ctx, userID, ""); sub.Level != "LIGHT" {
		t.Fatalf("level after a newer event = %q", sub.Level)
	}
	cur := current(t, s, kycd.PlanKeys{SessionIDs: []string{sessionID}, Subjects: []kycd.SubjectRef{user, business}})
	if cur.Sessions[sessionID].Version != 2 || cur.Levels[user].Version != 2 || cur.Levels[business] != nil {
		t.Fatalf("versions after two batches = %+v %+v, want 2 and 2, business without level absent", cur.Sessions[sessionID], cur.Levels)
	}
}

// current reads the projection rows keys name, in a projection rolled back.
func current(t *testing.T, s *postgres.Store, keys kycd.PlanKeys) *kycd.Projection {
	t.Helper()
	ctx := context.Background()
	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	cur, err := tx.Current(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

// equalJSON compares what a and b encode to, as the API would show them.
func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
