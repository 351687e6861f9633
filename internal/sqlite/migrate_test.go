package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// mainProvider is the goose provider of the main file's migrations.
func mainProvider(t *testing.T, s *Store) *goose.Provider {
	t.Helper()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func execAll(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// v1Rows is a database of the first schema: a session rejected by its
// newer event with two checks (reasons with and without category, a check
// without reasons) and a stale older event, a subject's level, an unhandled
// event whose body was purged, and a notification with a delivery that was
// attempted once.
var v1Rows = []string{
	`INSERT INTO events (id, type, ts, received_at, body, body_hash, outcome, session_id) VALUES
		('e1', 'kyc_session_failed', '2026-03-01T12:00:00.123456000Z', '2026-03-01T12:00:01.000000000Z', '{"id":"e1"}', 'h1', 'applied', 's1'),
		('e2', 'kyc_session_verified', '2026-03-01T11:00:00.000000000Z', '2026-03-01T12:00:02.500000000Z', '{"id":"e2"}', 'h2', 'stale', 's1'),
		('e3', 'kyc_state_updated', '2026-03-01T10:00:00.000000000Z', '2026-03-01T12:00:03.000000000Z', '{"id":"e3"}', 'h3', 'applied', NULL),
		('e4', 'viban_created', '2026-02-01T10:00:00.000000000Z', '2026-02-01T10:00:00.000000000Z', NULL, 'h4', 'unhandled', NULL)`,
	`INSERT INTO subjects (type, id, level, level_at, level_event_id) VALUES
		('user', 'u1', 'REGULAR', '2026-03-01T10:00:00.000000000Z', 'e3')`,
	`INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id) VALUES
		('s1', 'user', 'u1', 'REJECTED', '2026-03-01T12:00:00.123456000Z', 'e1')`,
	`INSERT INTO session_history (session_id, event_id, event, ts, received_at, status, applied) VALUES
		('s1', 'e1', 'kyc_session_failed', '2026-03-01T12:00:00.123456000Z', '2026-03-01T12:00:01.000000000Z', 'REJECTED', 1),
		('s1', 'e2', 'kyc_session_verified', '2026-03-01T11:00:00.000000000Z', '2026-03-01T12:00:02.500000000Z', 'VERIFIED', 0)`,
	`INSERT INTO session_checks (session_id, position, type, state) VALUES
		('s1', 0, 'document-verification', 'Refused'), ('s1', 1, 'face-matching', 'Accepted')`,
	`INSERT INTO check_reasons (session_id, check_position, position, type, code, message, category) VALUES
		('s1', 0, 0, 'document', 'EXPIRED_DOCUMENT', 'The provided document has expired', ''),
		('s1', 0, 1, 'document', 'BLURRY', 'Blurry "photo"', 'quality')`,
	`INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES
		('n1', 'kyc.session.rejected', 'e1', '{"id":"n1"}', '2026-03-01T12:00:01.000000000Z')`,
	`INSERT INTO deliveries (id, notification_id, sink, state, attempts, round_attempts, round_started_at, next_attempt_at, last_error, created_at, updated_at) VALUES
		('d1', 'n1', 'crm', 'pending', 1, 1, '2026-03-01T12:00:01.000000000Z', '2026-03-01T12:00:05.000000000Z', 'boom', '2026-03-01T12:00:01.000000000Z', '2026-03-01T12:00:02.000000000Z')`,
	`INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error) VALUES
		('d1', 1, '2026-03-01T12:00:01.000000000Z', 12, 'retry', 503, 'boom')`,
}

var v1Session = &kycd.Session{
	ID: "s1", Subject: kycd.SubjectRef{Type: "user", ID: "u1"}, Status: kycd.StatusRejected,
	StatusAt: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), StatusEventID: "e1",
	Checks: []kycd.Check{
		{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{
			{Type: "document", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired"},
			{Type: "document", Code: "BLURRY", Message: `Blurry "photo"`, Category: "quality"},
		}},
		{Type: "face-matching", State: "Accepted", Reasons: []kycd.Reason{}},
	},
	Failures: []kycd.Failure{
		{CheckType: "document-verification", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired"},
		{CheckType: "document-verification", Code: "BLURRY", Message: `Blurry "photo"`},
	},
	History: []kycd.HistoryEntry{
		{EventID: "e2", Event: "kyc_session_verified", Timestamp: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC),
			ReceivedAt: time.Date(2026, 3, 1, 12, 0, 2, 500000000, time.UTC), Status: kycd.StatusVerified},
		{EventID: "e1", Event: "kyc_session_failed", Timestamp: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC),
			ReceivedAt: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC), Status: kycd.StatusRejected, Applied: true},
	},
	Version: 1, // one applied event: a migrated session has its version too
}

