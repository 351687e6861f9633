package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// ReplayCheck says whether replaying a quarantined body can succeed now,
// and if not, why, in words an operator can act on.
type ReplayCheck struct {
	Replayable bool
	Why        string // why not; "" when Replayable
}

// ReplayChecks tells, for each of items, whether Replay would accept its
// body now: the item is still pending, a body of the signature hold
// verifies under a secret configured now, the body is a valid Ralio event
// (a fix of kycd may have made it one), and its event id is not stored
// with another body. A conflict whose original is still stored can never
// succeed: event ids are kept for good, so its replay conflicts again.
// The checks read, never write; the answer holds until the next event.
func (in *Ingester) ReplayChecks(ctx context.Context, items []*kycd.Quarantined) ([]ReplayCheck, error) {
	out := make([]ReplayCheck, len(items))
	hashes, eventIDs := make([]string, len(items)), make([]string, len(items))
	var ids []string
	for i, q := range items {
		if err := kycd.QuarantineSettled(q); err != nil {
			out[i].Why = "not pending: " + kycd.ErrorMessage(err)
			continue
		}
		if err := in.checkHeld(q); err != nil {
			out[i].Why = kycd.ErrorMessage(err)
			continue
		}
		re, err := ralio.Parse(q.Body)
		var ve *ralio.ValidationError
		switch {
		case errors.As(err, &ve):
			out[i].Why = "still not a valid Ralio event (" + fieldList(ve) + "): a replay would be refused again"
			continue
		case err != nil:
			out[i].Why = "the body cannot be decoded"
			continue
		}
		hashes[i], eventIDs[i] = kycd.BodyHash(q.Body), re.ID
		ids = append(ids, re.ID)
		out[i].Replayable = true
	}
	if len(ids) == 0 {
		return out, nil
	}
	known, err := in.store.KnownEvents(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("ingest: replay checks: %w", err)
	}
	for i, q := range items {
		if !out[i].Replayable {
			continue
		}
		if k, ok := known[eventIDs[i]]; ok && !kycd.SameBody(k.BodyHash, hashes[i], q.Body) {
			out[i] = ReplayCheck{Why: "event " + eventIDs[i] + " is stored with another body, so a replay would conflict again; compare the two bodies and discard this one if the stored one is right"}
		}
	}
	return out, nil
}

// fieldList names each bad field of a validation error.
func fieldList(ve *ralio.ValidationError) string {
	parts := make([]string, len(ve.Fields))
	for i, f := range ve.Fields {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}

// checkHeld refuses, with ECONFLICT, a body of the signature hold that
// does not verify under a secret configured now; others pass.
func (in *Ingester) checkHeld(q *kycd.Quarantined) error {
	if q.Reason != kycd.QuarantineSignature || (in.verify != nil && in.verify.Verify(q.Body, q.Signature) == nil) {
		return nil
	}
	return kycd.Errorf(kycd.ECONFLICT, "its signature does not verify under any Ralio secret configured now: "+
		"configure the secret it was signed with beside the current one (--ralio-secret NEW --ralio-secret OLD) and replay it again")
}
