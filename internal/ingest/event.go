package ingest

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// toEvent translates Ralio's event into what kycd records: it is where a
// decoded event becomes a kycd.Event, so its times (Ralio's and the time
// of receipt) are cut to kycd.EventTimePrecision here. Every string taken
// from the body goes through kycd.CleanText, so that both stores keep the
// same text (ids and timestamps are validated by ralio.Parse already).
func toEvent(re *ralio.Event, body []byte, now time.Time) *kycd.Event {
	clean := kycd.CleanText
	ev := &kycd.Event{
		ID:         re.ID,
		Type:       clean(re.Type),
		Timestamp:  kycd.EventTime(re.Timestamp),
		ReceivedAt: kycd.EventTime(now),
		Body:       body,
		BodyHash:   kycd.BodyHash(body),
		Source:     sourceOf(body),
	}
	if !re.Known {
		return ev
	}
	ev.SessionID = re.SessionID
	ev.Subject = kycd.SubjectRef{Type: re.Subject.Type, ID: re.Subject.ID}
	switch re.Type {
	case ralio.TypeKYCStateUpdated, ralio.TypeKYBStateUpdated:
		ev.Level = clean(re.Level)
		return ev
	case ralio.TypeKYCExpirationWarning:
		if x := re.Expiration; x != nil {
			ev.Expiration = &kycd.Expiration{Date: clean(x.Date), DaysRemaining: x.DaysRemaining, Action: clean(x.Action)}
		}
		return ev
	}
	ev.Status = kycd.StatusFor(re.Type)
	ev.Checks = make([]kycd.Check, 0, len(re.Checks))
	for _, c := range re.Checks {
		kc := kycd.Check{Type: clean(c.Type), State: clean(c.State), Reasons: make([]kycd.Reason, 0, len(c.Reasons))}
		for _, r := range c.Reasons {
			kc.Reasons = append(kc.Reasons, kycd.Reason{Type: clean(r.Type), Code: clean(r.Code), Message: clean(r.Message), Category: clean(r.Category)})
		}
		ev.Checks = append(ev.Checks, kc)
	}
	if inv := re.Invitation; inv != nil {
		ev.Invitation = &kycd.Invitation{
			BusinessUserID:  inv.BusinessUserID,
			RoleType:        clean(inv.RoleType),
			FirstName:       clean(inv.FirstName),
			LastName:        clean(inv.LastName),
			Email:           clean(inv.Email),
			PhoneNumber:     clean(inv.PhoneNumber),
			VerificationURL: clean(inv.VerificationURL),
			ExpiresAt:       kycd.EventTime(inv.ExpiresAt),
		}
	}
	return ev
}

// sourceOf reads the mark kycd puts on the bodies it makes itself
// (reconciliation); "" for Ralio's own webhooks.
func sourceOf(body []byte) string {
	if !bytes.Contains(body, []byte(`"kycdSource"`)) {
		return ""
	}
	var m struct {
		Source string `json:"kycdSource"`
	}
	if json.Unmarshal(body, &m) == nil && m.Source == kycd.SourceReconciliation {
		return m.Source
	}
	return ""
}