// openV1 opens a store on a new file migrated to the first schema only,
// holding v1Rows.
func openV1(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "kycd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := mainProvider(t, s).UpTo(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	execAll(t, s.w, v1Rows...)
	return s
}

func TestMigrateFromV1(t *testing.T) {
	s := openV1(t)
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkV1Data(t, s)

	// The JSON is what encoding/json writes, so that rows migrated and rows
	// projected since read alike.
	var checks, history string
	if err := s.r.QueryRowContext(t.Context(), `SELECT checks, history FROM sessions WHERE id = 's1'`).Scan(&checks, &history); err != nil {
		t.Fatal(err)
	}
	wantChecks, _ := json.Marshal(v1Session.Checks)
	wantHistory, _ := json.Marshal(v1Session.History)
	if checks != string(wantChecks) || history != string(wantHistory) {
		t.Fatalf("migrated JSON:\n%s\n%s\nwant\n%s\n%s", checks, history, wantChecks, wantHistory)
	}

	// The log goes on after the old events.
	e := &kycd.LogEntry{EventID: "e5", ReceivedAt: time.Now(), Body: []byte(`{}`), BodyHash: "h5"}
	if err := s.AppendLog(ctx, []*kycd.LogEntry{e}); err != nil || e.Seq != 5 {
		t.Fatalf("AppendLog after the migration: seq %d, %v; want 5", e.Seq, err)
	}
	if left, err := s.UnprojectedLog(ctx, 1<<62, 10); err != nil || len(left) != 1 || left[0].Seq != 5 {
		t.Fatalf("UnprojectedLog = %+v, %v; want only the new entry", left, err)
	}
}

// checkV1Data checks that every row of v1Rows reads back as it did.
func checkV1Data(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	sess, err := s.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	sess.Complete() // as every reader gets it
	if !reflect.DeepEqual(sess, v1Session) {
		t.Fatalf("session =\n%+v\nwant\n%+v", sess, v1Session)
	}
	ev, err := s.Event(ctx, "e1")
	if err != nil || string(ev.Body) != `{"id":"e1"}` || ev.Outcome != "applied" || ev.SessionID != "s1" || ev.BodyHash != "h1" {
		t.Fatalf("Event(e1) = %+v, %v", ev, err)
	}
	if ev, err := s.Event(ctx, "e4"); err != nil || ev.Body != nil {
		t.Fatalf("Event(e4) = %+v, %v; want without its purged body", ev, err)
	}
	sub, err := (&app.Service{Store: s}).Subject(ctx, "u1", "")
	if err != nil || sub.Level != "REGULAR" || len(sub.Sessions) != 1 {
		t.Fatalf("Subject = %+v, %v", sub, err)
	}
	known, err := s.KnownEvents(ctx, []string{"e1", "e2", "e3", "e4"})
	if err != nil || len(known) != 4 || known["e3"] != (kycd.KnownEvent{Seq: 3, BodyHash: "h3"}) {
		t.Fatalf("KnownEvents = %+v, %v", known, err)
	}
	if head, err := s.LogHead(ctx); err != nil || head != 4 {
		t.Fatalf("LogHead = %d, %v; want 4", head, err)
	}
	if left, err := s.UnprojectedLog(ctx, 1<<62, 10); err != nil || len(left) != 0 {
		t.Fatalf("UnprojectedLog = %+v, %v; want every old event projected", left, err)
	}
	d, err := s.Delivery(ctx, "d1")
	if err != nil || d.NotificationID != "n1" || d.AttemptCount != 1 || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 503 {
		t.Fatalf("Delivery = %+v, %v", d, err)
	}
	st, err := (&app.Service{Store: s, Now: func() time.Time { return time.Date(2026, 2, 1, 1, 0, 0, 0, time.UTC) }}).Stats(ctx, time.Hour, 10)
	if err != nil || len(st.TopFailureCodes) != 2 || st.SessionsBy[kycd.StatusRejected] != 1 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	// events_v1 is gone, and with it every table of the first schema.
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE name IN
		('events_v1', 'sessions_v1', 'subjects_v1', 'session_history', 'session_checks', 'check_reasons')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d old tables left, %v", n, err)
	}
}

