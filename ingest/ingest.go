// Package ingest runs a signed Ralio body through decoding, the store and,
// when it must be refused, the quarantine. The webhook handler and the
// quarantine replay (API and CLI) share it, so a replayed body meets exactly
// the rules a delivered one does.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// Ingester records Ralio events. Signature checks happen before it: every
// body it sees came from Ralio.
type Ingester struct {
	Store kycd.Store
	// Sinks names the sinks each notification is delivered to.
	Sinks []string
	// Guide returns merchant-facing guidance for a failure code; may be nil.
	Guide func(code string) string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Notified is called after a notification was committed, to wake the
	// dispatcher; may be nil.
	Notified func()
}

// Result is what became of one body.
type Result struct {
	kycd.IngestResult
	EventID      string
	EventType    string
	Known        bool   // the event type is one kycd understands
	QuarantineID string // set when the body was refused and kept
}

// Receive decodes body and records it. It fails with EINVALID (wrapping a
// *ralio.ValidationError) or ECONFLICT after keeping the body in quarantine,
// and with EUNAVAILABLE when the store could not record it or, for a refused
// body, could not keep it: then nothing is lost as long as the caller
// answers so that Ralio retries.
func (in *Ingester) Receive(ctx context.Context, body []byte) (Result, error) {
	return in.receive(ctx, body, true)
}

func (in *Ingester) receive(ctx context.Context, body []byte, quarantine bool) (Result, error) {
	now := in.now()
	re, err := ralio.Parse(body)
	if err != nil {
		var ve *ralio.ValidationError
		if !errors.As(err, &ve) {
			return Result{}, &kycd.Error{Code: kycd.EINTERNAL, Message: "could not decode the event", Err: err}
		}
		// Parse returns what it could decode; a valid id indexes the quarantine.
		res := Result{EventID: re.ID}
		refusal := &kycd.Error{Code: kycd.EINVALID, Message: "the body is not a valid Ralio event", Err: ve}
		if quarantine {
			if res.QuarantineID, err = in.quarantine(ctx, now, kycd.QuarantineInvalid, res.EventID, body, nil, refusal); err != nil {
				return res, err
			}
		}
		return res, refusal
	}

	ev := toEvent(&re, body, now)
	res := Result{EventID: ev.ID, EventType: ev.Type, Known: re.Known}
	n := kycd.NewNotification(uuid.NewString(), ev, in.Guide)
	res.IngestResult, err = in.Store.Ingest(ctx, ev, n, in.Sinks)
	if res.Duplicate {
		res.Outcome = kycd.OutcomeDuplicate
	}
	if err == nil && res.NotificationID != "" && in.Notified != nil {
		in.Notified()
	}
	if kycd.ErrorCode(err) == kycd.ECONFLICT && quarantine {
		var original []byte
		if stored, serr := in.Store.Event(ctx, ev.ID); serr == nil {
			original = stored.Body
		}
		if res.QuarantineID, err = in.quarantine(ctx, now, kycd.QuarantineConflict, ev.ID, body, original, err); err != nil {
			return res, err
		}
		return res, kycd.Errorf(kycd.ECONFLICT, "event %s was received before with a different body", ev.ID)
	}
	return res, err
}

// Replay runs a quarantined body through ingest again, e.g. after a fix, and
// marks it replayed when it is now accepted. A body refused again stays in
// quarantine as it was.
func (in *Ingester) Replay(ctx context.Context, id string) (Result, error) {
	q, err := in.Store.QuarantineItem(ctx, id)
	if err != nil {
		return Result{}, err
	}
	res, err := in.receive(ctx, q.Body, false)
	if err != nil {
		return res, err
	}
	if err := in.Store.ResolveQuarantine(ctx, id, res.Outcome, in.now()); err != nil {
		return res, err
	}
	return res, nil
}

