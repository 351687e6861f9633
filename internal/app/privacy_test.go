package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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

func invitation(party, session string) *kycd.Event {
	id := uuid.NewString()
	body := `{"id":"` + id + `","email":"ana@example.com"}`
	return &kycd.Event{ID: id, Type: "related_party.kyc_session_created", Timestamp: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		ReceivedAt: time.Now().UTC(), Body: []byte(body), BodyHash: kycd.BodyHash([]byte(body)), SessionID: session,
		Subject: kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: party}, Status: kycd.StatusNotStarted,
		Invitation: &kycd.Invitation{Email: "ana@example.com", PhoneNumber: "+34900000000", VerificationURL: "https://verify.example.com/x"}}
}

// Erase tells every sink whose events take kyc.subject.erased, with the
// subject only, once.
func TestEraseNotifiesTheSinksThatTakeIt(t *testing.T) {
	ctx := context.Background()
	s := sqlitetest.Open(t)
	routes := []kycd.SinkRoute{{Name: "crm"}, {Name: "bus", Events: []string{"kyc.subject.*"}}, {Name: "audit", Events: []string{"kyc.session.*"}}}
	party := uuid.NewString()
	ingesttest.Ingest(t, s, invitation(party, uuid.NewString()), ingest.Options{Sinks: routes})

	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	svc := &app.Service{Store: s, Sinks: routes, Now: func() time.Time { return at }}
	r, err := svc.EraseSubject(ctx, ana, strings.ToUpper(party), "")
	if err != nil {
		t.Fatal(err)
	}
	sub := kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: party}
	if r.Subject != sub || !r.ErasedAt.Equal(at) || r.Erased.EventBodies != 1 || r.Erased.Notifications != 1 ||
		r.NotificationID != kycd.ErasedNotificationID(sub, at) {
		t.Fatalf("receipt = %+v", r)
	}
	page, err := (&app.Service{Store: s}).Deliveries(ctx, kycd.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var sinks []string
	for _, d := range page.Items {
		if d.NotificationType != kycd.NotifySubjectErased {
			continue
		}
		sinks = append(sinks, d.Sink)
		full, err := s.Delivery(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var n map[string]any
		if err := json.Unmarshal(full.Payload, &n); err != nil {
			t.Fatal(err)
		}
		if len(n) != 4 || n["id"] != r.NotificationID || n["subject"].(map[string]any)["id"] != party {
			t.Errorf("kyc.subject.erased = %s, want id, type, occurredAt and the subject", full.Payload)
		}
	}
	if strings.Join(sinks, ",") != "crm,bus" && strings.Join(sinks, ",") != "bus,crm" {
		t.Errorf("kyc.subject.erased went to %v, want crm and bus (audit takes kyc.session.* only)", sinks)
	}
	// Erasing again erases nothing more, and notifies again: the sinks may
	// have missed the first.
	svc.Now = func() time.Time { return at.Add(time.Hour) }
	again, err := svc.EraseSubject(ctx, ana, party, kycd.SubjectRelatedParty)
	if err != nil || again.Erased != (kycd.ErasureCounts{}) || again.NotificationID == r.NotificationID {
		t.Fatalf("erasing again = %+v, %v", again, err)
	}
}

// Export and erasure find the subject by its id in any case and by its
// type; each is in the audit trail, with the subject's target when it was
// found and the asked one when not.
func TestExportAndEraseResolveAndAudit(t *testing.T) {
	ctx := context.Background()
	s := sqlitetest.Open(t)
	party := uuid.NewString()
	ingesttest.Ingest(t, s, invitation(party, uuid.NewString()), ingest.Options{Sinks: kycd.Routes("log")})
	svc := &app.Service{Store: s}
	if _, err := svc.ExportSubject(ctx, ana, party, "people"); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Errorf("an unknown type = %v, want EINVALID", err)
	}
	if _, err := svc.ExportSubject(ctx, ana, party, kycd.SubjectUser); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Errorf("the party as a user = %v, want ENOTFOUND", err)
	}
	unknown := uuid.NewString()
	if _, err := svc.EraseSubject(ctx, ana, strings.ToUpper(unknown), ""); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Errorf("erasure of an unknown subject = %v, want ENOTFOUND", err)
	}
	x, err := svc.ExportSubject(ctx, ana, strings.ToUpper(party), "")
	if err != nil || x.Subject.Type != kycd.SubjectRelatedParty || len(x.Events) != 1 || !strings.Contains(string(x.Events[0].Body), "ana@example.com") {
		t.Errorf("export = %+v, %v", x, err)
	}
	page, err := svc.Audit(ctx, kycd.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Items {
		got = append(got, e.Actor+" "+e.Action+" "+e.Target+" "+e.Outcome+" "+e.Detail)
	}
	want := []string{
		"cli:ana subject.export subject:related-party:" + party + " ok sessions=1 events=1 notifications=1 quarantine=0",
		"cli:ana subject.erase subject:" + unknown + " failed not_found: subject " + unknown + " not found",
		"cli:ana subject.export subject:user:" + party + " failed not_found: subject " + party + " not found",
	}
	if len(got) < 3 || strings.Join(got[:3], "\n") != strings.Join(want, "\n") {
		t.Errorf("audit trail =\n%s\nwant first\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// keepsCopies is a store whose write-ahead log cannot be emptied.
type keepsCopies struct{ kycd.Store }

func (keepsCopies) DropCopies(context.Context) error {
	return errors.New("a reader holds the write-ahead log")
}

// An erasure whose store cannot drop the copies of what it overwrote
// stands, and its receipt says that copies may remain.
func TestErasureSaysWhenCopiesRemain(t *testing.T) {
	ctx := context.Background()
	s := sqlitetest.Open(t)
	party := uuid.NewString()
	ingesttest.Ingest(t, s, invitation(party, uuid.NewString()), ingest.Options{Sinks: kycd.Routes("log")})
	var logged bytes.Buffer
	svc := &app.Service{Store: keepsCopies{s}, Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	r, err := svc.EraseSubject(ctx, ana, party, "")
	if err != nil || r.Erased.EventBodies != 1 || !strings.Contains(r.Warning, "may still hold copies") {
		t.Fatalf("erasure = %+v, %v; want done, with a warning", r, err)
	}
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "a reader holds the write-ahead log") {
		t.Errorf("log = %s, want a warning with the cause", logged.String())
	}
	if r, err := (&app.Service{Store: s}).EraseSubject(ctx, ana, party, ""); err != nil || r.Warning != "" {
		t.Errorf("erasure on SQLite = %+v, %v; want no warning", r, err)
	}
}

// A person known only through a refused body (no session, level or event
// names them) is exported with that body and erased: the body goes, the
// item stays, resolved as erased, and a later export still shows it. The
// body does not say the subject's type, so it must be given; an id that no
// body names is not found, with a type or without.
func TestQuarantineOnlySubject(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, s kycd.Store) {
		ctx := context.Background()
		svc, _ := service(s)
		svc.Sinks = kycd.Routes("crm")
		user, other := uuid.NewString(), uuid.NewString()
		body := `{"id":"` + uuid.NewString() + `","type":"user.kyc_session_created","data":{"userId":"` + strings.ToUpper(user) +
			`","email":"zoe@example.com","phone":"+34600000000"`
		named := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: time.Now().UTC().Truncate(time.Millisecond), Reason: kycd.QuarantineInvalid,
			Problem: []byte(`{"detail":"unexpected end of JSON input"}`), Body: []byte(body)}
		unrelated := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: named.ReceivedAt, Reason: kycd.QuarantineInvalid,
			Problem: []byte(`{"detail":"x"}`), Body: []byte(`{"data":{"userId":"` + other + `"}`)}
		for _, q := range []*kycd.Quarantined{named, unrelated} {
			if err := s.AddQuarantine(ctx, q); err != nil {
				t.Fatal(err)
			}
		}

		if _, err := svc.ExportSubject(ctx, admin, user, ""); kycd.ErrorCode(err) != kycd.EINVALID || !strings.Contains(err.Error(), "give it") {
			t.Errorf("export without a type = %v, want EINVALID asking for it", err)
		}
		if _, err := svc.EraseSubject(ctx, admin, user, ""); kycd.ErrorCode(err) != kycd.EINVALID {
			t.Errorf("erasure without a type = %v, want EINVALID", err)
		}
		// Only a UUID is searched for: "example" is in the body, but names
		// no one.
		if _, err := svc.ExportSubject(ctx, admin, "example", kycd.SubjectUser); kycd.ErrorCode(err) != kycd.ENOTFOUND {
			t.Errorf("export of an id that is no UUID = %v, want ENOTFOUND", err)
		}
		nowhere := uuid.NewString()
		for _, typ := range []string{"", kycd.SubjectUser} {
			if _, err := svc.ExportSubject(ctx, admin, nowhere, typ); kycd.ErrorCode(err) != kycd.ENOTFOUND {
				t.Errorf("export of an id named nowhere (type %q) = %v, want ENOTFOUND", typ, err)
			}
			if _, err := svc.EraseSubject(ctx, admin, nowhere, typ); kycd.ErrorCode(err) != kycd.ENOTFOUND {
				t.Errorf("erasure of an id named nowhere (type %q) = %v, want ENOTFOUND", typ, err)
			}
		}

		x, err := svc.ExportSubject(ctx, admin, strings.ToUpper(user), kycd.SubjectUser)
		if err != nil {
			t.Fatal(err)
		}
		sub := kycd.SubjectRef{Type: kycd.SubjectUser, ID: user}
		if x.Subject != sub || len(x.Sessions) != 0 || len(x.Events) != 0 || len(x.Notifications) != 0 || len(x.Quarantine) != 1 ||
			x.Quarantine[0].ID != named.ID || x.Quarantine[0].Body == nil || !strings.Contains(*x.Quarantine[0].Body, "zoe@example.com") {
			t.Fatalf("export = %+v, want the subject with the one body that names it", x)
		}
		if e := lastAudit(t, s, kycd.AuditSubjectExport, kycd.SubjectTarget(sub)); e.Outcome != "ok" || e.Detail != "sessions=0 events=0 notifications=0 quarantine=1" {
			t.Errorf("export audit = %+v", e)
		}

		r, err := svc.EraseSubject(ctx, admin, user, kycd.SubjectUser)
		if err != nil {
			t.Fatal(err)
		}
		if r.Subject != sub || r.Erased != (kycd.ErasureCounts{Quarantine: 1}) || r.NotificationID != kycd.ErasedNotificationID(sub, r.ErasedAt) {
			t.Errorf("receipt = %+v, want the one body erased and kyc.subject.erased sent", r)
		}
		if e := lastAudit(t, s, kycd.AuditSubjectErase, kycd.SubjectTarget(sub)); e.Outcome != "ok" || e.Detail != "eventBodies=0 sessions=0 notifications=0 quarantine=1" {
			t.Errorf("erasure audit = %+v", e)
		}
		q, err := s.QuarantineItem(ctx, named.ID)
		if err != nil || len(q.Body) != 0 || q.ReplayResult != kycd.ErasedReplayResult {
			t.Errorf("erased item = %+v, %v; want no body, resolved as erased", q, err)
		}
		if q, err := s.QuarantineItem(ctx, unrelated.ID); err != nil || len(q.Body) == 0 || q.ReplayResult != "" {
			t.Errorf("the other item = %+v, %v; want it untouched", q, err)
		}

		again, err := svc.ExportSubject(ctx, admin, user, kycd.SubjectUser)
		if err != nil || len(again.Quarantine) != 1 || again.Quarantine[0].ID != named.ID || (again.Quarantine[0].Body != nil && *again.Quarantine[0].Body != "") || again.Quarantine[0].ReplayResult != kycd.ErasedReplayResult {
			t.Fatalf("export after the erasure = %+v, %v; want the item, erased", again, err)
		}
		if r, err := svc.EraseSubject(ctx, admin, user, kycd.SubjectUser); err != nil || r.Erased != (kycd.ErasureCounts{}) {
			t.Errorf("erasing again = %+v, %v; want nothing more erased", r, err)
		}
	})
}
