package httpsink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sink/httpsink"
)

// README excerpt "Receiving notifications": start

// receiver handles kycd's notifications: it checks the signature, drops
// repeats by notification id and answers 204.
func receiver(secret string) (http.HandlerFunc, error) {
	wh, err := standardwebhooks.NewWebhook(secret) // KYCD_SINK_SECRET, whsec_…
	if err != nil {
		return nil, err
	}
	var seen sync.Map // in production: a unique key in your database
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var n struct { // id, type, failures[].code, failures[].guidance
			ID, Type string
			Failures []struct{ Code, Guidance string }
		}
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		if _, repeat := seen.LoadOrStore(n.ID, true); !repeat {
			fmt.Println(n.Type, n.Failures) // act on it here, once
		}
		w.WriteHeader(http.StatusNoContent)
	}, nil
}

// README excerpt "Receiving notifications": end

// Example_receiver runs the receiver of docs/notifications.md against kycd's HTTP sink:
// a notification sent twice is acted on once, and a request with a forged
// signature is refused.
func Example_receiver() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	handler, err := receiver(secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()

	n := kycd.Notification{
		ID:     "3f1c1c7e-2f0a-4d8e-9b1a-5c6d7e8f9a0b",
		Type:   kycd.NotifySessionRejected,
		Status: kycd.StatusRejected,
		Failures: []kycd.Failure{{
			CheckType: "document-verification",
			Code:      "EXPIRED_DOCUMENT",
			Message:   "The provided document has expired",
			Guidance:  "Ask the user for a valid document",
		}},
	}
	payload, _ := json.Marshal(n)
	m := kycd.Message{ID: n.ID, Type: n.Type, Payload: payload}

	sink, err := httpsink.New(srv.URL, []string{secret}, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 2 { // a retry after a lost answer sends it again
		fmt.Println("send:", sink.Send(context.Background(), m))
	}

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", n.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("webhook-signature", "v1,bm90IHRoZSByaWdodCBzaWduYXR1cmUgYXQgYWxsIQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("forged:", resp.Status)

	// Output:
	// kyc.session.rejected [{EXPIRED_DOCUMENT Ask the user for a valid document}]
	// send: <nil>
	// send: <nil>
	// forged: 401 Unauthorized
}
