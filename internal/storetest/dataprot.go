package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// Tests of access and data protection (issue 9): tokens, the audit trail,
// export, erasure and the retention purge. Export, erasure and the purge
// are the application layer's (internal/app), over the store's
// kycd.SubjectTx: what they find and change is what the store's reads and
// writes let them.

// testActor is the actor of the audit entries of these tests.
var testActor = app.Actor{Name: "storetest"}

// service is the application layer over s with its clock at now.
func service(s kycd.Store, now time.Time) *app.Service {
	return &app.Service{Store: s, Now: func() time.Time { return now }}
}

// exportSubject exports a subject at at.
func exportSubject(ctx context.Context, s kycd.Store, sub kycd.SubjectRef, at time.Time) (*kycd.SubjectExport, error) {
	return service(s, at).ExportSubject(ctx, testActor, sub.ID, sub.Type)
}

// eraseSubject erases a subject at at, telling no sink.
func eraseSubject(ctx context.Context, s kycd.Store, sub kycd.SubjectRef, at time.Time) (*kycd.ErasureReceipt, error) {
	return service(s, at).EraseSubject(ctx, testActor, sub.ID, sub.Type)
}

func testTokens(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	at := base.Add(time.Hour)
	viewer := &kycd.Token{Name: "support", Role: kycd.RoleViewer, Hash: kycd.TokenHash("s3cret-1"), CreatedAt: at}
	if err := reads(s).AddToken(ctx, viewer); err != nil {
		t.Fatal(err)
	}
	again := *viewer
	again.Hash = kycd.TokenHash("s3cret-2")
	if err := reads(s).AddToken(ctx, &again); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("CreateToken of a taken name = %v, want ECONFLICT", err)
	}
	if err := reads(s).AddToken(ctx, &kycd.Token{Name: "ci", Role: kycd.RoleOperator, Hash: kycd.TokenHash("s3cret-3"), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenByHash(ctx, kycd.TokenHash("s3cret-1"))
	if err != nil || got.Name != "support" || got.Role != kycd.RoleViewer || !got.CreatedAt.Equal(at) || !got.LastUsedAt.IsZero() {
		t.Fatalf("TokenByHash = %+v, %v; want the viewer token, never used", got, err)
	}
	if _, err := s.TokenByHash(ctx, kycd.TokenHash("s3cret-2")); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("TokenByHash of an unknown token = %v, want ENOTFOUND", err)
	}
	used := at.Add(time.Minute)
	for _, when := range []time.Time{used, at} { // an older time does not go back
		if err := s.TouchToken(ctx, "support", when); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.Tokens(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ci" || list[1].Name != "support" || !list[1].LastUsedAt.Equal(used) || list[1].Hash != viewer.Hash {
		t.Fatalf("Tokens = %+v, %v; want ci and support, support last used at %v", list, err, used)
	}
	// PutToken replaces role and hash, and keeps the creation time.
	if err := s.PutToken(ctx, &kycd.Token{Name: "support", Role: kycd.RoleAdmin, Hash: kycd.TokenHash("s3cret-4"), CreatedAt: used}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TokenByHash(ctx, kycd.TokenHash("s3cret-4")); err != nil || got.Role != kycd.RoleAdmin || !got.CreatedAt.Equal(at) {
		t.Fatalf("after PutToken = %+v, %v; want admin, created at %v", got, err, at)
	}
	if _, err := s.TokenByHash(ctx, viewer.Hash); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("the replaced hash still finds %v", err)
	}
	if err := s.PutToken(ctx, &kycd.Token{Name: "admin", Role: kycd.RoleAdmin, Hash: kycd.TokenHash("s3cret-5"), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := reads(s).RevokeToken(ctx, app.Actor{Name: "test"}, "support"); err != nil {
		t.Fatal(err)
	}
	if err := reads(s).RevokeToken(ctx, app.Actor{Name: "test"}, "support"); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("revoking twice = %v, want ENOTFOUND", err)
	}
	if _, err := s.TokenByHash(ctx, kycd.TokenHash("s3cret-4")); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("a revoked token is found: %v", err)
	}
	if list, _ := s.Tokens(ctx); len(list) != 2 || list[0].Name != "admin" || list[1].Name != "ci" {
		t.Fatalf("Tokens after a revoke = %+v, want admin and ci", list)
	}
}

func testAuditTrail(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	entries := []*kycd.AuditEntry{
		{At: base, Actor: "support", Action: kycd.AuditEventRead, Target: "event:e1", Remote: "192.0.2.1", Outcome: kycd.AuditRefused},
		{At: base.Add(time.Second), Actor: "admin", Action: kycd.AuditSubjectExport, Target: "subject:user:u1", Remote: "192.0.2.2", Outcome: kycd.AuditOK},
		{At: base.Add(2 * time.Second), Actor: "cli:ana", Action: kycd.AuditSubjectErase, Target: "subject:user:u1", Outcome: kycd.AuditOK, Detail: "eventBodies=2"},
		{At: base.Add(3 * time.Second), Actor: "ops", Action: kycd.AuditDeliveryRetry, Target: "delivery:d1", Remote: "192.0.2.3", Outcome: kycd.AuditFailed, Detail: "not_found"},
		{At: time.Now().UTC().Truncate(time.Millisecond), Actor: "admin", Action: kycd.AuditTokenCreate, Target: "token:ops", Remote: "192.0.2.2", Outcome: kycd.AuditOK},
	}
	var prev int64
	for _, e := range entries {
		if err := s.AddAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.ID <= prev {
			t.Fatalf("audit ids %d then %d, want increasing", prev, e.ID)
		}
		prev = e.ID
	}
	page, err := reads(s).Audit(ctx, kycd.AuditFilter{})
	if err != nil || len(page.Items) != 5 || page.NextCursor != "" {
		t.Fatalf("Audit = %+v, %v; want the 5 entries on one page", page, err)
	}
	if got := page.Items[0]; got.ID != entries[4].ID || got.Actor != "admin" || !got.At.Equal(entries[4].At) {
		t.Fatalf("first entry = %+v, want the newest", got)
	}
	last := page.Items[4]
	if *last != *entries[0] {
		t.Fatalf("oldest entry read back = %+v, want %+v", last, entries[0])
	}
	for _, tc := range []struct {
		f    kycd.AuditFilter
		want []int
	}{
		{kycd.AuditFilter{Actor: "admin"}, []int{4, 1}},
		{kycd.AuditFilter{Action: kycd.AuditSubjectErase}, []int{2}},
		{kycd.AuditFilter{Target: "subject:user:u1"}, []int{2, 1}},
		{kycd.AuditFilter{Target: "subject:"}, []int{2, 1}},
		{kycd.AuditFilter{Target: "subject:user"}, nil},
		{kycd.AuditFilter{Actor: "admin", Target: "subject:"}, []int{1}},
	} {
		page, err := reads(s).Audit(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, it := range page.Items {
			got = append(got, slices.IndexFunc(entries, func(e *kycd.AuditEntry) bool { return e.ID == it.ID }))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Audit(%+v) = entries %v, want %v", tc.f, got, tc.want)
		}
	}
	var seen []int64
	cursor := ""
	for range 5 {
		page, err := reads(s).Audit(ctx, kycd.AuditFilter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			seen = append(seen, it.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if want := []int64{entries[4].ID, entries[3].ID, entries[2].ID, entries[1].ID, entries[0].ID}; !slices.Equal(seen, want) {
		t.Fatalf("pages of 2 = %v, want %v", seen, want)
	}
	if _, err := reads(s).Audit(ctx, kycd.AuditFilter{Cursor: "zzz"}); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("a foreign cursor = %v, want EINVALID", err)
	}
	n, err := s.PurgeAudit(ctx, base.Add(2*time.Second))
	if err != nil || n != 2 {
		t.Fatalf("PurgeAudit = %d, %v; want the 2 oldest", n, err)
	}
	if page, _ := reads(s).Audit(ctx, kycd.AuditFilter{}); len(page.Items) != 3 || page.Items[2].ID != entries[2].ID {
		t.Fatalf("after the purge: %+v, want 3 entries", page.Items)
	}
	// Ids are never given out again.
	e := &kycd.AuditEntry{At: time.Now(), Actor: "admin", Action: kycd.AuditTokenRevoke, Target: "token:ops", Outcome: kycd.AuditOK}
	if err := s.AddAudit(ctx, e); err != nil || e.ID <= entries[4].ID {
		t.Fatalf("AddAudit after a purge = id %d, %v; want above %d", e.ID, err, entries[4].ID)
	}
}

// Personal data of the related party of testExportAndErase.
const (
	partyEmail = "ana.erase@example.com"
	partyPhone = "+34911222333"
	partyURL   = "https://verify.example.com/session/erase-me"
	partyText  = "The name Ana Erase does not match"
)

// invitedBody is a related party's invitation (generation C) with
// contact details (those of the party of testExportAndErase unless email
// says otherwise) and a verification URL.
func invitedBody(eventID, partyID, sessionID string, ts time.Time, email string) []byte {
	return fmt.Appendf(nil, `{"eventId":%q,"eventType":"related_party.kyc_session_created","timestamp":%q,"data":{"businessUser":{"id":4821},
		"relatedParty":{"id":%q,"roleType":"UBO","firstName":"Ana","lastName":"Erase","email":%q,"phoneNumber":%q},
		"kycSession":{"id":%q,"url":%q,"expiresAt":%q}}}`,
		eventID, ts.Format(time.RFC3339), partyID, cmpOr(email, partyEmail), partyPhone, sessionID, partyURL, ts.Add(7*24*time.Hour).Format(time.RFC3339))
}

// partyFailedBody is a related party's rejection (generation B) whose
// reason message names the person.
func partyFailedBody(eventID, partyID, sessionID string, ts time.Time) []byte {
	return fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_failed","timestamp":%q,"data":{"sessionId":%q,"entityType":"related-party",
		"relatedPartyId":%q,"checks":[{"type":"document-verification","state":2,"reasons":[{"type":"document","code":"KYC.NAME.MISMATCH","message":%q}]}]}}`,
		eventID, ts.Format(time.RFC3339), sessionID, partyID, partyText)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// holds reports whether any of the personal data of the related party is
// in b.
func holds(b []byte) bool {
	for _, v := range []string{partyEmail, partyPhone, partyURL, partyText} {
		if strings.Contains(string(b), v) {
			return true
		}
	}
	return false
}

func testExportAndErase(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := newPipeline(t, s, "log", "crm")
	party, sid := uuid.NewString(), uuid.NewString()
	sub := kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: party}
	invited, failed := uuid.NewString(), uuid.NewString()
	invitedB := invitedBody(invited, party, sid, base, "")
	failedB := partyFailedBody(failed, party, sid, base.Add(time.Hour))
	// Someone else, whose data stays.
	other, otherSession, otherEvent := uuid.NewString(), uuid.NewString(), uuid.NewString()
	const otherEmail = "someone.else@example.com"
	otherB := []byte(strings.NewReplacer(partyPhone, "+34900000001", partyURL, "https://verify.example.com/other").
		Replace(string(invitedBody(otherEvent, other, otherSession, base, otherEmail))))
	// The other subject's event comes first in the log, so that a rebuild
	// meets the erased entries after one that keeps its body.
	for _, b := range [][]byte{otherB, invitedB, failedB} {
		if _, err := in.Receive(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, in)
	// A refused body that names the party, and one that does not.
	naming := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: base, Reason: kycd.QuarantineInvalid, Problem: []byte(`{"status":400}`),
		Body: fmt.Appendf(nil, `{"relatedPartyId":%q,"email":%q}`, strings.ToUpper(party), partyEmail)}
	unrelated := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: base, Reason: kycd.QuarantineInvalid, Problem: []byte(`{"status":400}`),
		Body: []byte(`{"email":"someone@example.com"}`)}
	for _, q := range []*kycd.Quarantined{naming, unrelated} {
		if err := s.AddQuarantine(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := exportSubject(ctx, s, kycd.SubjectRef{Type: kycd.SubjectUser, ID: party}, time.Now()); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("export of the party as a user = %v, want ENOTFOUND", err)
	}
	at := time.Now().UTC()
	x, err := exportSubject(ctx, s, sub, at)
	if err != nil {
		t.Fatal(err)
	}
	if x.Subject != sub || !x.ExportedAt.Equal(at) || len(x.Sessions) != 1 || x.Sessions[0].ID != sid || x.Sessions[0].Status != kycd.StatusRejected ||
		len(x.Sessions[0].History) != 2 || x.Sessions[0].Checks[0].Reasons[0].Message != partyText {
		t.Fatalf("export = %+v, want the party's one session, REJECTED, with its history and reasons", x)
	}
	if len(x.Events) != 2 || x.Events[0].ID != invited || string(x.Events[0].Body) != string(invitedB) || string(x.Events[1].Body) != string(failedB) {
		t.Fatalf("exported events = %+v, want both with their bodies", x.Events)
	}
	if len(x.Notifications) != 2 || !holds(x.Notifications[0].Notification) || len(x.Notifications[0].Deliveries) != 2 ||
		x.Notifications[0].Deliveries[0].Payload != nil {
		t.Fatalf("exported notifications = %+v, want the invitation with contact data and two deliveries, and the rejection", x.Notifications)
	}
	if len(x.Quarantine) != 1 || x.Quarantine[0].ID != naming.ID || x.Quarantine[0].Body == nil || !holds([]byte(*x.Quarantine[0].Body)) {
		t.Fatalf("exported quarantine = %+v, want the one body that names the party", x.Quarantine)
	}

	// A stalled notification of the party's session (the watchdog's) is
	// the party's too.
	stalled := kycd.NewStalledNotification(kycd.StalledSession{ID: sid, Subject: sub, Status: kycd.StatusRejected, StatusAt: base,
		StatusEventID: invited, Reason: kycd.StalledInvitationExpired, ExpiresAt: base}, time.Hour)
	applyNotifications(t, s, &kycd.Outgoing{Notification: stalled, CreatedAt: time.Now().UTC(), Sinks: []string{"log"}})

	erasedAt := time.Now().UTC()
	receipt, err := eraseSubject(ctx, s, sub, erasedAt)
	if err != nil {
		t.Fatal(err)
	}
	want := kycd.ErasureCounts{EventBodies: 2, Sessions: 1, Notifications: 2, Quarantine: 1}
	if receipt.Subject != sub || !receipt.ErasedAt.Equal(erasedAt) || receipt.Erased != want {
		t.Fatalf("receipt = %+v, want %+v", receipt, want)
	}
	checkErased := func(when string) {
		t.Helper()
		sess, err := s.Session(ctx, sid)
		if err != nil {
			t.Fatalf("%s: Session: %v", when, err)
		}
		if sess.Status != kycd.StatusRejected || sess.StatusEventID != failed || len(sess.History) != 2 ||
			sess.Checks[0].Reasons[0].Code != "KYC.NAME.MISMATCH" || sess.Checks[0].Reasons[0].Message != "" {
			t.Errorf("%s: session = %+v, want REJECTED with its history and reason code, without the message", when, sess)
		}
		for _, id := range []string{invited, failed} {
			rec, err := s.Event(ctx, id)
			if err != nil || rec.Body != nil || rec.BodyHash == "" {
				t.Errorf("%s: event %s = %+v, %v; want kept with its hash, without its body", when, id, rec, err)
			}
		}
		ds, err := s.Deliveries(ctx, kycd.DeliveryQuery{Limit: 500})
		if err != nil {
			t.Fatalf("%s: Deliveries: %v", when, err)
		}
		for _, d := range ds {
			full, err := s.Delivery(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if holds(full.Payload) {
				t.Errorf("%s: delivery %s still sends personal data: %s", when, d.ID, full.Payload)
			}
		}
		q, err := s.QuarantineItem(ctx, naming.ID)
		if err != nil || len(q.Body) != 0 || q.OriginalBody != nil || q.ReplayResult != kycd.ErasedReplayResult || q.ReplayedAt.IsZero() {
			t.Errorf("%s: quarantine item = %+v, %v; want kept without bodies, resolved as erased", when, q, err)
		}
		x, err := exportSubject(ctx, s, sub, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// The quarantined body named the party; erased, it names no one,
		// but the item is still the party's, shown erased.
		if len(x.Notifications) != 3 || len(x.Events) != 2 || len(x.Quarantine) != 1 {
			t.Errorf("%s: export = %d notifications, %d events, %d quarantined; want 3 (with the stalled one), 2, 1",
				when, len(x.Notifications), len(x.Events), len(x.Quarantine))
		}
		for _, q := range x.Quarantine {
			if q.ID != naming.ID || (q.Body != nil && *q.Body != "") || q.OriginalBody != nil || q.ReplayResult != kycd.ErasedReplayResult {
				t.Errorf("%s: exported quarantine item = %+v, want the erased one, without bodies", when, q)
			}
		}
		for _, e := range x.Events {
			if e.Body != nil {
				t.Errorf("%s: exported event %s has a body", when, e.ID)
			}
		}
		for _, n := range x.Notifications {
			if holds(n.Notification) || strings.Contains(string(n.Notification), `"invitation"`) {
				t.Errorf("%s: exported notification %s = %s", when, n.ID, n.Notification)
			}
		}
	}
	checkErased("after the erasure")
	// Someone else's data stays.
	if rec, _ := s.Event(ctx, otherEvent); rec == nil || string(rec.Body) != string(otherB) {
		t.Errorf("another subject's event lost its body: %+v", rec)
	}
	if q, _ := s.QuarantineItem(ctx, unrelated.ID); q == nil || string(q.Body) != string(unrelated.Body) {
		t.Errorf("a body naming someone else was erased: %+v", q)
	}
	ox, err := exportSubject(ctx, s, kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: other}, time.Now())
	if err != nil || len(ox.Notifications) != 1 || !strings.Contains(string(ox.Notifications[0].Notification), otherEmail) {
		t.Errorf("another subject's notification was erased: %+v, %v", ox, err)
	}

	if again, err := eraseSubject(ctx, s, sub, time.Now()); err != nil || again.Erased != (kycd.ErasureCounts{}) {
		t.Fatalf("erasing again = %+v, %v; want nothing more erased", again, err)
	}
	// A late copy of an erased event is a duplicate and brings nothing back.
	for _, b := range [][]byte{invitedB, failedB} {
		res, err := in.Receive(ctx, b)
		if err != nil || !res.Duplicate {
			t.Fatalf("a late copy of an erased event = %+v, %v; want a duplicate", res, err)
		}
	}
	drain(t, in)
	checkErased("after late copies")
	// A rebuild neither.
	if _, err := in.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	checkErased("after a rebuild")
	for _, b := range [][]byte{invitedB, failedB} {
		if res, err := in.Receive(ctx, b); err != nil || !res.Duplicate {
			t.Fatalf("a late copy of an erased event after a rebuild = %+v, %v; want a duplicate", res, err)
		}
	}
	if rec, _ := s.Event(ctx, otherEvent); rec == nil || string(rec.Body) != string(otherB) {
		t.Errorf("another subject's event after the rebuild = %+v", rec)
	}

	// A new event for the party is processed as any other.
	verified := uuid.NewString()
	later := fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_verified","timestamp":%q,"data":{"sessionId":%q,"entityType":"related-party",
		"relatedPartyId":%q,"checks":[]}}`, verified, base.Add(2*time.Hour).Format(time.RFC3339), sid, party)
	if res, err := in.Receive(ctx, later); err != nil || res.Duplicate {
		t.Fatalf("a new event after the erasure = %+v, %v", res, err)
	}
	drain(t, in)
	if sess := session(t, s, sid); sess.Status != kycd.StatusVerified || len(sess.History) != 3 {
		t.Fatalf("session after a new event = %+v, want VERIFIED with 3 history entries", sess)
	}
	if rec, _ := s.Event(ctx, verified); rec == nil || string(rec.Body) != string(later) {
		t.Fatalf("the new event = %+v, want its body kept", rec)
	}
	if _, err := eraseSubject(ctx, s, kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}, time.Now()); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("erasing an unknown subject = %v, want ENOTFOUND", err)
	}
}

