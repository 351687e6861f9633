package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/ingest/ingesttest"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sessionEvent is an event that puts session in status for subject, at ts.
func sessionEvent(session string, subject kycd.SubjectRef, status kycd.Status, ts time.Time, code string) *kycd.Event {
	id := uuid.NewString()
	body := fmt.Sprintf(`{"id":%q}`, id)
	types := map[kycd.Status]string{kycd.StatusRejected: "kyc_session_failed", kycd.StatusVerified: "kyc_session_verified", kycd.StatusReview: "kyc_session_manual_review"}
	ev := &kycd.Event{ID: id, Type: types[status], Timestamp: ts, ReceivedAt: time.Now().UTC(), Body: []byte(body),
		BodyHash: kycd.BodyHash([]byte(body)), SessionID: session, Subject: subject, Status: status}
	if code != "" {
		ev.Checks = []kycd.Check{{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{{Type: "document", Code: code, Message: "m"}}}}
	}
	return ev
}

func newService(t *testing.T) (*app.Service, kycd.Store) {
	s := sqlitetest.Open(t)
	return &app.Service{Store: s, Now: func() time.Time { return at.Add(24 * time.Hour) }}, s
}

// One rule for every subject read: a type must be kycd's, a UUID is
// taken in any case, and an id known under several types is the first by
// type name unless a type is given.
func TestResolveSubject(t *testing.T) {
	t.Parallel()
	svc, s := newService(t)
	ctx := context.Background()
	id := uuid.NewString()
	ingesttest.Ingest(t, s, sessionEvent(uuid.NewString(), kycd.SubjectRef{Type: kycd.SubjectUser, ID: id}, kycd.StatusVerified, at, ""), ingest.Options{})
	ingesttest.Ingest(t, s, sessionEvent(uuid.NewString(), kycd.SubjectRef{Type: kycd.SubjectBusiness, ID: id}, kycd.StatusReview, at, ""), ingest.Options{})

	for _, tc := range []struct {
		id, typ string
		want    kycd.SubjectRef
		code    string
	}{
		{id, "", kycd.SubjectRef{Type: kycd.SubjectBusiness, ID: id}, ""},
		{strings.ToUpper(id), "", kycd.SubjectRef{Type: kycd.SubjectBusiness, ID: id}, ""},
		{id, kycd.SubjectUser, kycd.SubjectRef{Type: kycd.SubjectUser, ID: id}, ""},
		{id, kycd.SubjectRelatedParty, kycd.SubjectRef{}, kycd.ENOTFOUND},
		{id, "people", kycd.SubjectRef{}, kycd.EINVALID},
		{uuid.NewString(), "", kycd.SubjectRef{}, kycd.ENOTFOUND},
	} {
		got, err := svc.ResolveSubject(ctx, tc.id, tc.typ)
		if got != tc.want || kycd.ErrorCode(err) != tc.code {
			t.Errorf("ResolveSubject(%s, %q) = %+v, %v; want %+v, %q", tc.id, tc.typ, got, err, tc.want, tc.code)
		}
	}
	sub, err := svc.Subject(ctx, id, kycd.SubjectUser)
	if err != nil || sub.Type != kycd.SubjectUser || len(sub.Sessions) != 1 || sub.Sessions[0].Status != kycd.StatusVerified {
		t.Fatalf("Subject(user) = %+v, %v", sub, err)
	}
}

