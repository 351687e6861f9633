package natssink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/dispatch"
	"github.com/kycd/kycd/internal/fakeclock"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/ingest/ingesttest"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// forgetful loses every attempt record, as a kycd that dies right after the
// stream acked its publish would.
type forgetful struct{ kycd.Store }

func (forgetful) RecordAttempts(context.Context, string, []kycd.AttemptRecord) ([]error, error) {
	return nil, errors.New("process died before recording the attempt")
}

// kycd publishes a notification, dies before recording it, and a second
// dispatcher publishes it again once the lease expires: the stream keeps it
// once, by its Nats-Msg-Id.
func TestRepublishAfterACrashIsStoredOnce(t *testing.T) {
	url, js := natsServer(t)
	prefix, stream := uniquePrefix(t, js)
	spec := "nats=" + url + "?subject=" + prefix + "&create=1"
	sink := open(t, spec[len("nats="):])

	store := sqlitetest.Open(t)
	clock := fakeclock.New(time.Now())
	ev := &kycd.Event{ID: uuid.NewString(), Type: "kyc_session_failed", Timestamp: clock.Now(), ReceivedAt: clock.Now(),
		Body: []byte(`{}`), BodyHash: "h", SessionID: uuid.NewString(),
		Subject: kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}, Status: kycd.StatusRejected}
	ingesttest.Ingest(t, store, ev, ingest.Options{Sinks: kycd.Routes(spec)})

	newDispatcher := func(s kycd.Store) *dispatch.Dispatcher {
		d, err := dispatch.New(dispatch.Options{Store: s, Sinks: map[string]kycd.Sink{spec: sink}, Now: clock.Now,
			Timeout: 5 * time.Second, Lease: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if n, _ := newDispatcher(forgetful{store}).DispatchOnce(context.Background()); n != 1 {
		t.Fatalf("first dispatcher claimed %d, want 1", n)
	}
	clock.Add(31 * time.Second)
	if n, err := newDispatcher(store).DispatchOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("second dispatcher claimed %d (%v), want the delivery again after the lease", n, err)
	}

	ds, err := (&app.Service{Store: store}).Deliveries(context.Background(), kycd.DeliveryFilter{State: kycd.DeliveryDelivered, Limit: 10})
	if err != nil || len(ds.Items) != 1 {
		t.Fatalf("delivered = %v, %v; want the one delivery", ds, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages after two publishes of one notification, want 1", info.State.Msgs)
	}
	msg, err := st.GetLastMsgForSubject(ctx, prefix+".kyc.session.rejected")
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("Nats-Msg-Id"); got != kycd.NotificationID(ev.ID) {
		t.Fatalf("Nats-Msg-Id = %q, want the notification id %s", got, kycd.NotificationID(ev.ID))
	}
}
