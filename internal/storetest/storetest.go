// Package storetest is the conformance suite every kycd.Store passes: the
// same assertions run against SQLite and PostgreSQL.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
)

// Open returns a fresh, migrated, empty store for one test.
type Open func(t *testing.T) kycd.Store

// OpenTwice returns two stores on one fresh, migrated, empty database, as
// two processes (or replicas) would open it.
type OpenTwice func(t *testing.T) (a, b kycd.Store)

// Run runs the suite against the stores open and twice return: one
// subtest per area, and in it one parallel subtest per case on a fresh
// database of its own.
func Run(t *testing.T, open Open, twice OpenTwice) {
	areas := map[string][]func(t *testing.T){}
	var order []string
	add := func(area, name string, fn func(t *testing.T)) {
		if _, ok := areas[area]; !ok {
			order = append(order, area)
		}
		areas[area] = append(areas[area], func(t *testing.T) {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				fn(t)
			})
		})
	}
	for _, c := range cases {
		add(c.area, c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
	for _, c := range twiceCases {
		add(c.area, c.name, func(t *testing.T) {
			a, b := twice(t)
			c.fn(t, a, b)
		})
	}
	for _, area := range order {
		t.Run(area, func(t *testing.T) {
			t.Parallel()
			for _, run := range areas[area] {
				run(t)
			}
		})
	}
}

// testCase is one contract of the suite, run on a fresh store.
type testCase struct {
	area, name string
	fn         func(t *testing.T, s kycd.Store)
}

// twiceCase is a contract between two processes on one database.
type twiceCase struct {
	area, name string
	fn         func(t *testing.T, a, b kycd.Store)
}

// twiceCases is every contract between processes, one line each.
var twiceCases = []twiceCase{
	{"EventLog", "ProjectionsTakeTurns", testProjectionsTakeTurns},
	{"Serving", "RebuildExcludesServe", testServingExcludes},
}

// cases is every contract, one line each, by area.
var cases = []testCase{
	{"Ingest", "IngestAppliesNewSession", testIngestAppliesNewSession},
	{"Ingest", "DuplicateHasNoSecondEffect", testDuplicate},
	{"Ingest", "SameIDOtherBodyConflicts", testConflict},
	{"Projection", "StaleEventKeptInHistoryOnly", testStale},
	{"Projection", "EqualTimestampsOrderedByID", testEqualTimestamps},
	{"Projection", "NewerEventOverturnsOutcome", testOverturn},
	{"Projection", "AnyArrivalOrderSameState", testAnyArrivalOrder},
	{"Projection", "LevelNewestWins", testLevel},
	{"Ingest", "UnhandledEventStored", testUnhandled},
	{"Ingest", "ConcurrentCopiesOneEffect", testConcurrentCopies},
	{"Quarantine", "Quarantine", testQuarantine},
	{"Settings", "Settings", testSettings},
	{"Purge", "PurgeKeepsIDs", testPurge},
	{"Reads", "NotFound", testNotFound},
	{"Outbox", "OutboxLeases", testOutboxLeases},
	{"Reads", "ListsAndStats", testListsAndStats},
	{"Reads", "SearchByID", testSearchByID},
	{"Outbox", "OutboxScheduleAndRetry", testOutboxScheduleAndRetry},
	{"Store", "ClosedStoreUnavailable", testClosed},
	{"Batch", "BatchWithDuplicateConflictAndInvalid", testBatchRefusals},
	{"Batch", "BatchOfOneSessionInBothOrders", testBatchOrders},
	{"Projection", "EntryProjectedTwiceHasOneEffect", testProjectedTwice},
	{"Rebuild", "RebuildReproducesProjection", testRebuild},
	{"Outbox", "DeliveryPages", testDeliveryPages},
	{"Sinks", "SinkTx", testSinkTx},
	{"Quarantine", "QuarantineTx", testQuarantineTx},
	{"Quarantine", "SignatureHold", testSignatureHold},
	{"Outbox", "DeliveryTx", testDeliveryTx},
	{"Outbox", "RecordAttemptsLostLease", testLostLease},
	{"Settings", "SwapSetting", testSwapSetting},
	{"Store", "OddTextStoredAlike", testOddText},
	{"Reconciliation", "Reconciliations", testReconciliations},
	{"EventLog", "ClaimStopsAtBytes", testClaimByBytes},
	{"EventLog", "ClaimLog", testClaimLog},
	{"EventLog", "AppendLog", testAppendLog},
	{"Projection", "SessionUpdatesAndLevels", testSessionUpdatesAndLevels},
	{"Projection", "ApplyConflicts", testApplyConflicts},
	{"Projection", "ApplyTwice", testApplyTwice},
	{"Projection", "ApplyQuarantine", testApplyQuarantine},
	{"Time", "SubMicrosecondOrder", testSubMicrosecondOrder},
	{"Time", "RebuildKeepsTimes", testRebuildKeepsTimes},
	{"Rebuild", "ResetProjection", testResetProjection},
	{"Reads", "StalledSessions", testStalledSessions},
	{"Projection", "NotificationsWithoutEntries", testNotificationsWithoutEntries},
	{"Rebuild", "RebuildDerivesExpiry", testRebuildDerivesExpiry},
	{"Reads", "SessionFilters", testSessionFilters},
	{"Reads", "SessionNotifications", testSessionNotifications},
	{"Outbox", "OldestPending", testOldestPending},
	{"Outbox", "OrderedRetries", testOrderedRetries},
	{"Outbox", "OrderedHeadOnly", testOrderedHeadOnly},
	{"Outbox", "OrderedDeadReleases", testOrderedDeadReleases},
	{"Outbox", "OrderedDropReleases", testOrderedDropReleases},
	{"Outbox", "OrderNone", testOrderNone},
	{"Outbox", "HandoffLeased", testHandoff},
	{"Quarantine", "QuarantinePending", testQuarantinePending},
	{"Tokens", "Tokens", testTokens},
	{"Audit", "AuditTrail", testAuditTrail},
	{"Privacy", "ExportAndErase", testExportAndErase},
	{"Privacy", "ExportAndEraseThousandSessions", testExportAndEraseThousandSessions},
	{"Privacy", "PurgeRemovesWhatErasureRemoves", testPurgeRemovesWhatErasureRemoves},
	{"Purge", "PurgeInChunks", testPurgeInChunks},
	{"Reads", "EventsCursorAfterRebuild", testEventsCursorAfterRebuild},
	{"Projection", "ClockSkewBoundedByReceipt", testClockSkew},
	{"Outbox", "DeliveryFilters", testDeliveryFilters},
	{"Outbox", "BulkByFilter", testBulkByFilter},
	{"Projection", "SessionVersions", testSessionVersions},
}

// reads is the application layer over s: the lists, their pages and
// cursors, and the subject rule, as every front end sees them over s.
func reads(s kycd.Store) *app.Service { return &app.Service{Store: s} }

var base = time.Date(2026, 3, 17, 16, 0, 0, 0, time.UTC)

// sessionEvent builds a session event at base+offset.
func sessionEvent(sessionID string, status kycd.Status, offset time.Duration) *kycd.Event {
	id := uuid.NewString()
	ev := &kycd.Event{
		ID:         id,
		Type:       map[kycd.Status]string{kycd.StatusRejected: "kyc_session_failed", kycd.StatusVerified: "kyc_session_verified", kycd.StatusReview: "kyc_session_manual_review", kycd.StatusExpired: "kyc_session_expired"}[status],
		Timestamp:  base.Add(offset),
		ReceivedAt: time.Now().UTC(),
		Body:       []byte(fmt.Sprintf(`{"id":%q}`, id)),
		BodyHash:   "hash-" + id,
		SessionID:  sessionID,
		Subject:    kycd.SubjectRef{Type: kycd.SubjectUser, ID: "c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f"},
		Status:     status,
	}
	if status == kycd.StatusRejected {
		ev.Checks = []kycd.Check{
			{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{{Type: "document", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired", Category: "DOC"}}},
			{Type: "liveness", State: "Validated", Reasons: []kycd.Reason{}},
		}
	}
	return ev
}

// pipelines holds each store's write path, so that concurrent ingests of
// one test share one appender as a server's requests do.
var pipelines sync.Map // kycd.Store → *ingest.Ingester

// pipeline returns the write path of s with one sink, "log".
func pipeline(t *testing.T, s kycd.Store) *ingest.Ingester {
	t.Helper()
	if in, ok := pipelines.Load(s); ok {
		return in.(*ingest.Ingester)
	}
	in := newPipeline(t, s, "log")
	if prev, loaded := pipelines.LoadOrStore(s, in); loaded {
		return prev.(*ingest.Ingester)
	}
	t.Cleanup(func() { pipelines.Delete(s) })
	return in
}

func newPipeline(t *testing.T, s kycd.Store, sinks ...string) *ingest.Ingester {
	t.Helper()
	in, err := ingest.New(context.Background(), s, ingest.Options{Sinks: kycd.Routes(sinks...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return in
}

// record appends ev to the log and projects it, as a webhook and the
// projector would, and reports what became of it.
func record(t *testing.T, s kycd.Store, ev *kycd.Event) kycd.IngestResult {
	t.Helper()
	res, err := ingestWith(pipeline(t, s), ev)
	if err != nil {
		t.Fatalf("ingest %s: %v", ev.ID, err)
	}
	return res
}

func ingestWith(in *ingest.Ingester, ev *kycd.Event) (kycd.IngestResult, error) {
	ctx := context.Background()
	res, err := in.Append(ctx, ev)
	if err == nil {
		err = in.Project(ctx, &res)
	}
	if err != nil {
		return kycd.IngestResult{}, err
	}
	out := kycd.IngestResult{Duplicate: res.Duplicate, Outcome: res.Outcome}
	if res.Outcome == kycd.OutcomeApplied && kycd.NotificationType(ev) != "" {
		out.NotificationID = kycd.NotificationID(ev.ID)
	}
	return out, nil
}

func session(t *testing.T, s kycd.Store, id string) *kycd.Session {
	t.Helper()
	sess, err := s.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	sess.Complete() // as every reader gets it
	return sess
}

func testIngestAppliesNewSession(t *testing.T, s kycd.Store) {
	sid := uuid.NewString()
	ev := sessionEvent(sid, kycd.StatusRejected, 0)
	res := record(t, s, ev)
	if res.Duplicate || res.Outcome != kycd.OutcomeApplied || res.NotificationID == "" {
		t.Fatalf("result = %+v, want applied with a notification", res)
	}
	sess := session(t, s, sid)
	if sess.Status != kycd.StatusRejected || !sess.StatusAt.Equal(ev.Timestamp) || sess.StatusEventID != ev.ID || sess.Subject != ev.Subject {
		t.Fatalf("session = %+v", sess)
	}
	if len(sess.Checks) != 2 || sess.Checks[0].Reasons[0].Code != "EXPIRED_DOCUMENT" || sess.Checks[0].Reasons[0].Category != "DOC" || sess.Checks[1].State != "Validated" {
		t.Fatalf("checks = %+v", sess.Checks)
	}
	want := kycd.Failure{CheckType: "document-verification", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired"}
	if len(sess.Failures) != 1 || sess.Failures[0] != want {
		t.Fatalf("failures = %+v, want [%+v]", sess.Failures, want)
	}
	if len(sess.History) != 1 || !sess.History[0].Applied || sess.History[0].EventID != ev.ID {
		t.Fatalf("history = %+v", sess.History)
	}
	rec, err := s.Event(context.Background(), ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Outcome != kycd.OutcomeApplied || string(rec.Body) != string(ev.Body) || rec.Type != ev.Type || rec.SessionID != sid {
		t.Fatalf("event record = %+v", rec)
	}
	sub, err := reads(s).Subject(context.Background(), ev.Subject.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ss := range sub.Sessions {
		found = found || (ss.ID == sid && ss.Status == kycd.StatusRejected)
	}
	if sub.Type != kycd.SubjectUser || !found {
		t.Fatalf("subject = %+v, want user with session %s", sub, sid)
	}
}

func testDuplicate(t *testing.T, s kycd.Store) {
	sid := uuid.NewString()
	ev := sessionEvent(sid, kycd.StatusRejected, 0)
	record(t, s, ev)
	again := *ev
	res := record(t, s, &again)
	if !res.Duplicate || res.NotificationID != "" {
		t.Fatalf("second ingest = %+v, want duplicate without notification", res)
	}
	if h := session(t, s, sid).History; len(h) != 1 {
		t.Fatalf("history has %d entries after a duplicate, want 1", len(h))
	}
}

func testConflict(t *testing.T, s kycd.Store) {
	ev := sessionEvent(uuid.NewString(), kycd.StatusRejected, 0)
	record(t, s, ev)
	other := *ev
	other.BodyHash = "another"
	_, err := ingestWith(pipeline(t, s), &other)
	if kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("err = %v, want ECONFLICT", err)
	}
}

func testStale(t *testing.T, s kycd.Store) {
	sid := uuid.NewString()
	newer := sessionEvent(sid, kycd.StatusVerified, time.Hour)
	older := sessionEvent(sid, kycd.StatusRejected, 0)
	record(t, s, newer)
	res := record(t, s, older)
	if res.Outcome != kycd.OutcomeStale || res.NotificationID != "" {
		t.Fatalf("older event = %+v, want stale without notification", res)
	}
	sess := session(t, s, sid)
	if sess.Status != kycd.StatusVerified || sess.StatusEventID != newer.ID || len(sess.Checks) != 0 {
		t.Fatalf("session = %+v, want VERIFIED from %s with its (empty) checks", sess, newer.ID)
	}
	if len(sess.History) != 2 || sess.History[0].EventID != older.ID || sess.History[0].Applied || !sess.History[1].Applied {
		t.Fatalf("history = %+v, want the older event first, not applied", sess.History)
	}
	if rec, _ := s.Event(context.Background(), older.ID); rec == nil || rec.Outcome != kycd.OutcomeStale {
		t.Fatalf("older event record = %+v, want outcome stale", rec)
	}
}

func testEqualTimestamps(t *testing.T, s kycd.Store) {
	sid := uuid.NewString()
	a := sessionEvent(sid, kycd.StatusRejected, 0)
	b := sessionEvent(sid, kycd.StatusReview, 0)
	a.ID, b.ID = "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-8fff-ffffffffffff"
	record(t, s, b)
	if res := record(t, s, a); res.Outcome != kycd.OutcomeStale {
		t.Fatalf("smaller id at equal timestamp = %s, want stale", res.Outcome)
	}
	if st := session(t, s, sid).Status; st != kycd.StatusReview {
		t.Fatalf("status = %s, want REVIEW (larger id wins)", st)
	}
}

func testOverturn(t *testing.T, s kycd.Store) {
	sid := uuid.NewString()
	record(t, s, sessionEvent(sid, kycd.StatusRejected, 0))
	record(t, s, sessionEvent(sid, kycd.StatusReview, time.Minute))
	res := record(t, s, sessionEvent(sid, kycd.StatusVerified, 2*time.Minute))
	if res.Outcome != kycd.OutcomeApplied {
		t.Fatalf("outcome = %s", res.Outcome)
	}
	sess := session(t, s, sid)
	if sess.Status != kycd.StatusVerified || len(sess.Failures) != 0 || len(sess.History) != 3 {
		t.Fatalf("session = %+v, want VERIFIED without failures and 3 history entries", sess)
	}
}

func levelEvent(subject kycd.SubjectRef, level string, offset time.Duration) *kycd.Event {
	id := uuid.NewString()
	return &kycd.Event{ID: id, Type: "kyc_state_updated", Timestamp: base.Add(offset), ReceivedAt: time.Now(),
		Body: []byte(`{}`), BodyHash: id, Subject: subject, Level: level}
}

func testLevel(t *testing.T, s kycd.Store) {
	user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}
	record(t, s, levelEvent(user, "LIGHT", time.Hour))
	if res := record(t, s, levelEvent(user, "REGULAR", 0)); res.Outcome != kycd.OutcomeStale || res.NotificationID != "" {
		t.Fatalf("older level = %+v, want stale without notification", res)
	}
	sub, err := reads(s).Subject(context.Background(), user.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if sub.Level != "LIGHT" || !sub.LevelAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("subject = %+v, want LIGHT", sub)
	}
	biz := kycd.SubjectRef{Type: kycd.SubjectBusiness, ID: user.ID}
	record(t, s, levelEvent(biz, "REGULAR", 0))
	if sub, _ := reads(s).Subject(context.Background(), user.ID, kycd.SubjectBusiness); sub == nil || sub.Level != "REGULAR" {
		t.Fatalf("business subject = %+v, want REGULAR", sub)
	}
	if sub, _ := reads(s).Subject(context.Background(), user.ID, kycd.SubjectUser); sub == nil || sub.Level != "LIGHT" {
		t.Fatalf("user subject after business level = %+v, want LIGHT", sub)
	}
}

func testUnhandled(t *testing.T, s kycd.Store) {
	id := uuid.NewString()
	ev := &kycd.Event{ID: id, Type: "viban_created", Timestamp: base, ReceivedAt: time.Now(), Body: []byte(`{"x":1}`), BodyHash: id}
	res := record(t, s, ev)
	if res.Outcome != kycd.OutcomeUnhandled || res.NotificationID != "" {
		t.Fatalf("unknown event = %+v, want unhandled, no notification", res)
	}
	if rec, err := s.Event(context.Background(), id); err != nil || rec.Type != "viban_created" {
		t.Fatalf("Event = %+v, %v", rec, err)
	}
}

func testConcurrentCopies(t *testing.T, s kycd.Store) {
	sid := uuid.NewString()
	ev := sessionEvent(sid, kycd.StatusRejected, 0)
	const copies = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied, dups := 0, 0
	for range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *ev
			res, err := ingestWith(pipeline(t, s), &c)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("Ingest: %v", err)
			case res.Duplicate:
				dups++
			case res.Outcome == kycd.OutcomeApplied:
				applied++
			}
		}()
	}
	wg.Wait()
	if applied != 1 || dups != copies-1 {
		t.Fatalf("applied %d, duplicates %d; want 1 and %d", applied, dups, copies-1)
	}
	if h := session(t, s, sid).History; len(h) != 1 {
		t.Fatalf("history has %d entries, want 1", len(h))
	}
}

func testQuarantine(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: time.Now().UTC(), Reason: kycd.QuarantineConflict,
		Problem: []byte(`{"detail":"x"}`), EventID: uuid.NewString(), Body: []byte(`{"b":2}`), OriginalBody: []byte(`{"b":1}`)}
	if err := s.AddQuarantine(ctx, q); err != nil {
		t.Fatal(err)
	}
	got, err := s.QuarantineItem(ctx, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != `{"b":2}` || string(got.OriginalBody) != `{"b":1}` || got.Reason != q.Reason || got.EventID != q.EventID || string(got.Problem) != `{"detail":"x"}` {
		t.Fatalf("quarantined = %+v", got)
	}
	list, err := s.Quarantine(ctx, false, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("pending list = %d items, %v; want 1", len(list), err)
	}
	if err := s.ResolveQuarantine(ctx, q.ID, kycd.OutcomeApplied, time.Now()); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Quarantine(ctx, false, 10); len(list) != 0 {
		t.Fatalf("pending list after replay has %d items, want 0", len(list))
	}
	if list, _ := s.Quarantine(ctx, true, 10); len(list) != 1 || list[0].ReplayResult != kycd.OutcomeApplied || list[0].ReplayedAt.IsZero() {
		t.Fatalf("full list after replay = %+v", list)
	}
}

func testSettings(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	if _, err := s.Setting(ctx, "k"); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("missing setting: %v, want ENOTFOUND", err)
	}
	v, created, err := s.InitSetting(ctx, "k", "first")
	if err != nil || !created || v != "first" {
		t.Fatalf("first InitSetting = %q %v %v", v, created, err)
	}
	v, created, err = s.InitSetting(ctx, "k", "second")
	if err != nil || created || v != "first" {
		t.Fatalf("second InitSetting = %q %v %v, want the first value kept", v, created, err)
	}
	if v, _ := s.Setting(ctx, "k"); v != "first" {
		t.Fatalf("Setting = %q", v)
	}
}

func testPurge(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	ev := sessionEvent(uuid.NewString(), kycd.StatusRejected, 0)
	ev.ReceivedAt = time.Now().Add(-48 * time.Hour)
	record(t, s, ev)
	recent := sessionEvent(uuid.NewString(), kycd.StatusVerified, 0)
	record(t, s, recent)
	invited := &kycd.Event{ID: uuid.NewString(), Type: "related_party.kyc_session_created", Timestamp: base,
		ReceivedAt: time.Now().Add(-48 * time.Hour), Body: []byte(`{}`), BodyHash: "h", SessionID: uuid.NewString(),
		Subject: kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: uuid.NewString()}, Status: kycd.StatusNotStarted,
		Invitation: &kycd.Invitation{Email: "ana@example.com", VerificationURL: "https://verify.example.com/x"}}
	record(t, s, invited)
	p, err := purge(ctx, s, time.Now(), 24*time.Hour)
	if err != nil || p.EventBodies != 2 || p.Notifications != 2 || p.Sessions != 1 || p.Quarantine != 0 {
		t.Fatalf("Purge = %+v, %v; want two bodies, two notifications (the invitation, the rejection's message), one session's message", p, err)
	}
	page, err := s.Deliveries(ctx, kycd.DeliveryQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range page {
		full, err := s.Delivery(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(full.Payload), "ana@example.com") || strings.Contains(string(full.Payload), "verify.example.com") {
			t.Errorf("notification %s still holds personal data after the purge: %s", d.NotificationID, full.Payload)
		}
		if d.NotificationType == kycd.NotifySessionInvited && !strings.Contains(string(full.Payload), invited.ID) {
			t.Errorf("purged invitation lost its source event id: %s", full.Payload)
		}
	}
	if rec, _ := s.Event(ctx, ev.ID); rec == nil || rec.Body != nil {
		t.Fatalf("old event after purge = %+v, want kept without body", rec)
	}
	if rec, _ := s.Event(ctx, recent.ID); rec == nil || rec.Body == nil {
		t.Fatalf("recent event after purge = %+v, want body kept", rec)
	}
	again := *ev
	if res := record(t, s, &again); !res.Duplicate {
		t.Fatalf("late duplicate after purge = %+v, want duplicate", res)
	}
}

func testNotFound(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	id := uuid.NewString()
	checks := map[string]error{}
	_, checks["Session"] = s.Session(ctx, id)
	_, checks["Subject"] = reads(s).Subject(ctx, id, "")
	_, checks["Event"] = s.Event(ctx, id)
	_, checks["QuarantineItem"] = s.QuarantineItem(ctx, id)
	checks["ResolveQuarantine"] = s.ResolveQuarantine(ctx, id, "x", time.Now())
	for name, err := range checks {
		if kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("%s(unknown) = %v, want ENOTFOUND", name, err)
		}
	}
}

func testClosed(t *testing.T, s kycd.Store) {
	s.Close()
	ev := sessionEvent(uuid.NewString(), kycd.StatusRejected, 0)
	e := &kycd.LogEntry{EventID: ev.ID, ReceivedAt: ev.ReceivedAt, Body: ev.Body, BodyHash: ev.BodyHash}
	if err := s.AppendLog(context.Background(), []*kycd.LogEntry{e}); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Fatalf("AppendLog on a closed store = %v, want EUNAVAILABLE", err)
	}
	if err := s.Ping(context.Background()); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Fatalf("Ping on a closed store = %v, want EUNAVAILABLE", err)
	}
}

func notifyOnce(t *testing.T, s kycd.Store, sinks ...string) *kycd.Event {
	t.Helper()
	ev := sessionEvent(uuid.NewString(), kycd.StatusRejected, 0)
	if _, err := ingestWith(newPipeline(t, s, sinks...), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func testOutboxLeases(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyOnce(t, s, "a", "b")
	now := time.Now().UTC().Truncate(time.Millisecond) // every backend keeps milliseconds
	got, err := s.ClaimDeliveries(ctx, "one", []string{"a"}, now, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].Sink != "a" || got[0].NotificationType != kycd.NotifySessionRejected || len(got[0].Payload) == 0 {
		t.Fatalf("claim = %+v, %v; want sink a's one delivery with its notification", got, err)
	}
	if again, _ := s.ClaimDeliveries(ctx, "two", []string{"a"}, now.Add(59*time.Second), time.Minute, 10); len(again) != 0 {
		t.Fatalf("a leased delivery was claimed again by another owner")
	}
	stolen, err := s.ClaimDeliveries(ctx, "two", []string{"a"}, now.Add(61*time.Second), time.Minute, 10)
	if err != nil || len(stolen) != 1 {
		t.Fatalf("after the lease expired: %d claimed, %v; want 1", len(stolen), err)
	}
	rec := kycd.AttemptRecord{DeliveryID: got[0].ID, Attempt: kycd.Attempt{At: now, DurationMS: 5, Outcome: kycd.AttemptDelivered},
		Next: kycd.DeliveryUpdate{State: kycd.DeliveryDelivered, NextAttemptAt: now}}
	errs, err := s.RecordAttempts(ctx, "one", []kycd.AttemptRecord{rec})
	if err != nil || len(errs) != 1 || kycd.ErrorCode(errs[0]) != kycd.ECONFLICT {
		t.Fatalf("record by the owner who lost the lease = %v, %v; want ECONFLICT", errs, err)
	}
	errs, err = s.RecordAttempts(ctx, "two", []kycd.AttemptRecord{rec})
	if err != nil || errs[0] != nil {
		t.Fatalf("record by the lease holder = %v, %v", errs, err)
	}
	d, err := s.Delivery(ctx, got[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != kycd.DeliveryDelivered || d.AttemptCount != 1 || len(d.Attempts) != 1 || d.Attempts[0].Outcome != kycd.AttemptDelivered || d.Attempts[0].DurationMS != 5 {
		t.Fatalf("delivery = %+v", d)
	}
	if left, _ := s.ClaimDeliveries(ctx, "three", []string{"a", "b"}, now.Add(time.Hour), time.Minute, 10); len(left) != 1 || left[0].Sink != "b" {
		t.Fatalf("claim of both sinks = %+v, want only b's pending delivery", left)
	}
}

func testOutboxScheduleAndRetry(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	notifyOnce(t, s, "a")
	now := time.Now().UTC().Truncate(time.Millisecond) // every backend keeps milliseconds
	got, _ := s.ClaimDeliveries(ctx, "one", []string{"a"}, now, time.Minute, 10)
	if len(got) != 1 {
		t.Fatalf("claimed %d, want 1", len(got))
	}
	id := got[0].ID
	fail := func(state string, next time.Time) {
		t.Helper()
		errs, err := s.RecordAttempts(ctx, "one", []kycd.AttemptRecord{{DeliveryID: id,
			Attempt: kycd.Attempt{At: now, Outcome: kycd.AttemptFailed, StatusCode: 503, Error: "status 503"},
			Next:    kycd.DeliveryUpdate{State: state, NextAttemptAt: next, Error: "status 503"}}})
		if err != nil || errs[0] != nil {
			t.Fatalf("record: %v %v", errs, err)
		}
	}
	fail(kycd.DeliveryPending, now.Add(10*time.Second))
	if early, _ := s.ClaimDeliveries(ctx, "one", []string{"a"}, now.Add(9*time.Second), time.Minute, 10); len(early) != 0 {
		t.Fatal("claimed before its next attempt was due")
	}
	due, _ := s.ClaimDeliveries(ctx, "one", []string{"a"}, now.Add(10*time.Second), time.Minute, 10)
	if len(due) != 1 || due[0].RoundAttempts != 1 || due[0].AttemptCount != 1 {
		t.Fatalf("due claim = %+v, want the delivery with one attempt", due)
	}
	fail(kycd.DeliveryDead, now)
	if dead, _ := s.Deliveries(ctx, kycd.DeliveryQuery{States: []string{kycd.DeliveryDead}}); len(dead) != 1 || dead[0].LastError != "status 503" {
		t.Fatalf("dead list = %+v", dead)
	}
	if depth, err := s.OutboxDepth(ctx); err != nil || depth[kycd.DeliveryDead] != 1 || depth[kycd.DeliveryPending] != 0 {
		t.Fatalf("depth = %v, %v", depth, err)
	}
	inTx(t, s, func(tx kycd.Tx) error {
		ids, err := tx.DeliveryIDs(ctx, kycd.DeliveryDead, "")
		if err != nil || len(ids) != 1 {
			t.Fatalf("dead deliveries = %v, %v; want 1", ids, err)
		}
		return tx.StartRound(ctx, now.Add(time.Hour), ids...)
	})
	again, _ := s.ClaimDeliveries(ctx, "one", []string{"a"}, now.Add(time.Hour), time.Minute, 10)
	if len(again) != 1 || again[0].RoundAttempts != 0 || again[0].AttemptCount != 2 || !again[0].RoundStartedAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("after a retry = %+v, want a new round (0 attempts in it, 2 in all)", again)
	}
}

// testAnyArrivalOrder delivers one session's events in many random orders,
// with repeats: the state is always the newest event's, every event is in
// the history once, and exactly the events that were newest when they
// arrived notified.
func testAnyArrivalOrder(t *testing.T, s kycd.Store) {
	rnd := rand.New(rand.NewPCG(1, 2))
	statuses := []kycd.Status{kycd.StatusRejected, kycd.StatusReview, kycd.StatusVerified, kycd.StatusExpired}
	for round := range 20 {
		sid := uuid.NewString()
		var events []*kycd.Event
		for i := range 6 {
			// Few distinct timestamps, so ties broken by id happen often.
			ev := sessionEvent(sid, statuses[rnd.IntN(len(statuses))], time.Duration(rnd.IntN(3))*time.Second)
			ev.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", round, i*7919%97)
			events = append(events, ev)
		}
		// The rule, spelled out here rather than taken from kycd.Supersedes.
		newer := func(a, b *kycd.Event) bool {
			if !a.Timestamp.Equal(b.Timestamp) {
				return a.Timestamp.After(b.Timestamp)
			}
			return a.ID > b.ID
		}
		newest := events[0]
		for _, ev := range events[1:] {
			if newer(ev, newest) {
				newest = ev
			}
		}
		order := rnd.Perm(len(events))
		order = append(order, order[rnd.IntN(len(order))]) // one repeat delivery
		var cur *kycd.Event
		notified := 0
		for _, i := range order {
			c := *events[i]
			res := record(t, s, &c)
			wantApplied := !res.Duplicate && (cur == nil || newer(&c, cur))
			if wantApplied {
				cur = events[i]
			}
			if (res.Outcome == kycd.OutcomeApplied) != wantApplied || (res.NotificationID != "") != wantApplied {
				t.Fatalf("round %d: event %s = %+v, want applied=%v", round, c.ID, res, wantApplied)
			}
			if res.NotificationID != "" {
				notified++
			}
		}
		sess := session(t, s, sid)
		if sess.Status != newest.Status || sess.StatusEventID != newest.ID || !sess.StatusAt.Equal(newest.Timestamp) {
			t.Fatalf("round %d: session = %s from %s, want %s from %s", round, sess.Status, sess.StatusEventID, newest.Status, newest.ID)
		}
		if len(sess.History) != len(events) {
			t.Fatalf("round %d: history has %d entries, want %d", round, len(sess.History), len(events))
		}
		applied := 0
		for _, h := range sess.History {
			if h.Applied {
				applied++
			}
		}
		if applied != notified {
			t.Fatalf("round %d: %d history entries applied but %d notifications", round, applied, notified)
		}
	}
}

func testListsAndStats(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	var rejected []string
	for i := range 7 {
		ev := sessionEvent(uuid.NewString(), kycd.StatusRejected, time.Duration(i)*time.Minute)
		record(t, s, ev)
		rejected = append(rejected, ev.SessionID)
	}
	verified := sessionEvent(uuid.NewString(), kycd.StatusVerified, time.Hour)
	verified.Subject.ID = uuid.NewString()
	record(t, s, verified)

	// Pages of 3 walk every rejected session once, newest first.
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, err := reads(s).Sessions(ctx, kycd.SessionFilter{Status: kycd.StatusRejected, Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Sessions {
			seen = append(seen, it.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != len(rejected) {
		t.Fatalf("paged through %d rejected sessions, want %d", len(seen), len(rejected))
	}
	for i := range seen {
		if seen[i] != rejected[len(rejected)-1-i] {
			t.Fatalf("page order = %v, want newest first %v", seen, rejected)
		}
	}
	bySubject, err := reads(s).Sessions(ctx, kycd.SessionFilter{SubjectID: verified.Subject.ID})
	if err != nil || len(bySubject.Sessions) != 1 || bySubject.Sessions[0].ID != verified.SessionID || bySubject.Sessions[0].Status != kycd.StatusVerified {
		t.Fatalf("sessions of one subject = %+v, %v", bySubject, err)
	}
	if _, err := reads(s).Sessions(ctx, kycd.SessionFilter{Cursor: "not-a-cursor"}); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("a made-up cursor = %v, want EINVALID", err)
	}

	events, err := reads(s).Events(ctx, kycd.EventFilter{Type: "kyc_session_verified"})
	if err != nil || len(events.Events) != 1 || events.Events[0].ID != verified.ID || events.Events[0].Body != nil {
		t.Fatalf("verified events = %+v, %v; want the one event without its body", events, err)
	}
	all, err := reads(s).Events(ctx, kycd.EventFilter{Limit: 5})
	if err != nil || len(all.Events) != 5 || all.NextCursor == "" {
		t.Fatalf("first page of events = %d, cursor %q, %v", len(all.Events), all.NextCursor, err)
	}
	rest, err := reads(s).Events(ctx, kycd.EventFilter{Limit: 5, Cursor: all.NextCursor})
	if err != nil || len(rest.Events) != 3 || rest.NextCursor != "" {
		t.Fatalf("second page of events = %d, cursor %q, %v; want the last 3", len(rest.Events), rest.NextCursor, err)
	}

	st, err := statsSince(s, base, 10)
	if err != nil {
		t.Fatal(err)
	}
	if st.SessionsBy[kycd.StatusRejected] != 7 || st.SessionsBy[kycd.StatusVerified] != 1 {
		t.Fatalf("sessions by status = %v", st.SessionsBy)
	}
	if len(st.TopFailureCodes) != 1 || st.TopFailureCodes[0] != (kycd.CodeCount{Code: "EXPIRED_DOCUMENT", Count: 7}) {
		t.Fatalf("top failure codes = %v, want EXPIRED_DOCUMENT 7", st.TopFailureCodes)
	}
	if len(st.FailuresByDay) != 1 || st.FailuresByDay[0] != (kycd.DayCodeCount{Day: "2026-03-17", Code: "EXPIRED_DOCUMENT", Count: 7}) {
		t.Fatalf("failures by day = %v, want EXPIRED_DOCUMENT 7 on 2026-03-17", st.FailuresByDay)
	}
	if later, _ := statsSince(s, base.Add(3*time.Minute), 10); later == nil || later.TopFailureCodes[0].Count != 4 {
		t.Fatalf("failure codes since +3m = %+v, want 4 (the window counts)", later)
	}
}

// Migrator is a store that brings its own schema up to date.
type Migrator interface {
	kycd.Store
	Migrate(ctx context.Context) error
}

// MigrateConcurrently opens n stores at once with open, as replicas starting
// together would, and migrates each: every migration must succeed.
func MigrateConcurrently(t *testing.T, n int, open func() (Migrator, error)) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Go(func() {
			s, err := open()
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.Migrate(context.Background())
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
}

// statsSince is the stats of a window that began at since.
func statsSince(s kycd.Store, since time.Time, limit int) (*kycd.Stats, error) {
	a := &app.Service{Store: s, Now: func() time.Time { return since.Add(time.Hour) }}
	return a.Stats(context.Background(), time.Hour, limit)
}