// The session list's rules are the application's: which statuses exist,
// that a range ends after it begins, what a cursor is; the pages follow
// one another.
func TestSessionList(t *testing.T) {
	t.Parallel()
	svc, s := newService(t)
	ctx := context.Background()
	user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}
	var ids []string
	for i := range 5 {
		id := uuid.NewString()
		ids = append(ids, id)
		code := ""
		if i%2 == 0 {
			code = "NO_MATCH"
		}
		ingesttest.Ingest(t, s, sessionEvent(id, user, kycd.StatusRejected, at.Add(time.Duration(i)*time.Hour), code), ingest.Options{})
	}
	for _, f := range []kycd.SessionFilter{
		{Status: "GOLD"},
		{Since: at, Until: at},
		{Cursor: "zzz"},
	} {
		if _, err := svc.Sessions(ctx, f); kycd.ErrorCode(err) != kycd.EINVALID {
			t.Errorf("Sessions(%+v) = %v, want EINVALID", f, err)
		}
	}
	var got []string
	f := kycd.SessionFilter{Status: kycd.StatusRejected, SubjectID: strings.ToUpper(user.ID), Code: "NO_MATCH", Limit: 2}
	for pages := 0; ; pages++ {
		p, err := svc.Sessions(ctx, f)
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %+v, %v", pages, p, err)
		}
		for _, it := range p.Sessions {
			got = append(got, it.ID)
		}
		if f.Cursor = p.NextCursor; f.Cursor == "" {
			break
		}
	}
	if want := []string{ids[4], ids[2], ids[0]}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pages of NO_MATCH = %v, want %v (newest first)", got, want)
	}
	empty, err := svc.Sessions(ctx, kycd.SessionFilter{Status: kycd.StatusExpired})
	if err != nil || empty.Sessions == nil || len(empty.Sessions) != 0 || empty.NextCursor != "" {
		t.Fatalf("no sessions = %+v, %v; want an empty list", empty, err)
	}
}

// A target ending in ':' matches every target it begins; any other, the
// whole target only.
func TestAuditTargetMatch(t *testing.T) {
	t.Parallel()
	svc, s := newService(t)
	ctx := context.Background()
	for _, target := range []string{"subject:user:1", "subject:business:2", "subject:user:10", "delivery:3"} {
		if err := s.AddAudit(ctx, &kycd.AuditEntry{At: at, Actor: "ana", Action: kycd.AuditSubjectExport, Target: target, Outcome: kycd.AuditOK}); err != nil {
			t.Fatal(err)
		}
	}
	for target, want := range map[string]int{"subject:": 3, "subject:user:": 2, "subject:user:1": 1, "subject": 0, "": 4} {
		p, err := svc.Audit(ctx, kycd.AuditFilter{Target: target})
		if err != nil || len(p.Items) != want {
			t.Errorf("Audit(target %q) = %d entries, %v; want %d", target, len(p.Items), err, want)
		}
	}
	first, err := svc.Audit(ctx, kycd.AuditFilter{Limit: 3})
	if err != nil || len(first.Items) != 3 || first.NextCursor == "" {
		t.Fatalf("first page = %+v, %v", first, err)
	}
	rest, err := svc.Audit(ctx, kycd.AuditFilter{Limit: 3, Cursor: first.NextCursor})
	if err != nil || len(rest.Items) != 1 || rest.Items[0].Target != "subject:user:1" || rest.NextCursor != "" {
		t.Fatalf("second page = %+v, %v; want the oldest entry", rest, err)
	}
}

// failingAudit is a store whose audit trail cannot be written.
type failingAudit struct{ kycd.Store }

func (failingAudit) AddAudit(context.Context, *kycd.AuditEntry) error {
	return kycd.Errorf(kycd.EUNAVAILABLE, "disk full")
}

// A raw body is returned only once its read is in the audit trail.
func TestEventWithBodyIsAudited(t *testing.T) {
	t.Parallel()
	svc, s := newService(t)
	ctx := context.Background()
	ev := sessionEvent(uuid.NewString(), kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}, kycd.StatusVerified, at, "")
	ingesttest.Ingest(t, s, ev, ingest.Options{})
	ana := app.Actor{Name: "ana", Remote: "192.0.2.1"}

	rec, err := svc.EventWithBody(ctx, ana, strings.ToUpper(ev.ID))
	if err != nil || string(rec.Body) != string(ev.Body) {
		t.Fatalf("EventWithBody = %+v, %v", rec, err)
	}
	if _, err := svc.EventWithBody(ctx, ana, uuid.Nil.String()); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("EventWithBody of an unknown event = %v, want ENOTFOUND", err)
	}
	p, err := svc.Audit(ctx, kycd.AuditFilter{Action: kycd.AuditEventRead})
	if err != nil || len(p.Items) != 2 {
		t.Fatalf("event.read entries = %+v, %v; want 2", p, err)
	}
	if e := p.Items[1]; e.Actor != "ana" || e.Remote != "192.0.2.1" || e.Target != "event:"+ev.ID || e.Outcome != kycd.AuditOK {
		t.Errorf("the read's entry = %+v", e)
	}
	if e := p.Items[0]; e.Target != "event:"+uuid.Nil.String() || e.Outcome != kycd.AuditFailed {
		t.Errorf("the failed read's entry = %+v", e)
	}
	view, err := svc.Event(ctx, ev.ID)
	if err != nil || view.Body != nil || !view.BodyKept {
		t.Fatalf("Event = %+v, %v; want no body, kept", view, err)
	}

	blind := &app.Service{Store: failingAudit{s}}
	rec, err = blind.EventWithBody(ctx, ana, ev.ID)
	var ke *kycd.Error
	if rec != nil || kycd.ErrorCode(err) != kycd.EUNAVAILABLE || !errors.As(err, &ke) || !strings.Contains(ke.Message, "audit trail") {
		t.Fatalf("EventWithBody without an audit trail = %+v, %v; want no body, EUNAVAILABLE", rec, err)
	}
}

