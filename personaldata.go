package kycd

import (
	"encoding/json"
	"strings"
)

// Personal data is what kycd holds about a person beyond what recognising,
// ordering and explaining their KYC needs. This file defines it once, and
// every part of kycd that removes it or leaves it out calls it: erasure (one
// subject, now), the retention purge (everything older than the retention),
// the API for a token that may not read it, the CLI's views and the log
// sink. It is:
//
//   - an event's raw body and a quarantined body, whole (they may hold
//     anything);
//   - a session's reason messages (free text that may name the person):
//     EraseChecks;
//   - a notification's invitation (contact details and verification URL),
//     its failures' messages and an expiration warning's action text:
//     WithoutPersonalData.
//
// Ids, body hashes, statuses, timestamps, levels, check types and states,
// reason types, codes, categories and guidance are not: they stay after an
// erasure or a purge, and every view shows them.

// EraseChecks returns checks without their personal data (each reason's
// message), and whether there was any. Types, states, reason types, codes
// and categories stay.
func EraseChecks(checks []Check) ([]Check, bool) {
	out := make([]Check, len(checks))
	changed := false
	for i, c := range checks {
		c.Reasons = append([]Reason(nil), c.Reasons...)
		for j := range c.Reasons {
			if c.Reasons[j].Message != "" {
				c.Reasons[j].Message = ""
				changed = true
			}
		}
		out[i] = c
	}
	return out, changed
}

// WithoutPersonalData returns n without its personal data: without the
// invitation, the failures' messages and an expiration warning's action
// text, and whether it held any. The other fields stay; n is not changed.
func WithoutPersonalData(n Notification) (Notification, bool) {
	changed := n.Invitation != nil
	n.Invitation = nil
	if len(n.Failures) > 0 {
		failures := append([]Failure(nil), n.Failures...)
		for i := range failures {
			changed = changed || failures[i].Message != ""
			failures[i].Message = ""
		}
		n.Failures = failures
	}
	if n.Expiration != nil && n.Expiration.Action != "" {
		x := *n.Expiration
		x.Action = ""
		n.Expiration = &x
		changed = true
	}
	return n, changed
}

// ErasePayload returns a stored notification payload without its personal
// data (WithoutPersonalData), and whether it held any. Every payload was
// written from a Notification, so it is read back into one and written the
// same way again; a payload that is not one is EINTERNAL.
func ErasePayload(payload []byte) ([]byte, bool, error) {
	var n Notification
	if err := json.Unmarshal(payload, &n); err != nil {
		return payload, false, Errorf(EINTERNAL, "a stored notification is not one: %v", err)
	}
	n, changed := WithoutPersonalData(n)
	if !changed {
		return payload, false, nil
	}
	out, err := json.Marshal(&n)
	return out, true, err
}

// RedactPayload is a notification payload as a view that may not show
// personal data shows it (ErasePayload), and whether it left anything out.
// A payload that is not a notification is shown as it is.
func RedactPayload(payload json.RawMessage) (json.RawMessage, bool) {
	out, changed, err := ErasePayload(payload)
	if err != nil || !changed {
		return payload, false
	}
	return out, true
}

// RedactPayloadMarked is RedactPayload with mark (a JSON string) where
// the invitation was, so that a reader of a log line or a terminal sees
// that something was left out.
func RedactPayloadMarked(payload json.RawMessage, mark string) json.RawMessage {
	out, changed := RedactPayload(payload)
	if !changed {
		return payload
	}
	var before, after map[string]json.RawMessage
	if json.Unmarshal(payload, &before) != nil || before["invitation"] == nil || json.Unmarshal(out, &after) != nil {
		return out
	}
	m, err := json.Marshal(mark)
	if err != nil {
		return out
	}
	after["invitation"] = m
	marked, err := json.Marshal(after)
	if err != nil {
		return out
	}
	return marked
}

// PersonalValues lists the personal data of a notification payload as
// text (the fields WithoutPersonalData removes): its invitation's names,
// e-mail, phone number and verification URL, its failures' messages and an
// expiration warning's action text. A payload that is not a notification
// has none kycd knows of.
func PersonalValues(payload []byte) []string {
	var n Notification
	if json.Unmarshal(payload, &n) != nil {
		return nil
	}
	var out []string
	if v := n.Invitation; v != nil {
		out = append(out, v.FirstName, v.LastName, v.Email, v.PhoneNumber, v.VerificationURL)
	}
	for _, f := range n.Failures {
		out = append(out, f.Message)
	}
	if n.Expiration != nil {
		out = append(out, n.Expiration.Action)
	}
	return out
}

// StripPersonal returns text with each of values (PersonalValues), as it
// is and as JSON writes it, replaced by mark: a receiver's answer that
// quotes the notification back keeps none of its personal data. Values
// of fewer than two characters are left, as they would match anywhere.
func StripPersonal(text string, values []string, mark string) string {
	for _, v := range values {
		if len([]rune(v)) < 2 {
			continue
		}
		text = strings.ReplaceAll(text, v, mark)
		if quoted, err := json.Marshal(v); err == nil {
			if inner := string(quoted[1 : len(quoted)-1]); inner != v {
				text = strings.ReplaceAll(text, inner, mark)
			}
		}
	}
	return text
}
