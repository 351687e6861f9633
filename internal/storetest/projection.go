package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// Tests of ProjectionTx.Apply: what a plan writes, and the plans it refuses.

var refused = kycd.Check{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{
	{Type: "document", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired"},
	{Type: "document", Code: "BLURRY", Message: "Blurry <photo> & co", Category: "quality"},
}}

func newUser() kycd.SubjectRef { return kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()} }

// subjectSessionEvent is sessionEvent of subject sub.
func subjectSessionEvent(sid string, sub kycd.SubjectRef, status kycd.Status, offset time.Duration, checks ...kycd.Check) *kycd.Event {
	ev := sessionEvent(sid, status, offset)
	ev.Subject, ev.Checks = sub, checks
	return ev
}

func expirationEvent(sub kycd.SubjectRef) *kycd.Event {
	ev := levelEvent(sub, "", 0)
	ev.Type, ev.Expiration = "kyc_expiration_warning", &kycd.Expiration{Date: "2026-04-01", DaysRemaining: 30}
	return ev
}

// testSessionUpdatesAndLevels: rows read in one batch are updated in the
// next at their version; a level takes over a subject recorded without
// one; plans made from rows that changed since are conflicts.
func testSessionUpdatesAndLevels(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	d := newDriver(t, s, "crm")
	sub, sid := newUser(), uuid.NewString()
	d.append(subjectSessionEvent(sid, sub, kycd.StatusRejected, 0, refused))
	d.project(10)
	// A newer event in a later batch updates the row read at version 1.
	d.append(subjectSessionEvent(sid, sub, kycd.StatusVerified, time.Minute), levelEvent(sub, "LIGHT", 0))
	d.project(10)
	// The expiration warning's row without level comes first here; the level
	// takes it over.
	warned := newUser()
	d.append(expirationEvent(warned))
	d.project(10)
	d.append(levelEvent(warned, "REGULAR", 0), levelEvent(sub, "REGULAR", time.Minute))
	d.project(10)

	sess, err := s.Session(ctx, sid)
	if err != nil || sess.Status != kycd.StatusVerified || len(kycd.Failures(sess.Checks)) != 0 || len(sess.History) != 2 || len(sess.Checks) != 0 {
		t.Fatalf("session = %+v, %v; want VERIFIED without failures, two history entries", sess, err)
	}
	for who, want := range map[string]string{sub.ID: "REGULAR", warned.ID: "REGULAR"} {
		if subj, err := reads(s).Subject(ctx, who, ""); err != nil || subj.Level != want {
			t.Fatalf("Subject %s = %+v, %v; want level %s", who, subj, err, want)
		}
	}
	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	cur, err := tx.Current(ctx, kycd.PlanKeys{SessionIDs: []string{sid}, Subjects: []kycd.SubjectRef{sub, warned, {Type: kycd.SubjectBusiness, ID: sub.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := cur.Sessions[sid]; st == nil || st.Version != 2 || len(st.History) != 2 || st.Status != kycd.StatusVerified {
		t.Fatalf("current session = %+v, want version 2", st)
	}
	if l := cur.Levels[sub]; l == nil || l.Version != 2 || l.Level != "REGULAR" {
		t.Fatalf("current level = %+v, want REGULAR at version 2", l)
	}
	if l := cur.Levels[warned]; l == nil || l.Version != 1 {
		t.Fatalf("current level of the warned subject = %+v, want version 1", l)
	}
	if len(cur.Levels) != 2 {
		t.Fatalf("current levels = %+v, want none for the business", cur.Levels)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Plans made from rows that changed since are conflicts, and write
	// nothing.
	stale := *cur.Sessions[sid]
	stale.Version = 1
	for name, p := range map[string]*kycd.Plan{
		"session updated":   {Sessions: []*kycd.SessionState{&stale}},
		"session created":   {Sessions: []*kycd.SessionState{{ID: sid, Subject: sub, Status: kycd.StatusReview, StatusAt: base, StatusEventID: "x"}}},
		"level updated":     {Levels: []*kycd.LevelState{{Subject: sub, Level: "LIGHT", At: base, EventID: "x", Version: 1}}},
		"level created":     {Levels: []*kycd.LevelState{{Subject: warned, Level: "LIGHT", At: base, EventID: "x"}}},
		"level over a row":  {Levels: []*kycd.LevelState{{Subject: sub, Level: "LIGHT", At: base, EventID: "x"}}},
		"version too young": {Levels: []*kycd.LevelState{{Subject: sub, Level: "LIGHT", At: base, EventID: "x", Version: 3}}},
	} {
		tx, err := s.BeginProjection(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.Subjects = []kycd.SubjectRef{newUser()}
		if err := tx.Apply(ctx, p); kycd.ErrorCode(err) != kycd.ECONFLICT {
			t.Errorf("Apply(%s) = %v, want ECONFLICT", name, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := reads(s).Subject(ctx, p.Subjects[0].ID, ""); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("%s: a rolled back plan left subject %+v, %v", name, got, err)
		}
	}
	after := d.current(kycd.PlanKeys{SessionIDs: []string{sid}, Subjects: []kycd.SubjectRef{sub}})
	if after.Sessions[sid].Version != 2 || after.Levels[sub].Version != 2 {
		t.Fatalf("versions after conflicts = %d, %d; want 2, 2", after.Sessions[sid].Version, after.Levels[sub].Version)
	}
}

// testApplyConflicts: the rows Current reads are the ones Apply wrote; an
// event id projected before is the caller's bug: an error, not a write.
func testApplyConflicts(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	d := newDriver(t, s)
	sessionID, user := uuid.NewString(), newUser()
	first, level := subjectSessionEvent(sessionID, user, kycd.StatusRejected, 0, refused), levelEvent(user, "REGULAR", 0)
	entries := d.append(first, level)
	d.project(10)
	keys := kycd.PlanKeys{EventIDs: []string{first.ID, level.ID}, SessionIDs: []string{sessionID}, Subjects: []kycd.SubjectRef{user}}
	cur := d.current(keys)
	if len(cur.Events) != 2 || cur.Events[first.ID] != (kycd.KnownEvent{Seq: entries[0].Seq, BodyHash: first.BodyHash}) ||
		cur.Sessions[sessionID] == nil || cur.Sessions[sessionID].Version != 1 || cur.Levels[user] == nil || cur.Levels[user].Version != 1 {
		t.Fatalf("current = %+v", cur)
	}
	st := cur.Sessions[sessionID]
	if st.Status != kycd.StatusRejected || !equalJSON(st.Checks, []kycd.Check{refused}) || len(st.History) != 1 || st.Subject != user ||
		st.StatusEventID != first.ID || !st.StatusAt.Equal(base) {
		t.Fatalf("current session = %+v", st)
	}
	lv := cur.Levels[user]
	if lv.Level != "REGULAR" || lv.EventID != level.ID || !lv.At.Equal(base) {
		t.Fatalf("current level = %+v", lv)
	}

	moved, fresh := *st, *st
	moved.Version, fresh.Version = 7, 0
	movedLevel, freshLevel := *lv, *lv
	movedLevel.Version, freshLevel.Version = 3, 0
	for name, plan := range map[string]*kycd.Plan{
		"session version moved": {Sessions: []*kycd.SessionState{&moved}},
		"session exists":        {Sessions: []*kycd.SessionState{&fresh}},
		"level version moved":   {Levels: []*kycd.LevelState{&movedLevel}},
		"level exists":          {Levels: []*kycd.LevelState{&freshLevel}},
	} {
		tx, err := s.BeginProjection(ctx)
		if err != nil {
			t.Fatal(err)
		}
		plan.Projected = []int64{entries[0].Seq}
		plan.Subjects = []kycd.SubjectRef{{Type: kycd.SubjectBusiness, ID: uuid.NewString()}}
		if err := tx.Apply(ctx, plan); kycd.ErrorCode(err) != kycd.ECONFLICT {
			t.Errorf("%s: Apply = %v, want ECONFLICT", name, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if sub, err := reads(s).Subject(ctx, plan.Subjects[0].ID, ""); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("%s: a rolled back plan left subject %+v, %v", name, sub, err)
		}
	}
	if after := d.current(keys); after.Sessions[sessionID].Version != 1 || after.Levels[user].Version != 1 {
		t.Fatalf("versions after conflicts = %d, %d; want 1, 1", after.Sessions[sessionID].Version, after.Levels[user].Version)
	}

	// A level's first write takes over a subject recorded without a level.
	other := newUser()
	d.append(expirationEvent(other))
	d.project(10)
	if c := d.current(kycd.PlanKeys{Subjects: []kycd.SubjectRef{other}}); len(c.Levels) != 0 {
		t.Fatalf("a subject without a level has level state %+v", c.Levels)
	}
	d.append(levelEvent(other, "LIGHT", 0))
	d.project(10)
	if c := d.current(kycd.PlanKeys{Subjects: []kycd.SubjectRef{other}}); c.Levels[other] == nil || c.Levels[other].Version != 1 || c.Levels[other].Level != "LIGHT" {
		t.Fatalf("level over a subject row = %+v", c.Levels[other])
	}

	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	dup := &kycd.EventRow{Seq: entries[0].Seq, ID: first.ID, Type: first.Type, Timestamp: base, ReceivedAt: base, BodyHash: first.BodyHash, Outcome: kycd.OutcomeApplied}
	if err := tx.Apply(ctx, &kycd.Plan{Events: []*kycd.EventRow{dup}}); err == nil || kycd.ErrorCode(err) == kycd.ECONFLICT {
		t.Fatalf("Apply of an event projected before = %v, want an internal error", err)
	}
}

// testApplyTwice: a projection redone (a crash after the notifications
// were written, a rebuild) writes no second delivery nor quarantine item;
// the same event row twice is a bug. Commit after Rollback fails, Rollback
// after either does nothing.
func testApplyTwice(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	d := newDriver(t, s, "crm")
	entries := d.append(subjectSessionEvent(uuid.NewString(), newUser(), kycd.StatusVerified, 0))
	p := d.project(10)

	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: base, Reason: kycd.QuarantineInvalid, Problem: []byte(`{}`), Body: []byte(`{}`)}
	redo := &kycd.Plan{Notifications: p.Notifications, Quarantine: []*kycd.Quarantined{q, q}, Projected: []int64{entries[0].Seq}}
	if err := tx.Apply(ctx, redo); err != nil {
		t.Fatalf("Apply of notifications and quarantine items again = %v, want no error", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("Commit after Rollback succeeded")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("second Rollback = %v, want nil", err)
	}

	tx, err = s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := tx.Apply(ctx, redo); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("Rollback after Commit = %v, want nil", err)
	}
	if ds := deliveries(t, s); len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	if items, _ := s.Quarantine(ctx, true, 10); len(items) != 1 {
		t.Fatalf("%d quarantine items, want 1", len(items))
	}
}

// testApplyQuarantine: quarantined conflicts are kept once, however often
// a plan holds them, with the original body when there is one.
func testApplyQuarantine(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	d := newDriver(t, s)
	ev := unhandledEvent()
	e := d.append(ev)[0]
	q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: base, Reason: kycd.QuarantineConflict, Problem: []byte(`{"status":409}`),
		EventID: ev.ID, Body: []byte(`{"other":true}`), OriginalBody: ev.Body}
	noOriginal := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: base, Reason: kycd.QuarantineConflict, Problem: []byte(`{}`), Body: []byte(`{}`)}
	for range 2 {
		tx, err := s.BeginProjection(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if err := tx.Apply(ctx, &kycd.Plan{Projected: []int64{e.Seq}, Quarantine: []*kycd.Quarantined{q, noOriginal}}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.QuarantineItem(ctx, q.ID)
	if err != nil || string(got.Body) != string(q.Body) || string(got.OriginalBody) != string(ev.Body) || got.EventID != ev.ID || string(got.Problem) != string(q.Problem) {
		t.Fatalf("quarantined = %+v, %v", got, err)
	}
	if got, err := s.QuarantineItem(ctx, noOriginal.ID); err != nil || got.OriginalBody != nil || got.EventID != "" {
		t.Fatalf("quarantined without original = %+v, %v", got, err)
	}
	if all, _ := s.Quarantine(ctx, true, 10); len(all) != 2 {
		t.Fatalf("quarantine holds %d items, want 2", len(all))
	}
	if rest, _ := s.UnprojectedLog(ctx, 1<<62, 10); len(rest) != 0 {
		t.Fatalf("unprojected = %v, want none", seqsOf(rest))
	}
}

// equalJSON compares what a and b encode to, as the API would show them.
func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