// The window of the stats is named in the answer: the one asked for, or
// the default.
func TestStatsWindow(t *testing.T) {
	t.Parallel()
	svc, s := newService(t)
	ctx := context.Background()
	user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}
	ingesttest.Ingest(t, s, sessionEvent(uuid.NewString(), user, kycd.StatusRejected, at, "NO_MATCH"), ingest.Options{})

	st, err := svc.Stats(ctx, 0, 0)
	if err != nil || st.Window != "168h" || !st.Since.Equal(at.Add(24*time.Hour-kycd.DefaultStatsWindow)) || len(st.TopFailureCodes) != 1 {
		t.Fatalf("Stats(default) = %+v, %v; want the 168h window with NO_MATCH", st, err)
	}
	st, err = svc.Stats(ctx, 90*time.Minute, 10)
	if err != nil || st.Window != "1h30m0s" || len(st.TopFailureCodes) != 0 {
		t.Fatalf("Stats(90m) = %+v, %v; want no failure code", st, err)
	}
	if _, err := svc.Stats(ctx, -time.Hour, 10); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("Stats(-1h) = %v, want EINVALID", err)
	}
	for in, want := range map[string]time.Duration{"": kycd.DefaultStatsWindow, "24h": 24 * time.Hour, "90m": 90 * time.Minute} {
		if d, err := kycd.ParseStatsWindow(in); err != nil || d != want {
			t.Errorf("ParseStatsWindow(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "0s"} {
		if _, err := kycd.ParseStatsWindow(in); kycd.ErrorCode(err) != kycd.EINVALID {
			t.Errorf("ParseStatsWindow(%q) = %v, want EINVALID", in, err)
		}
	}
}

// Creating and revoking a token is recorded with the change, and a
// refused attempt is recorded as failed.
func TestTokensAreAudited(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	ctx := context.Background()
	ana := app.Actor{Name: "cli:ana"}
	created, err := svc.CreateToken(ctx, ana, "support", "viewer")
	if err != nil || created.Role != kycd.RoleViewer || len(created.Secret) < 40 || !kycd.TokenMatches(created.Hash, created.Secret) {
		t.Fatalf("CreateToken = %+v, %v", created, err)
	}
	if _, err := svc.CreateToken(ctx, ana, "support", "admin"); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("CreateToken of a taken name = %v, want ECONFLICT", err)
	}
	if _, err := svc.CreateToken(ctx, ana, "ops", "root"); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("CreateToken of role root = %v, want EINVALID", err)
	}
	if err := svc.RevokeToken(ctx, ana, "support"); err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeToken(ctx, ana, "support"); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("RevokeToken again = %v, want ENOTFOUND", err)
	}
	tokens, err := svc.Tokens(ctx)
	if err != nil || len(tokens) != 0 {
		t.Fatalf("Tokens = %+v, %v; want none", tokens, err)
	}
	p, err := svc.Audit(ctx, kycd.AuditFilter{Actor: "cli:ana"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range p.Items {
		got = append(got, e.Action+" "+e.Target+" "+e.Outcome+" "+e.Detail)
	}
	want := []string{
		"token.revoke token:support failed not_found: no token named support",
		"token.revoke token:support ok ",
		`token.create token:ops failed invalid: role "root": want admin, operator or viewer`,
		"token.create token:support failed conflict: a token named support exists already",
		"token.create token:support ok role viewer",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
