package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// A signed event with U+0000 and a key-reordered retry of it: both stores
// answer 200, read the session back, and recognise the retry as a
// duplicate (issue 7).
func TestOddBodiesOnBothStores(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			var s *kycdServer
			if store == "sqlite" {
				s = startServer(t)
			} else {
				s = serve(t, nil, "--addr", "127.0.0.1:0", "--database", postgrestest.URL(t), "--ralio-secret", testSecret, "--admin-token", testToken)
				s.Secret, s.Token = testSecret, testToken
			}
			id, session := uuid.NewString(), uuid.NewString()
			body := fmt.Appendf(nil, `{"id":%q,"event":"kyc_session_failed","timestamp":"2026-03-17T16:00:00.000Z","data":{"sessionId":%q,"userId":%q,"checks":[{"type":"document-verification","state":"Refused","reasons":[{"type":"document","code":"EXPIRED_DOCUMENT","message":"nul \u0000 here"}]}]}}`,
				id, session, testUser)
			s.deliver(t, body)
			got := s.session(t, session)
			wantStatus(t, got, "REJECTED")
			if len(got.Checks) != 1 || got.Checks[0].Reasons[0].Message != "nul \uFFFD here" {
				t.Errorf("checks = %+v, want the message with U+0000 as U+FFFD", got.Checks)
			}
			// The same event, re-serialised: other key order and spacing.
			reordered := fmt.Appendf(nil, `{ "data": {"checks": [{"reasons": [{"message": "nul \u0000 here", "code": "EXPIRED_DOCUMENT", "type": "document"}], "state": "Refused", "type": "document-verification"}], "userId": %q, "sessionId": %q}, "timestamp": "2026-03-17T16:00:00.000Z", "event": "kyc_session_failed", "id": %q }`,
				testUser, session, id)
			wantJSON(t, s.post(t, reordered), http.StatusOK, `{"received":true,"duplicate":true}`)
		})
	}
}
