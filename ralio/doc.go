// Package ralio reads the KYC webhooks of Ralio: it verifies their
// X-Signature and decodes every envelope generation Ralio has used into one
// Event.
//
// Ralio's envelope changed over time: generation A carries id and event,
// generation C eventId and eventType; data fields come in camelCase or
// snake_case; check states as "Refused" or 2; type names plain
// (kyc_session_failed) or dotted (kyc.session_failed). Parse accepts all of
// them and returns the same Event for the same facts. It is strict about what
// a receiver needs (ids are UUIDs, the timestamp is RFC 3339, each known type
// has its required fields) and lenient about the rest: unknown fields are
// ignored and unknown event types are valid. An invalid body yields a
// *ValidationError that names every wrong field, for a 400 answer.
//
// Verify the signature over the raw body before parsing it:
//
//	v, err := ralio.NewVerifier(currentSecret, previousSecret)
//	…
//	if err := v.Verify(body, r.Header.Get(ralio.SignatureHeader)); err != nil {
//		// 401: ErrNoSignature or ErrBadSignature
//	}
//	ev, err := ralio.Parse(body)
//	var invalid *ralio.ValidationError
//	if errors.As(err, &invalid) {
//		// 400, one problem detail per invalid.Fields entry
//	}
//	if ev.Type == ralio.TypeSessionFailed {
//		for _, c := range ev.Checks { … }
//	}
//
// The package knows nothing of kycd, so that any Go program receiving Ralio
// webhooks can import it. Besides the standard library it depends only on
// github.com/go-json-experiment/json/jsontext, the JSON tokenizer that Go
// ships as encoding/json/jsontext behind GOEXPERIMENT=jsonv2, with which
// Parse reads a body in one pass.
package ralio