// quarantine keeps a refused body with the problem it is answered with, and
// returns its id.
func (in *Ingester) quarantine(ctx context.Context, now time.Time, reason, eventID string, body, original []byte, refusal error) (string, error) {
	doc, err := json.Marshal(Problem(refusal))
	if err != nil {
		return "", fmt.Errorf("ingest: quarantine: %w", err)
	}
	q := &kycd.Quarantined{
		ID:           uuid.NewString(),
		ReceivedAt:   now,
		Reason:       reason,
		Problem:      doc,
		EventID:      eventID,
		Body:         body,
		OriginalBody: original,
	}
	if err := in.Store.AddQuarantine(ctx, q); err != nil {
		return "", &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "could not keep the refused body", Err: err}
	}
	return q.ID, nil
}

// Problem is the RFC 9457 problem that answers a refusal of Receive: 400
// naming each bad field for EINVALID, 409 for ECONFLICT. The quarantine
// keeps the same document.
func Problem(err error) kycd.Problem {
	p := kycd.Problem{Type: "about:blank", Detail: kycd.ErrorMessage(err)}
	switch kycd.ErrorCode(err) {
	case kycd.EINVALID:
		p.Status, p.Title = http.StatusBadRequest, "Invalid Ralio event"
		var ve *ralio.ValidationError
		if errors.As(err, &ve) {
			for _, f := range ve.Fields {
				p.Errors = append(p.Errors, kycd.FieldProblem{Field: f.Field, Detail: f.Reason})
			}
		}
	case kycd.ECONFLICT:
		p.Status, p.Title = http.StatusConflict, "Event id reused"
	default:
		p.Status, p.Title = http.StatusServiceUnavailable, "Service Unavailable"
	}
	return p
}

func (in *Ingester) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

// BodyHash is the hex SHA-256 of body with insignificant white space
// removed, so a retry that only re-indents the same JSON is a duplicate, not
// a conflict.
func BodyHash(body []byte) string {
	var buf bytes.Buffer
	buf.Grow(len(body))
	if err := json.Compact(&buf, body); err != nil {
		buf.Reset()
		buf.Write(body)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

// toEvent translates Ralio's event into what kycd records.
func toEvent(re *ralio.Event, body []byte, now time.Time) *kycd.Event {
	ev := &kycd.Event{
		ID:         re.ID,
		Type:       re.Type,
		Timestamp:  re.Timestamp,
		ReceivedAt: now,
		Body:       body,
		BodyHash:   BodyHash(body),
	}
	if !re.Known {
		return ev
	}
	ev.SessionID = re.SessionID
	ev.Subject = kycd.SubjectRef{Type: re.Subject.Type, ID: re.Subject.ID}
	switch re.Type {
	case ralio.TypeKYCStateUpdated, ralio.TypeKYBStateUpdated:
		ev.Level = re.Level
		return ev
	case ralio.TypeKYCExpirationWarning:
		if x := re.Expiration; x != nil {
			ev.Expiration = &kycd.Expiration{Date: x.Date, DaysRemaining: x.DaysRemaining, Action: x.Action}
		}
		return ev
	}
	ev.Status = kycd.StatusFor(re.Type)
	ev.Checks = make([]kycd.Check, 0, len(re.Checks))
	for _, c := range re.Checks {
		kc := kycd.Check{Type: c.Type, State: c.State, Reasons: make([]kycd.Reason, 0, len(c.Reasons))}
		for _, r := range c.Reasons {
			kc.Reasons = append(kc.Reasons, kycd.Reason{Type: r.Type, Code: r.Code, Message: r.Message, Category: r.Category})
		}
		ev.Checks = append(ev.Checks, kc)
	}
	if inv := re.Invitation; inv != nil {
		ev.Invitation = &kycd.Invitation{
			BusinessUserID:  inv.BusinessUserID,
			RoleType:        inv.RoleType,
			FirstName:       inv.FirstName,
			LastName:        inv.LastName,
			Email:           inv.Email,
			PhoneNumber:     inv.PhoneNumber,
			VerificationURL: inv.VerificationURL,
			ExpiresAt:       inv.ExpiresAt,
		}
	}
	return ev
}
