package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// quarantine keeps a refused body with the problem it is answered with, and
// returns its id.
func (in *Ingester) quarantine(ctx context.Context, now time.Time, reason, eventID string, body, original []byte, refusal error) (string, error) {
	q, err := quarantineItem(uuid.NewString(), now, reason, eventID, body, original, refusal)
	if err != nil {
		return "", err
	}
	if err := in.store.AddQuarantine(ctx, q); err != nil {
		return "", &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "could not keep the refused body", Err: err}
	}
	return q.ID, nil
}

// quarantineID is the id of the quarantine item the projector makes of a
// log entry: derived from its seq, so a projection redone keeps one item.
func quarantineID(seq int64) string {
	return uuid.NewSHA1(quarantineNamespace, strconv.AppendInt(nil, seq, 10)).String()
}

// quarantineItem builds the quarantine item of a refused body with the
// problem its refusal answers.
func quarantineItem(id string, at time.Time, reason, eventID string, body, original []byte, refusal error) (*kycd.Quarantined, error) {
	doc, err := json.Marshal(Problem(refusal))
	if err != nil {
		return nil, fmt.Errorf("ingest: quarantine: %w", err)
	}
	return &kycd.Quarantined{
		ID: id, ReceivedAt: at, Reason: reason, Problem: doc, EventID: eventID, Body: body, OriginalBody: original,
	}, nil
}
