package privacy_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/ingest/ingesttest"
	"github.com/kycd/kycd/internal/privacy"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// Every goroutine the package's tests start has an owner that stops it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
	r, err := privacy.Erase(ctx, s, routes, strings.ToUpper(party), "", at)
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
	again, err := privacy.Erase(ctx, s, routes, party, kycd.SubjectRelatedParty, at.Add(time.Hour))
	if err != nil || again.Erased != (kycd.ErasureCounts{}) || again.NotificationID == r.NotificationID {
		t.Fatalf("erasing again = %+v, %v", again, err)
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	s := sqlitetest.Open(t)
	party := uuid.NewString()
	ingesttest.Ingest(t, s, invitation(party, uuid.NewString()), ingest.Options{Sinks: kycd.Routes("log")})
	if _, err := privacy.Resolve(ctx, s, party, "people"); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Errorf("an unknown type = %v, want EINVALID", err)
	}
	if _, err := privacy.Resolve(ctx, s, party, kycd.SubjectUser); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Errorf("the party as a user = %v, want ENOTFOUND", err)
	}
	if _, err := privacy.Export(ctx, s, uuid.NewString(), "", time.Now()); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Errorf("export of an unknown subject = %v, want ENOTFOUND", err)
	}
	x, err := privacy.Export(ctx, s, party, "", time.Now())
	if err != nil || x.Subject.Type != kycd.SubjectRelatedParty || len(x.Events) != 1 || !strings.Contains(string(x.Events[0].Body), "ana@example.com") {
		t.Errorf("export = %+v, %v", x, err)
	}
}