// A move of the bodies interrupted after a part of them reached the log
// (or done by two processes at once) finishes on the next Migrate.
func TestMigrateFromV1Interrupted(t *testing.T) {
	s := openV1(t)
	ctx := context.Background()
	if err := s.migrate(ctx, s.lw, logMigrations, "logmigrations"); err != nil {
		t.Fatal(err)
	}
	if err := s.migrate(ctx, s.w, migrations, "migrations"); err != nil {
		t.Fatal(err)
	}
	execAll(t, s.lw, `INSERT INTO event_log (seq, event_id, received_at, body, body_hash) VALUES (1, 'e1', '2026-03-01T12:00:01.000000000Z', '{"id":"e1"}', 'h1')`)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkV1Data(t, s)
}

// Down goes back to the first schema without losing the projection, and
// up again finds the bodies in the log file.
func TestMigrateDownAndUp(t *testing.T) {
	s := openV1(t)
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p := mainProvider(t, s)
	if _, err := p.DownTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT (SELECT count(*) FROM session_history) + (SELECT count(*) FROM check_reasons) + (SELECT count(*) FROM events WHERE body IS NULL)`).Scan(&n); err != nil || n != 8 {
		t.Fatalf("first schema after down: %d rows, %v; want 2 history entries, 2 reasons, 4 events without body", n, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkV1Data(t, s)
}

// Processes starting at once on a database of the first schema all migrate
// it, and it is migrated once.
func TestMigrateFromV1Concurrently(t *testing.T) {
	first := openV1(t)
	var path string
	if err := first.r.QueryRowContext(t.Context(), `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil {
		t.Fatal(err)
	}
	stores := []*Store{first}
	for range 3 {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	errs := make(chan error, len(stores))
	for _, s := range stores {
		go func() { errs <- s.Migrate(context.Background()) }()
	}
	for range stores {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkV1Data(t, first)
}

// Schema tells a file never migrated, one behind and one up to date apart,
// and changes nothing; OpenExisting creates no file.
func TestSchemaWithoutMigrating(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kycd.db")
	if _, err := OpenExisting(t.Context(), path); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("OpenExisting of a missing file = %v, want ENOTFOUND", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenExisting left a file behind: %v", err)
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sources, _ := fs.Glob(migrations, "migrations/*.sql")
	logSources, _ := fs.Glob(logMigrations, "logmigrations/*.sql")
	sc, err := s.Schema(ctx)
	if err != nil || sc.Current() || sc.Version != 0 || sc.Pending != len(sources)+len(logSources) || sc.Latest < 5 {
		t.Fatalf("Schema of a new file = %+v, %v; want version 0, all %d migrations pending", sc, err, len(sources)+len(logSources))
	}
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("Schema created %d objects in a file never migrated (%v)", n, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if sc, err := s.Schema(ctx); err != nil || !sc.Current() || sc.Version != sc.Latest {
		t.Fatalf("Schema after Migrate = %+v, %v; want current", sc, err)
	}
	if _, err := mainProvider(t, s).DownTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if sc, err := s.Schema(ctx); err != nil || sc.Current() || sc.Version != 4 || sc.Pending != len(sources)-4 {
		t.Fatalf("Schema one migration down = %+v, %v; want version 4, %d pending", sc, err, len(sources)-4)
	}
	s.Close()
	again, err := OpenExisting(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if sc, err := again.Schema(ctx); err != nil || sc.Version != 4 {
		t.Fatalf("Schema through OpenExisting = %+v, %v", sc, err)
	}
}
