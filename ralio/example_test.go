package ralio_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/kycd/kycd/ralio"
)

func ExampleParse() {
	body, err := os.ReadFile("testdata/a-kyc_session_failed.json")
	if err != nil {
		log.Fatal(err)
	}
	ev, err := ralio.Parse(body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Type, ev.Timestamp)
	fmt.Println("session", ev.SessionID)
	fmt.Println("subject", ev.Subject.Type, ev.Subject.ID)
	for _, c := range ev.Checks {
		for _, r := range c.Reasons {
			fmt.Printf("%s %s: %s: %s\n", c.Type, c.State, r.Code, r.Message)
		}
	}
	// Output:
	// kyc_session_failed 2025-06-19 17:14:13.123 +0000 UTC
	// session 550e8400-e29b-41d4-a716-446655440002
	// subject user 550e8400-e29b-41d4-a716-446655440001
	// document-verification Refused: EXPIRED_DOCUMENT: The provided document has expired
	// face-matching Refused: NO_MATCH: Face does not match the document photo
}

func ExampleParse_invalid() {
	body := []byte(`{"eventId":"42","eventType":"kyc.session_verified",
		"data":{"session_id":"550e8400-e29b-41d4-a716-446655440002","entityType":"related-party","userId":"550e8400-e29b-41d4-a716-446655440001"}}`)
	_, err := ralio.Parse(body)
	fmt.Println(err)
	var invalid *ralio.ValidationError
	if errors.As(err, &invalid) {
		for _, f := range invalid.Fields {
			fmt.Printf("%s: %s\n", f.Field, f.Reason)
		}
	}
	// Output:
	// ralio: invalid event: eventId must be a UUID; timestamp is required; data.relatedPartyId is required
	// eventId: must be a UUID
	// timestamp: is required
	// data.relatedPartyId: is required
}

func ExampleVerifier() {
	body := []byte(`{"id":"550e8400-e29b-41d4-a716-446655440000","event":"kyc_session_verified"}`)
	// Ralio still signs with the old secret while the new one is rolled out.
	signature := ralio.Sign(body, "old-secret")

	v, err := ralio.NewVerifier("new-secret", "old-secret")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.Verify(body, signature))
	fmt.Println(v.Verify(body, "sha256="+signature))
	fmt.Println(v.Verify(append(body, ' '), signature))
	fmt.Println(v.Verify(body, ""))
	// Output:
	// <nil>
	// <nil>
	// ralio: signature does not match
	// ralio: missing signature
}

func ExampleSign() {
	fmt.Println(ralio.Sign([]byte(`{"event":"kyc_session_verified"}`), "secret"))
	// Output: 29eb4b373c7b2da18a3834a095981af9808c691dad53ec05583a34c1346a7146
}
