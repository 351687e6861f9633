package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// These tests drive the driver as the projector does (append, claim, read
// the current rows, plan with kycd.PlanBatch, apply, commit), on real files.

var base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// harness appends events to a store and projects them, keeping the decoded
// events by seq as the projector's appender hands them over.
type harness struct {
	t      *testing.T
	s      *sqlite.Store
	events map[int64]*kycd.Event
	opt    kycd.PlanOptions
}

func newHarness(t *testing.T, s *sqlite.Store, sinks ...string) *harness {
	return &harness{t: t, s: s, events: map[int64]*kycd.Event{}, opt: kycd.PlanOptions{Sinks: kycd.Routes(sinks...)}}
}

func (h *harness) append(evs ...*kycd.Event) []*kycd.LogEntry {
	h.t.Helper()
	var entries []*kycd.LogEntry
	for _, ev := range evs {
		entries = append(entries, &kycd.LogEntry{EventID: ev.ID, ReceivedAt: ev.ReceivedAt, Body: ev.Body, BodyHash: ev.BodyHash, Event: ev})
	}
	if err := h.s.AppendLog(context.Background(), entries); err != nil {
		h.t.Fatal(err)
	}
	for _, e := range entries {
		h.events[e.Seq] = e.Event
	}
	return entries
}