// applyNotifications writes notifications as a plan without log entries,
// as the watchdog and an erasure do.
func applyNotifications(t *testing.T, s kycd.Store, out ...*kycd.Outgoing) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := tx.Apply(ctx, &kycd.Plan{Notifications: out}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// purge runs the retention purge at now.
func purge(ctx context.Context, s kycd.Store, now time.Time, retention time.Duration) (*app.Purged, error) {
	return service(s, now).Purge(ctx, retention)
}

// A subject with a thousand sessions is exported and erased whole: the
// statements are the same size however many records a subject has.
func testExportAndEraseThousandSessions(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	user := uuid.NewString()
	sub := kycd.SubjectRef{Type: kycd.SubjectUser, ID: user}
	const n = 1000
	var bodies [][]byte
	var last string
	for i := range n {
		last = uuid.NewString()
		bodies = append(bodies, ralioBody(uuid.NewString(), "kyc_session_failed", last, user, base.Add(time.Duration(i)*time.Second), "EXPIRED_DOCUMENT"))
	}
	appendRaw(t, s, bodies...)
	drain(t, newPipeline(t, s, "log"))
	// A refused body that names the last session only.
	q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: base, Reason: kycd.QuarantineInvalid, Problem: []byte(`{"status":400}`),
		Body: fmt.Appendf(nil, `{"sessionId":%q}`, strings.ToUpper(last))}
	if err := s.AddQuarantine(ctx, q); err != nil {
		t.Fatal(err)
	}

	x, err := exportSubject(ctx, s, sub, time.Now())
	if err != nil {
		t.Fatalf("export of a subject with %d sessions: %v", n, err)
	}
	if len(x.Sessions) != n || len(x.Events) != n || len(x.Notifications) != n || len(x.Quarantine) != 1 {
		t.Fatalf("export = %d sessions, %d events, %d notifications, %d quarantined; want %d, %d, %d, 1",
			len(x.Sessions), len(x.Events), len(x.Notifications), len(x.Quarantine), n, n, n)
	}
	r, err := eraseSubject(ctx, s, sub, time.Now())
	if err != nil {
		t.Fatalf("erasure of a subject with %d sessions: %v", n, err)
	}
	if want := (kycd.ErasureCounts{EventBodies: n, Sessions: n, Notifications: n, Quarantine: 1}); r.Erased != want {
		t.Fatalf("receipt = %+v, want %+v", r.Erased, want)
	}
	x, err = exportSubject(ctx, s, sub, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range x.Events {
		if e.Body != nil {
			t.Fatalf("event %s kept its body", e.ID)
		}
	}
	for _, sess := range x.Sessions {
		if sess.Checks[0].Reasons[0].Message != "" || sess.Checks[0].Reasons[0].Code != "EXPIRED_DOCUMENT" {
			t.Fatalf("session %s = %+v, want its code without its message", sess.ID, sess.Checks)
		}
	}
}

// personalEvents are an invitation, a rejection and an expiration warning
// of one related party, received at received, each holding personal data
// (partyEmail, partyURL, partyText and the action text).
func personalEvents(party, sid string, received time.Time) []*kycd.Event {
	sub := kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: party}
	ev := func(typ string, offset time.Duration) *kycd.Event {
		id := uuid.NewString()
		body := fmt.Appendf(nil, `{"id":%q,"email":%q}`, id, partyEmail)
		return &kycd.Event{ID: id, Type: typ, Timestamp: base.Add(offset), ReceivedAt: received.Add(offset), Body: body,
			BodyHash: kycd.BodyHash(body), Subject: sub}
	}
	invited := ev("related_party.kyc_session_created", 0)
	invited.SessionID, invited.Status = sid, kycd.StatusNotStarted
	invited.Invitation = &kycd.Invitation{FirstName: "Ana", Email: partyEmail, PhoneNumber: partyPhone, VerificationURL: partyURL}
	failed := ev("kyc_session_failed", time.Minute)
	failed.SessionID, failed.Status = sid, kycd.StatusRejected
	failed.Checks = []kycd.Check{{Type: "document-verification", State: "Refused",
		Reasons: []kycd.Reason{{Type: "document", Code: "KYC.NAME.MISMATCH", Message: partyText, Category: "DOC"}}}}
	expiring := ev("kyc_expiration_warning", 2*time.Minute)
	expiring.Expiration = &kycd.Expiration{Date: "2026-06-01", DaysRemaining: 30, Action: "Call " + partyPhone}
	return []*kycd.Event{invited, failed, expiring}
}

