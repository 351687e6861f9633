package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// A database of the first schema keeps its data through migration 00002
// (and back down and up again): sessions with their checks and history,
// events with their bodies, levels, the outbox.
func TestMigrateFromTheFirstSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, conn := atVersion(t, 1)

	sessionID, userID := uuid.NewString(), uuid.NewString()
	user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: userID}
	// ids ordered so that the two events received at the same instant list
	// in id order, as the first schema listed them.
	review, rejected, stale, level, unhandled := "10000000-0000-4000-8000-000000000001", "20000000-0000-4000-8000-000000000002",
		"30000000-0000-4000-8000-000000000003", "40000000-0000-4000-8000-000000000004", "50000000-0000-4000-8000-000000000005"
	recv := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
	old := []struct {
		id, typ    string
		ts, at     time.Time
		body       []byte
		outcome    string
		session    *string
		historyApp bool
		status     kycd.Status
	}{
		{level, "kyc_state_updated", base.Add(-time.Hour), recv("2026-03-17T15:00:00.5Z"), nil, kycd.OutcomeApplied, nil, false, ""},
		{review, "kyc_session_manual_review", base.Add(-time.Minute), recv("2026-03-17T16:00:05.1234Z"), []byte(`{"id":"review"}`), kycd.OutcomeApplied, &sessionID, true, kycd.StatusReview},
		{rejected, "kyc_session_failed", base, recv("2026-03-17T16:00:06Z"), []byte(`{"id":"rejected"}`), kycd.OutcomeApplied, &sessionID, true, kycd.StatusRejected},
		{stale, "kyc_session_verified", base.Add(-2 * time.Minute), recv("2026-03-17T16:00:06Z"), []byte(`{"id":"stale"}`), kycd.OutcomeStale, &sessionID, false, kycd.StatusVerified},
		{unhandled, "kyc_something_new", base, recv("2026-03-17T16:00:07.1Z"), []byte(`{"id":"unhandled"}`), kycd.OutcomeUnhandled, nil, false, ""},
	}
	notificationID, deliveryID := uuid.NewString(), uuid.NewString()
	b := &pgx.Batch{}
	for _, e := range old {
		b.Queue(`INSERT INTO events (id, type, ts, received_at, body, body_hash, outcome, session_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.id, e.typ, e.ts, e.at, e.body, "hash-"+e.id, e.outcome, e.session)
		if e.session != nil {
			b.Queue(`INSERT INTO session_history (session_id, event_id, event, ts, received_at, status, applied) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				sessionID, e.id, e.typ, e.ts, e.at, e.status, e.historyApp)
		}
	}
	b.Queue(`INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id) VALUES ($1, 'user', $2, 'REJECTED', $3, $4)`,
		sessionID, userID, base, rejected)
	for i, c := range rejectedChecks {
		b.Queue(`INSERT INTO session_checks (session_id, position, type, state) VALUES ($1, $2, $3, $4)`, sessionID, i, c.Type, c.State)
		for j, r := range c.Reasons {
			b.Queue(`INSERT INTO check_reasons (session_id, check_position, position, type, code, message, category) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				sessionID, i, j, r.Type, r.Code, r.Message, r.Category)
		}
	}
	b.Queue(`INSERT INTO subjects (type, id, level, level_at, level_event_id) VALUES ('user', $1, 'REGULAR', $2, $3)`, userID, base.Add(-time.Hour), level)
	b.Queue(`INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES ($1, 'kyc.session.rejected', $2, '{"id":"n"}', $3)`,
		notificationID, rejected, base)
	b.Queue(`INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at) VALUES ($1, $2, 'log', 'pending', $3, $3, $3, $3)`,
		deliveryID, notificationID, base)
	b.Queue(`INSERT INTO settings (key, value) VALUES ('k', 'v')`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	want := &kycd.Session{
		ID: sessionID, Subject: user, Status: kycd.StatusRejected, StatusAt: base, StatusEventID: rejected,
		Checks: rejectedChecks, Failures: kycd.Failures(rejectedChecks),
	}
	for _, i := range []int{3, 1, 2} { // by (timestamp, id)
		e := old[i]
		want.History = append(want.History, kycd.HistoryEntry{EventID: e.id, Event: e.typ, Timestamp: e.ts, ReceivedAt: e.at, Status: e.status, Applied: e.historyApp})
	}
	want.Version = 2 // the review and the rejection were applied: a migrated session has its version too
	checkMigrated := func(when string) {
		t.Helper()
		got, err := s.Session(ctx, sessionID)
		if err == nil {
			got.Complete() // as every reader gets it
		}
		if err != nil || !equalJSON(got, want) {
			t.Fatalf("%s: session = %+v, %v; want %+v", when, got, err, want)
		}
		for _, e := range old {
			rec, err := s.Event(ctx, e.id)
			if err != nil || !bytes.Equal(rec.Body, e.body) || !rec.ReceivedAt.Equal(e.at) || rec.Outcome != e.outcome || rec.Type != e.typ {
				t.Fatalf("%s: event %s = %+v, %v", when, e.id, rec, err)
			}
		}
		page, err := reads(s).Events(ctx, kycd.EventFilter{})
		if err != nil || len(page.Events) != len(old) {
			t.Fatalf("%s: events = %+v, %v", when, page, err)
		}
		for i, id := range []string{unhandled, rejected, stale, review, level} { // received_at DESC, id
			if page.Events[i].ID != id {
				t.Fatalf("%s: events listed %+v, want %s at %d", when, page.Events, id, i)
			}
		}
		sub, err := reads(s).Subject(ctx, userID, "")
		if err != nil || sub.Level != "REGULAR" || len(sub.Sessions) != 1 {
			t.Fatalf("%s: subject = %+v, %v", when, sub, err)
		}
		if d, err := s.Delivery(ctx, deliveryID); err != nil || d.NotificationID != notificationID {
			t.Fatalf("%s: delivery = %+v, %v", when, d, err)
		}
		if v, err := s.Setting(ctx, "k"); err != nil || v != "v" {
			t.Fatalf("%s: setting = %q, %v", when, v, err)
		}
	}
	checkMigrated("migrated")

	// The JSON is spelt as the projector spells it, but for the HTML
	// escapes of encoding/json (both read back the same).
	var checks, history string
	if err := conn.QueryRow(ctx, `SELECT checks::text, history::text FROM sessions WHERE id = $1`, sessionID).Scan(&checks, &history); err != nil {
		t.Fatal(err)
	}
	if w := marshalNoEscape(t, want.Checks); checks != w {
		t.Errorf("migrated checks\n%s\nwant\n%s", checks, w)
	}
	if w := marshalNoEscape(t, want.History); history != w {
		t.Errorf("migrated history\n%s\nwant\n%s", history, w)
	}
	if head, err := s.LogHead(ctx); err != nil || head != int64(len(old)) {
		t.Fatalf("LogHead = %d, %v; want %d", head, err, len(old))
	}
	if rest, err := s.UnprojectedLog(ctx, 1<<62, 10); err != nil || len(rest) != 0 {
		t.Fatalf("unprojected after migration = %v, %v; want none", seqs(rest), err)
	}
	if known, err := s.KnownEvents(ctx, []string{level, unhandled}); err != nil || known[level].Seq != 1 || known[unhandled].Seq != 5 {
		t.Fatalf("KnownEvents = %v, %v; want seqs in arrival order", known, err)
	}

	if err := s.MigrateDownTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM session_history) + (SELECT count(*) FROM check_reasons) + (SELECT count(*) FROM events WHERE body IS NOT NULL)`).Scan(&n); err != nil || n != 3+2+4 {
		t.Fatalf("old tables after migrating down hold %d rows, %v; want 9", n, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkMigrated("down and up again")

	// The new write path carries on from the migrated rows.
	newer := sessionEntry(sessionID, userID, kycd.StatusVerified, time.Minute)
	appendLog(t, s, newer)
	if newer.Seq != int64(len(old))+1 {
		t.Fatalf("first seq after migrating = %d, want %d", newer.Seq, len(old)+1)
	}
	project(t, s, kycd.PlanOptions{Sinks: kycd.Routes("log")}, newer)
	got, err := s.Session(ctx, sessionID)
	if err != nil || got.Status != kycd.StatusVerified || len(got.History) != 4 {
		t.Fatalf("session after a new event = %+v, %v", got, err)
	}

	// A rebuild resets what the retained bodies derived; the level set by
	// a purged event stays.
	if n, err := ingest.ResetProjection(ctx, s); err != nil || n != 5 {
		t.Fatalf("ResetProjection = %d, %v; want 5 entries with a body", n, err)
	}
	if _, err := s.Session(ctx, sessionID); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("session after reset = %v, want ENOTFOUND", err)
	}
	if sub, err := reads(s).Subject(ctx, userID, ""); err != nil || sub.Level != "REGULAR" {
		t.Fatalf("subject after reset = %+v, %v", sub, err)
	}
}

func marshalNoEscape(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// Schema tells a database never migrated, one behind and one up to date
// apart, and creates nothing.
func TestSchemaWithoutMigrating(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := postgrestest.URL(t)
	s, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// Versions are numbered as work began, so some numbers may be
	// missing: every migration is every file.
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) < 5 {
		t.Fatalf("migrations: %d files, %v", len(files), err)
	}
	sc, err := s.Schema(ctx)
	if err != nil || sc.Current() || sc.Version != 0 || sc.Pending != len(files) || sc.Latest < 5 {
		t.Fatalf("Schema of a new database = %+v, %v; want version 0, every migration pending", sc, err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("Schema created %d tables in a database never migrated (%v)", tables, err)
	}
	if err := s.MigrateUpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if sc, err := s.Schema(ctx); err != nil || sc.Current() || sc.Version != 3 || sc.Pending != len(files)-3 {
		t.Fatalf("Schema at version 3 = %+v, %v; want %d pending", sc, err, len(files)-3)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if sc, err := s.Schema(ctx); err != nil || !sc.Current() || sc.Version != sc.Latest {
		t.Fatalf("Schema after Migrate = %+v, %v; want current", sc, err)
	}
}