// project projects one batch of up to limit entries and returns its plan.
func (h *harness) project(limit int) *kycd.Plan {
	h.t.Helper()
	ctx := context.Background()
	tx, err := h.s.BeginProjection(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	entries, err := tx.ClaimLog(ctx, limit, 1<<30)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Body == nil {
			h.t.Fatalf("claimed entry %d without its body", e.Seq)
		}
		e.Event = h.events[e.Seq]
	}
	cur, err := tx.Current(ctx, kycd.Keys(entries))
	if err != nil {
		h.t.Fatal(err)
	}
	p := kycd.PlanBatch(entries, cur, h.opt)
	if err := tx.Apply(ctx, p); err != nil {
		h.t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func newEvent(typ string, ts time.Time) *kycd.Event {
	id := uuid.NewString()
	body := fmt.Sprintf(`{"id":%q,"event":%q}`, id, typ)
	return &kycd.Event{ID: id, Type: typ, Timestamp: ts, ReceivedAt: time.Now().UTC(), Body: []byte(body), BodyHash: "hash-" + id}
}

var typeOf = map[kycd.Status]string{
	kycd.StatusRejected: "kyc_session_failed",
	kycd.StatusVerified: "kyc_session_verified",
	kycd.StatusReview:   "kyc_session_manual_review",
}

func sessionEvent(sid string, sub kycd.SubjectRef, status kycd.Status, ts time.Time, checks ...kycd.Check) *kycd.Event {
	ev := newEvent(typeOf[status], ts)
	ev.SessionID, ev.Subject, ev.Status, ev.Checks = sid, sub, status, checks
	return ev
}

func levelEvent(sub kycd.SubjectRef, level string, ts time.Time) *kycd.Event {
	ev := newEvent("kyc_state_updated", ts)
	ev.Subject, ev.Level = sub, level
	return ev
}

func user() kycd.SubjectRef { return kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()} }

var refused = kycd.Check{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{
	{Type: "document", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired"},
	{Type: "document", Code: "BLURRY", Message: "Blurry <photo> & co", Category: "quality"},
}}

// SQLite numbers the log 1, 2, 3… in commit order (the projection's
// watermark relies on it), and an entry is not known before it is
// projected: KnownEvents reads the projection, not the log. The rest of
// the log's contract is the conformance suite's (storetest).
func TestAppendLog(t *testing.T) {
	s := sqlitetest.Open(t)
	ctx := context.Background()
	h := newHarness(t, s)
	first := h.append(newEvent("a", base), newEvent("b", base), newEvent("c", base))
	second := h.append(newEvent("d", base))
	all := append(first, second...)
	for i, e := range all {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d, want %d: seqs follow slice and commit order", i, e.Seq, i+1)
		}
	}
	if known, err := s.KnownEvents(ctx, []string{all[0].EventID}); err != nil || len(known) != 0 {
		t.Fatalf("KnownEvents before projection = %v, %v; want none: appending does not project", known, err)
	}
}

func TestProjection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kycd.db")
	s := sqlitetest.OpenPath(t, path)
	ctx := context.Background()
	h := newHarness(t, s, "crm", "audit")
	sub, sid := user(), uuid.NewString()
	rejected := sessionEvent(sid, sub, kycd.StatusRejected, base, refused)
	stale := sessionEvent(sid, sub, kycd.StatusVerified, base.Add(-time.Hour))
	level := levelEvent(sub, "REGULAR", base)
	expiring := newEvent("kyc_expiration_warning", base)
	expiring.Subject, expiring.Expiration = user(), &kycd.Expiration{Date: "2026-04-01", DaysRemaining: 30}
	unhandled := newEvent("viban_created", base)
	h.append(rejected, stale, level, expiring, unhandled)

	p := h.project(100)
	if len(p.Events) != 5 || len(p.Notifications) != 3 {
		t.Fatalf("plan has %d events, %d notifications; want 5 and 3", len(p.Events), len(p.Notifications))
	}
	if left, err := s.UnprojectedLog(ctx, 1<<62, 10); err != nil || len(left) != 0 {
		t.Fatalf("UnprojectedLog after projection = %d entries, %v; want none", len(left), err)
	}
	known, err := s.KnownEvents(ctx, []string{rejected.ID, level.ID, "unknown"})
	if err != nil || len(known) != 2 || known[rejected.ID] != (kycd.KnownEvent{Seq: 1, BodyHash: rejected.BodyHash}) || known[level.ID].Seq != 3 {
		t.Fatalf("KnownEvents = %+v, %v", known, err)
	}

	sess, err := s.Session(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	sess.Complete() // as every reader gets it
	if sess.Status != kycd.StatusRejected || sess.Subject != sub || !sess.StatusAt.Equal(base) || sess.StatusEventID != rejected.ID {
		t.Fatalf("session = %+v", sess)
	}
	if len(sess.Checks) != 1 || !slices.Equal(sess.Checks[0].Reasons, refused.Reasons) {
		t.Fatalf("checks = %+v, want %+v", sess.Checks, refused)
	}
	if want := kycd.Failures([]kycd.Check{refused}); !slices.Equal(sess.Failures, want) {
		t.Fatalf("failures = %+v, want %+v", sess.Failures, want)
	}
	if len(sess.History) != 2 || sess.History[0].EventID != stale.ID || sess.History[0].Applied || !sess.History[1].Applied ||
		!sess.History[1].Timestamp.Equal(base) || sess.History[1].Timestamp.Location() != time.UTC {
		t.Fatalf("history = %+v, want the stale event first, not applied, times in UTC", sess.History)
	}

	subj, err := reads(s).Subject(ctx, sub.ID, "")
	if err != nil || subj.Type != kycd.SubjectUser || subj.Level != "REGULAR" || !subj.LevelAt.Equal(base) || len(subj.Sessions) != 1 {
		t.Fatalf("Subject = %+v, %v", subj, err)
	}
	if subj, err := reads(s).Subject(ctx, expiring.Subject.ID, ""); err != nil || subj.Level != "" || len(subj.Sessions) != 0 {
		t.Fatalf("Subject of an expiration warning = %+v, %v; want found without level", subj, err)
	}
	if _, err := reads(s).Subject(ctx, sub.ID, kycd.SubjectBusiness); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("Subject under another type = %v, want ENOTFOUND", err)
	}
	// A subject known only by its sessions.
	other, osid := user(), uuid.NewString()
	h.append(sessionEvent(osid, other, kycd.StatusVerified, base))
	h.project(10)
	if subj, err := reads(s).Subject(ctx, other.ID, ""); err != nil || subj.Level != "" || len(subj.Sessions) != 1 || subj.Sessions[0].ID != osid {
		t.Fatalf("Subject known by its session = %+v, %v", subj, err)
	}

	ev, err := s.Event(ctx, rejected.ID)
	if err != nil || string(ev.Body) != string(rejected.Body) || ev.Outcome != kycd.OutcomeApplied || ev.SessionID != sid || !ev.Timestamp.Equal(base) {
		t.Fatalf("Event = %+v, %v", ev, err)
	}
	if ev, err := s.Event(ctx, stale.ID); err != nil || ev.Outcome != kycd.OutcomeStale {
		t.Fatalf("stale Event = %+v, %v", ev, err)
	}
	if ev, err := s.Event(ctx, unhandled.ID); err != nil || ev.Outcome != kycd.OutcomeUnhandled {
		t.Fatalf("unhandled Event = %+v, %v", ev, err)
	}

	page, err := (&app.Service{Store: s}).Deliveries(ctx, kycd.DeliveryFilter{Limit: 100})
	if err != nil || len(page.Items) != 8 {
		t.Fatalf("deliveries %v, %v; want 8 (4 notifications, 2 sinks)", page, err)
	}
	for _, d := range page.Items {
		if d.State != kycd.DeliveryPending {
			t.Fatalf("delivery %+v, want pending", d)
		}
	}
	full, err := s.Delivery(ctx, page.Items[0].ID)
	if err != nil || len(full.Payload) == 0 {
		t.Fatalf("Delivery = %+v, %v; want its notification's payload", full, err)
	}

	st, err := statsSince(s, base.Add(-24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	wantCodes := []kycd.CodeCount{{Code: "BLURRY", Count: 1}, {Code: "EXPIRED_DOCUMENT", Count: 1}}
	if st.SessionsBy[kycd.StatusRejected] != 1 || st.SessionsBy[kycd.StatusVerified] != 1 || !slices.Equal(st.TopFailureCodes, wantCodes) {
		t.Fatalf("Stats = %+v", st)
	}
	wantDays := []kycd.DayCodeCount{{Day: "2026-03-01", Code: "BLURRY", Count: 1}, {Day: "2026-03-01", Code: "EXPIRED_DOCUMENT", Count: 1}}
	if !slices.Equal(st.FailuresByDay, wantDays) {
		t.Fatalf("FailuresByDay = %+v, want %+v", st.FailuresByDay, wantDays)
	}
	if st, _ := statsSince(s, base.Add(time.Hour), 10); len(st.TopFailureCodes) != 0 {
		t.Fatalf("Stats since after the rejection = %+v, want no codes", st)
	}

	list, err := reads(s).Sessions(ctx, kycd.SessionFilter{Status: kycd.StatusRejected})
	if err != nil || len(list.Sessions) != 1 || list.Sessions[0].ID != sid {
		t.Fatalf("Sessions(REJECTED) = %+v, %v", list, err)
	}

	// JSON is stored as text: to SQLite's JSON functions a blob is JSONB.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var types string
	if err := db.QueryRowContext(ctx, `SELECT group_concat(DISTINCT typeof(checks) || typeof(history)) FROM sessions`).Scan(&types); err != nil || types != "texttext" {
		t.Fatalf("sessions hold checks and history as %q, %v; want text", types, err)
	}
}

// The log is another file with its own writer: a projection transaction
// does not hold up acknowledgements.
func TestAppendDuringProjection(t *testing.T) {
	s := sqlitetest.Open(t)
	ctx := context.Background()
	h := newHarness(t, s)
	h.append(newEvent("viban_created", base))
	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.ClaimLog(ctx, 10, 1<<30); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.AppendLog(short, []*kycd.LogEntry{{EventID: "e", ReceivedAt: base, Body: []byte(`{}`), BodyHash: "h"}}); err != nil {
		t.Fatalf("AppendLog during a projection = %v", err)
	}
	if _, err := s.KnownEvents(short, []string{"e"}); err != nil {
		t.Fatalf("KnownEvents during a projection = %v", err)
	}
}

func TestEventsList(t *testing.T) {
	s := sqlitetest.Open(t)
	ctx := context.Background()
	h := newHarness(t, s)
	var ids []string
	for i := range 7 {
		typ := "viban_created"
		if i%2 == 1 {
			typ = "kyc_session_created"
		}
		ev := newEvent(typ, base)
		ids = append(ids, ev.ID)
		h.append(ev)
	}
	h.project(100)
	page := func(f kycd.EventFilter) []string {
		t.Helper()
		var got []string
		for {
			p, err := reads(s).Events(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Events {
				got = append(got, e.ID)
			}
			if p.NextCursor == "" {
				return got
			}
			f.Cursor = p.NextCursor
		}
	}
	want := slices.Clone(ids)
	slices.Reverse(want)
	if got := page(kycd.EventFilter{Limit: 2}); !slices.Equal(got, want) {
		t.Fatalf("pages = %v, want %v (last received first)", got, want)
	}
	if got := page(kycd.EventFilter{Limit: 2, Type: "kyc_session_created"}); !slices.Equal(got, []string{ids[5], ids[3], ids[1]}) {
		t.Fatalf("pages of one type = %v", got)
	}
	if _, err := reads(s).Events(ctx, kycd.EventFilter{Cursor: "nonsense"}); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("Events with a foreign cursor = %v, want EINVALID", err)
	}
	// A cursor whose row is gone (a rebuild) resumes by time.
	p, err := reads(s).Events(ctx, kycd.EventFilter{Cursor: kycd.EncodeCursor(time.Now().Add(time.Hour), "gone")})
	if err != nil || len(p.Events) != 7 {
		t.Fatalf("Events after an unknown newer row = %d, %v; want all 7", len(p.Events), err)
	}
}