// The retention purge removes the same personal data as an erasure: two
// related parties with the same records, one past the retention and
// purged, the other erased, read back the same but for their ids.
func testPurgeRemovesWhatErasureRemoves(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	now := time.Now().UTC()
	purged, erased := uuid.NewString(), uuid.NewString()
	purgedSession, erasedSession := uuid.NewString(), uuid.NewString()
	old, recent := personalEvents(purged, purgedSession, now.Add(-48*time.Hour)), personalEvents(erased, erasedSession, now.Add(-time.Hour))
	// What names the erased party, written as the purged party's.
	var pairs []string
	for i := range old {
		pairs = append(pairs, recent[i].ID, old[i].ID, kycd.NotificationID(recent[i].ID), kycd.NotificationID(old[i].ID))
	}
	ids := strings.NewReplacer(append(pairs, erased, purged, erasedSession, purgedSession)...)
	for _, ev := range append(old, recent...) {
		record(t, s, ev)
	}

	p, err := purge(ctx, s, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r, err := eraseSubject(ctx, s, kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: erased}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := (kycd.ErasureCounts{EventBodies: p.EventBodies, Sessions: p.Sessions, Notifications: p.Notifications}); got != r.Erased {
		t.Errorf("the purge removed %+v, the erasure %+v; want the same", got, r.Erased)
	}
	if want := (kycd.ErasureCounts{EventBodies: 3, Sessions: 1, Notifications: 3}); r.Erased != want {
		t.Errorf("the erasure removed %+v, want %+v", r.Erased, want)
	}
	// Each party's records as JSON, with the erased party's ids written
	// as the purged party's.
	records := func(party string) []string {
		t.Helper()
		x, err := exportSubject(ctx, s, kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: party}, now)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sess := range x.Sessions {
			b, _ := json.Marshal(sess.Checks)
			out = append(out, "checks "+ids.Replace(string(b)))
		}
		for _, n := range x.Notifications {
			out = append(out, "notification "+ids.Replace(string(n.Notification)))
		}
		for _, e := range x.Events {
			out = append(out, fmt.Sprintf("event %s body %q", ids.Replace(e.ID), e.Body))
		}
		for _, b := range out {
			if holds([]byte(b)) || strings.Contains(b, "Call ") || strings.Contains(b, `"invitation"`) {
				t.Errorf("%s still holds personal data: %s", party, b)
			}
		}
		if len(out) != 1+3+3 {
			t.Errorf("%s: %d records, want a session, 3 notifications and 3 events:\n%s", party, len(out), strings.Join(out, "\n"))
		}
		return out
	}
	if a, b := records(purged), records(erased); !slices.Equal(a, b) {
		t.Errorf("purged and erased records differ:\npurged:\n%s\nerased:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

// The purge goes a chunk of log entries at a time and takes every old body,
// past the chunks' boundaries, and only those; a second purge finds
// nothing more.
func testPurgeInChunks(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	now := time.Now().UTC()
	var entries []*kycd.LogEntry
	old := map[string]bool{}
	for i := range 1200 {
		id := uuid.NewString()
		b := fmt.Appendf(nil, `{"id":%q,"event":"viban_created","timestamp":%q,"data":{}}`, id, base.Format(time.RFC3339))
		e := &kycd.LogEntry{EventID: id, ReceivedAt: now, Body: b, BodyHash: kycd.BodyHash(b)}
		if i%2 == 0 || i == 1199 {
			e.ReceivedAt, old[id] = now.Add(-48*time.Hour), true
		}
		entries = append(entries, e)
	}
	if err := s.AppendLog(ctx, entries); err != nil {
		t.Fatal(err)
	}
	drain(t, newPipeline(t, s, "log"))
	p, err := purge(ctx, s, now, 24*time.Hour)
	if err != nil || p.EventBodies != 601 || p.Total() != 601 {
		t.Fatalf("Purge = %+v, %v; want 601 bodies", p, err)
	}
	for i, e := range entries {
		rec, err := s.Event(ctx, e.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if (rec.Body == nil) != old[e.EventID] {
			t.Fatalf("event %d after the purge has body %q", i, rec.Body)
		}
	}
	if p, err := purge(ctx, s, now, 24*time.Hour); err != nil || p.Total() != 0 {
		t.Fatalf("second Purge = %+v, %v; want nothing", p, err)
	}
}
