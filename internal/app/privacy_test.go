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
