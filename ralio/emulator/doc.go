// Package emulator is a local Ralio, for trying a webhook receiver end to
// end and for testing it under Ralio's behaviour: its REST API for KYC
// sessions, a control API that makes things happen, and the webhooks Ralio
// would send about them, signed and retried the way Ralio does, with faults
// injected on demand. `kycd emulator` serves it; kycd's own end-to-end tests
// use it too. State lives in memory.
//
// # Ralio's REST API (ralio/CONTRACT.md, last section)
//
// Every route needs Authorization: Bearer <API key>; without it, 401.
//
//	POST /api/v1/account/users/{uid}/identity-verifications           201, the new session
//	GET  /api/v1/account/users/{uid}/identity-verifications?page=&pageSize=
//	GET  /api/v1/account/users/{uid}/identity-verifications/{sessionId}/checks
//	GET  /api/v1/account/users/{uid}/identity-verifications/{sessionId}/state-history
//	GET  /api/v1/account/business-user/{uid}/kyb-sessions?page=&pageSize=
//
// Field names are CONTRACT.md's, with its mix of cases: a session is {id,
// state, type, created_at, updated_at, expiresAt, hostedUrl, flow, data};
// checks are {session_id, checks[{id, type, state, data, created_at,
// updated_at, refused_reasons[{id, type, code, message, mappedError?}]}]};
// the history is {logs[{id, new_state, created_at}]}; a KYB session is {id,
// kybId, state, documents, createdAt, updatedAt}. Where CONTRACT.md is
// silent, the emulator chooses:
//
//   - States are names (NOT_STARTED, STARTED, VERIFIED, REVIEW, REJECTED,
//     EXPIRED), check states Validated or Refused; times are ISO 8601 with
//     milliseconds and Z, like webhook timestamps.
//   - A list answers {"data": [...], "pagination": {page, pageSize,
//     numPages, total, next, previous}}; next and previous are page numbers,
//     null at either end. Pages count from 1; pageSize defaults to 20.
//     A page or pageSize out of range (pageSize over 100) is a 400, not
//     clamped. Items are oldest first, so sessions opened while a client
//     pages through land on the last page instead of shifting the others.
//     An unknown user has an empty list.
//   - Creating a session takes an optional body {type, flow, data}
//     (defaults KYC, default, {}) and answers 201 with the session in state
//     NOT_STARTED, its hostedUrl valid 7 days (expiresAt). No webhook:
//     Ralio announces no NOT_STARTED for a user.
//   - A related party's sessions are listed under users/{uid} with the
//     party's id: CONTRACT.md shows no other path for them.
//   - The history starts with NOT_STARTED at the creation. Its entries' ids
//     are their own UUIDs, not the ids of the webhooks that announced them;
//     what ties an entry to its webhook is the time: a webhook's timestamp
//     equals the created_at of the entry its state change made.
//   - A session's checks are those of its newest outcome.
//   - Errors are {"statusCode", "error", "message"}; a session asked for
//     under another user is a 404.
//
// # Control API (open; bind the emulator to loopback)
//
//	POST /emulator/v1/sessions/{sessionId}/outcome          {"event", "checks"?, "userId"?|"relatedPartyId"?}
//	POST /emulator/v1/sessions/{sessionId}/start            NOT_STARTED → STARTED, no webhook
//	POST /emulator/v1/users/{id}/kyc-level                  {"level":"REGULAR"|"LIGHT"} → kyc_state_updated
//	POST /emulator/v1/related-parties/{id}/kyc-level        the same for a related party
//	POST /emulator/v1/users/{id}/expiration-warning         {"expirationDate"?, "daysRemaining"?, "action"?} → kyc_expiration_warning
//	POST /emulator/v1/related-parties/{id}/expiration-warning
//	POST /emulator/v1/business-users/{id}/kyb-level         {"level"} → kyb_state_updated
//	POST /emulator/v1/business-users/{id}/related-parties   contact details? → related_party.kyc_session_created
//	POST /emulator/v1/business-users/{id}/kyb-sessions      {"state"?, "documents"?}: a KYB session, no webhook
//	GET  /emulator/v1/deliveries?eventId=&sessionId=&state= each webhook's attempts and state, and "idle"
//	POST /emulator/v1/deliveries/{eventId}/redeliver        the same body again, a new round of attempts
//
// An outcome (kyc_session_failed, kyc_session_verified,
// kyc_session_manual_review, kyc_session_expired) sets the session's state,
// replaces its checks and appends a history entry whose created_at is the
// webhook's timestamp. Without "checks", a failure has one refused
// document-verification (EXPIRED_DOCUMENT), a verification passed
// document-verification and face-matching checks, the others none; "checks":
// [] means none. An unknown session is opened by the outcome when the body
// names its userId or relatedPartyId, so a single call drives a demo. Any
// outcome may follow any state, since Ralio overturns "final" outcomes. Each
// call that emits a webhook answers {"eventId", "type", "timestamp", …}.
//
// Every timestamp the emulator hands out is at least a millisecond after
// the previous one, so "newest by timestamp" is the order in which the
// emulator made things happen, with no ties for a receiver to break.
//
// # Webhooks
//
// POSTed to the webhook URL with X-Signature, the hex HMAC-SHA256 of the
// body (ralio.Sign). An attempt waits 60 s for the answer. 2xx: delivered.
// 4xx, and also 1xx and 3xx (redirects are not followed): dropped, never
// retried. 5xx, timeouts and connection errors: retried after RetryBase,
// then twice as long each time (no jitter, at most 24 h apart), until
// MaxAttempts attempts have failed: gave_up. The defaults (1 min, 10
// attempts) retry for about 8.5 hours.
//
// Envelope generations (CONTRACT.md): A has id/event, no entityType (a
// related party is known by relatedPartyId alone), checks always present
// with states "Validated"/"Refused" and reasons without category, and
// kyc_state_updated in snake_case (kyc_id, user_id); B adds entityType,
// check states 1/2 and each reason's category; C is B with eventId/eventType.
// B and C omit checks when there are none. Whatever the generation, ralio.Parse
// reads the same event from the body (A cannot carry a reason's category).
// mixed picks one per event.
//
// Faults: Duplicates sends a delivered webhook once more, with that
// probability, after a random time under Reorder (at once when Reorder is
// 0); the extra send is listed among the attempts as a duplicate and does
// not change the state. Reorder holds each new webhook for a random time
// under Reorder before its first attempt. Seed makes those choices
// repeatable; ids stay random. Redeliver (a provider's "resend") starts a
// new round of attempts for any webhook with the same body, e.g. to make
// one that gave up arrive late.
package emulator
