package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/testenv"
)

// A resend to a NATS sink reaches its consumers: the stream stores the
// notification a second time instead of acking the publish as a duplicate
// of the first (which kycd used to record delivered while nobody got it).
func TestResendReachesNATSConsumers(t *testing.T) {
	t.Parallel()
	url := testenv.NATSURL(t)
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "kycde2e" + hex.EncodeToString(b)
	stream := strings.ToUpper(prefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", stream, err)
		}
	})
	msgs := func() []string {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return nil
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
		}
		return ids
	}

	s := startServer(t, "--sink", "nats="+url+"?subject="+prefix+"&create=1")
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	id := kycd.NotificationID(failedEventID)
	eventually(t, "the notification in the stream", func() bool { return len(msgs()) == 1 })

	a := s.mustDo(t, newRequest(http.MethodPost, s.URL+"/api/v1/notifications/"+id+"/resend", []byte(`{"sink":"nats"}`),
		http.Header{"Authorization": {"Bearer " + s.Token}, "Content-Type": {"application/json"}}))
	if a.status != http.StatusAccepted {
		t.Fatalf("resend = %s, want 202", a)
	}
	eventually(t, "the resent notification in the stream", func() bool { return len(msgs()) == 2 })
	got := msgs()
	if got[0] != id || !strings.HasPrefix(got[1], id+"~") {
		t.Errorf("Nats-Msg-Id of the send and the resend = %q, want %s and %s~<round>", got, id, id)
	}
}
