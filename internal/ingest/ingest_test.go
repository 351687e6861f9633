package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// fixture is a write path on a new SQLite store.
type fixture struct {
	*ingest.Ingester
	Store kycd.Store
}

func newIngester(t *testing.T) fixture {
	t.Helper()
	s := sqlitetest.Open(t)
	in, err := ingest.New(context.Background(), s, ingest.Options{Sinks: kycd.Routes("log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return fixture{in, s}
}

// receive receives body and projects it.
func (f fixture) receive(t *testing.T, body []byte) (ingest.Result, error) {
	t.Helper()
	res, err := f.Receive(context.Background(), body)
	if err == nil {
		err = f.Project(context.Background(), &res)
	}
	return res, err
}

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "ralio", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReindentedRetryIsADuplicate(t *testing.T) {
	in := newIngester(t)
	body := readExample(t, "a-kyc_session_failed.json")
	if _, err := in.Receive(context.Background(), body); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatal(err)
	}
	res, err := in.Receive(context.Background(), compact.Bytes())
	if err != nil || !res.Duplicate {
		t.Fatalf("compacted copy = %+v, %v; want a duplicate, not a conflict", res, err)
	}
	if kycd.BodyHash(body) != kycd.BodyHash(compact.Bytes()) {
		t.Fatal("BodyHash differs by white space")
	}
	changed := bytes.Replace(body, []byte("EXPIRED_DOCUMENT"), []byte("BLURRY_IMAGE"), 1)
	if _, err := in.Receive(context.Background(), changed); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("same id, other content: err = %v, want ECONFLICT", err)
	}
}

func TestInvitationProjectsARelatedPartySession(t *testing.T) {
	in := newIngester(t)
	res, err := in.receive(t, readExample(t, "c-related_party.kyc_session_created.json"))
	if err != nil || res.Outcome != kycd.OutcomeApplied {
		t.Fatalf("Receive = %+v, %v", res, err)
	}
	sess, err := in.Store.Session(context.Background(), "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e")
	if err != nil {
		t.Fatal(err)
	}
	want := kycd.SubjectRef{Type: kycd.SubjectRelatedParty, ID: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"}
	if sess.Status != kycd.StatusNotStarted || sess.Subject != want {
		t.Fatalf("session = %+v, want NOT_STARTED for %+v", sess, want)
	}
	ds, err := (&app.Service{Store: in.Store}).Deliveries(context.Background(), kycd.DeliveryFilter{State: kycd.DeliveryPending, Limit: 10})
	if err != nil || len(ds.Items) != 1 {
		t.Fatalf("deliveries = %v, %v", ds, err)
	}
	d, err := in.Store.Delivery(context.Background(), ds.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var n kycd.Notification
	if err := json.Unmarshal(d.Payload, &n); err != nil {
		t.Fatal(err)
	}
	inv := n.Invitation
	if n.Type != kycd.NotifySessionInvited || inv == nil || inv.Email != "ana@example.com" ||
		inv.VerificationURL != "https://verify.example.com/session/6b7c8d9e" || inv.RoleType != "UBO" || inv.BusinessUserID != 4821 || inv.ExpiresAt.IsZero() {
		t.Fatalf("invitation notification = %+v (invitation %+v)", n, inv)
	}
}

func TestInvalidBodyIsQuarantinedWithItsFields(t *testing.T) {
	in := newIngester(t)
	body := []byte(`{"id":"7d1f2e3a-4b5c-4d6e-8f90-a1b2c3d4e5f6","event":"kyc_session_failed","timestamp":"yesterday","data":{"userId":"c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f"}}`)
	res, err := in.Receive(context.Background(), body)
	if kycd.ErrorCode(err) != kycd.EINVALID || res.QuarantineID == "" {
		t.Fatalf("Receive = %+v, %v; want EINVALID and a quarantine id", res, err)
	}
	q, err := in.Store.QuarantineItem(context.Background(), res.QuarantineID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.Body, body) || q.Reason != kycd.QuarantineInvalid || q.EventID != "7d1f2e3a-4b5c-4d6e-8f90-a1b2c3d4e5f6" {
		t.Fatalf("quarantined = %+v", q)
	}
	for _, field := range []string{`"timestamp"`, `"data.sessionId"`} {
		if !bytes.Contains(q.Problem, []byte(field)) {
			t.Errorf("quarantined problem %s does not name %s", q.Problem, field)
		}
	}
	if _, err := in.Replay(context.Background(), q.ID); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("replay of a still-invalid body = %v, want EINVALID", err)
	}
	if list, _ := in.Store.Quarantine(context.Background(), false, 10); len(list) != 1 {
		t.Fatalf("after a failed replay the quarantine lists %d bodies, want it still there", len(list))
	}
}

func TestBacklogBoundAnswersUnavailable(t *testing.T) {
	s := sqlitetest.Open(t)
	in, err := ingest.New(context.Background(), s, ingest.Options{Sinks: kycd.Routes("log"), MaxBacklog: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	body := readExample(t, "a-kyc_session_failed.json")
	// Nothing projects: the projector does not run in this test.
	for i, id := range []string{"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"} {
		b := bytes.Replace(body, []byte("550e8400-e29b-41d4-a716-446655440000"), []byte(id), 1)
		if _, err := in.Receive(context.Background(), b); err != nil {
			t.Fatalf("event %d under the bound: %v", i, err)
		}
	}
	b := bytes.Replace(body, []byte("550e8400-e29b-41d4-a716-446655440000"), []byte("33333333-3333-4333-8333-333333333333"), 1)
	if _, err := in.Receive(context.Background(), b); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Fatalf("event over the backlog bound = %v, want EUNAVAILABLE (503, Ralio retries)", err)
	}
	if n, err := in.Drain(context.Background()); err != nil || n != 2 {
		t.Fatalf("Drain = %d, %v; want the 2 events", n, err)
	}
	if _, err := in.Receive(context.Background(), b); err != nil {
		t.Fatalf("after the projector caught up: %v", err)
	}
}

// A restart finds the entries acknowledged and not yet projected: a copy
// of one is still a duplicate, and projecting them notifies under the
// ids derived from their events, once.
func TestRestartBetweenLogAndProjection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kycd.db")
	body := readExample(t, "a-kyc_session_failed.json")
	{
		s := sqlitetest.OpenPath(t, path)
		in, err := ingest.New(context.Background(), s, ingest.Options{Sinks: kycd.Routes("log")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.Receive(context.Background(), body); err != nil {
			t.Fatal(err)
		}
		in.Close()
		s.Close() // a crash after the log commit: nothing projected
	}
	s := sqlitetest.OpenPath(t, path)
	in, err := ingest.New(context.Background(), s, ingest.Options{Sinks: kycd.Routes("log")})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if res, err := in.Receive(context.Background(), body); err != nil || !res.Duplicate {
		t.Fatalf("copy after the restart = %+v, %v; want a duplicate of the unprojected entry", res, err)
	}
	if n, err := in.Drain(context.Background()); err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v; want 1", n, err)
	}
	ds, err := (&app.Service{Store: s}).Deliveries(context.Background(), kycd.DeliveryFilter{Limit: 10})
	if err != nil || len(ds.Items) != 1 || ds.Items[0].NotificationID != kycd.NotificationID("550e8400-e29b-41d4-a716-446655440000") {
		t.Fatalf("deliveries = %+v, %v; want one, for the notification derived from the event id", ds, err)
	}
}

// poisonStore refuses for good, as PostgreSQL refuses some text, any
// projection that writes one event.
type poisonStore struct {
	kycd.Store
	poison string
}

func (s poisonStore) BeginProjection(ctx context.Context) (kycd.ProjectionTx, error) {
	tx, err := s.Store.BeginProjection(ctx)
	return poisonTx{tx, s.poison}, err
}

type poisonTx struct {
	kycd.ProjectionTx
	poison string
}

func (tx poisonTx) Apply(ctx context.Context, p *kycd.Plan) error {
	for _, e := range p.Events {
		if e.ID == tx.poison {
			return errors.New("invalid byte sequence for encoding \"UTF8\": 0x00")
		}
	}
	return tx.ProjectionTx.Apply(ctx, p)
}

// An event the store refuses for good, in the middle of the log, neither
// blocks the events after it nor is lost: it goes to the quarantine.
func TestUnstorableEventIsQuarantinedNotBlocking(t *testing.T) {
	const poison = "22222222-2222-4222-8222-222222222222"
	base := sqlitetest.Open(t)
	s := poisonStore{base, poison}
	in, err := ingest.New(context.Background(), s, ingest.Options{Sinks: kycd.Routes("log")})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	body := readExample(t, "a-kyc_session_failed.json")
	ids := []string{"11111111-1111-4111-8111-111111111111", poison, "33333333-3333-4333-8333-333333333333", "44444444-4444-4444-8444-444444444444"}
	for i, id := range ids {
		b := bytes.Replace(body, []byte("550e8400-e29b-41d4-a716-446655440000"), []byte(id), 1)
		b = bytes.Replace(b, []byte("550e8400-e29b-41d4-a716-446655440002"), []byte(fmt.Sprintf("55555555-5555-4555-8555-%012d", i)), 1)
		if _, err := in.Receive(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := in.Drain(context.Background()); err != nil || n != len(ids) {
		t.Fatalf("Drain = %d, %v; want all %d entries taken, none left blocking", n, err, len(ids))
	}
	for _, id := range ids {
		_, err := base.Event(context.Background(), id)
		if id == poison {
			if kycd.ErrorCode(err) != kycd.ENOTFOUND {
				t.Errorf("the unstorable event was recorded: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("event %s after the unstorable one: %v", id, err)
		}
	}
	q, err := base.Quarantine(context.Background(), false, 10)
	if err != nil || len(q) != 1 || q[0].EventID != poison || q[0].Reason != kycd.QuarantineUnstorable || len(q[0].Body) == 0 {
		t.Fatalf("quarantine = %+v, %v; want the unstorable event with its body", q, err)
	}
}

// TestRetryOfAnEventStoredUnderAJCSHash: events stored before BodyHash read
// bodies as the decoder does keep their "jcs:" hash (RFC 8785 of the bytes);
// a re-serialised retry of one is still a duplicate, and another body still
// a conflict, whether the event is projected or only in the log.
func TestRetryOfAnEventStoredUnderAJCSHash(t *testing.T) {
	for _, projected := range []bool{true, false} {
		t.Run(fmt.Sprintf("projected %v", projected), func(t *testing.T) {
			in := newIngester(t)
			ctx := context.Background()
			body := readExample(t, "a-kyc_session_failed.json")
			canonical := jsontext.Value(bytes.Clone(body))
			if err := canonical.Canonicalize(); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(canonical)
			jcs := "jcs:" + hex.EncodeToString(sum[:])
			ev := &kycd.Event{ID: "550e8400-e29b-41d4-a716-446655440000", Type: "kyc_session_failed",
				Timestamp: time.Date(2025, 6, 19, 17, 14, 13, 123e6, time.UTC), ReceivedAt: time.Now().UTC(), Body: body, BodyHash: jcs}
			res, err := in.Append(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if projected {
				if err := in.Project(ctx, &res); err != nil {
					t.Fatal(err)
				}
				if rec, err := in.Store.Event(ctx, ev.ID); err != nil || rec.BodyHash != jcs {
					t.Fatalf("stored event = %+v, %v; want its jcs: hash kept", rec, err)
				}
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, body); err != nil {
				t.Fatal(err)
			}
			if res, err := in.Receive(ctx, compact.Bytes()); err != nil || !res.Duplicate {
				t.Fatalf("compacted retry = %+v, %v; want a duplicate", res, err)
			}
			changed := bytes.Replace(body, []byte("EXPIRED_DOCUMENT"), []byte("BLURRY_IMAGE"), 1)
			if _, err := in.Receive(ctx, changed); kycd.ErrorCode(err) != kycd.ECONFLICT {
				t.Fatalf("same id, other content: err = %v, want ECONFLICT", err)
			}
		})
	}
}
