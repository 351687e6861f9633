package ralio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Parse decodes a webhook body of any envelope generation into an Event and
// validates it. Field names may be camelCase or snake_case; unknown fields
// are ignored (and kept in Event.Data); JSON null counts as absent. An event
// of a type this package does not know is valid when its envelope is.
//
// On invalid input the error is a *ValidationError naming every wrong field.
// The Event returned with it holds what could be decoded (the ID when it was
// valid, for logs and quarantine) and must not be acted on.
func Parse(body []byte) (Event, error) {
	var p parser
	ev := p.event(body)
	if len(p.errs) > 0 {
		return ev, &ValidationError{Fields: p.errs}
	}
	return ev, nil
}

func (p *parser) event(body []byte) Event {
	var ev Event
	env, ok := p.root(body)
	if !ok {
		return ev
	}
	ev.ID = p.uuid(p.field(env, "id", "eventId"), required)
	if t := p.nonEmptyBytes(p.field(env, "event", "eventType"), required); len(t) > 0 {
		ev.Type = canonicalType(t)
		ev.Known = isKnown(ev.Type)
	}
	ev.Timestamp = p.timestamp(p.field(env, "timestamp"), required)
	df := p.field(env, "data")
	data := p.obj(df, ev.Known)
	if data.node >= 0 {
		// A copy, so that the Event does not change when the caller reuses
		// the body's buffer.
		ev.Data = bytes.Clone(df.raw)
	}
	if !ev.Known {
		return ev
	}

	switch ev.Type {
	case TypeSessionFailed, TypeSessionVerified, TypeSessionManualReview, TypeSessionExpired:
		ev.SessionID = p.uuid(p.field(data, "sessionId"), required)
		ev.Subject = p.subject(data)
		ev.Checks = p.checks(p.field(data, "checks"))
	case TypeKYCStateUpdated:
		ev.Subject = p.subject(data)
		ev.Level = p.level(p.field(data, "state"))
		ev.KYCID = p.integer(p.field(data, "kycId"), optional, 64)
	case TypeKYBStateUpdated:
		ev.Subject = Subject{Type: SubjectBusiness, ID: p.uuid(p.subjectID(data, "userId", "user"), required)}
		ev.Level = p.level(p.field(data, "state"))
		ev.KYBID = p.integer(p.field(data, "kybId"), optional, 64)
	case TypeKYCExpirationWarning:
		ev.Subject = p.subject(data)
		ev.KYCID = p.integer(p.field(data, "kycId"), optional, 64)
		ev.Expiration = &Expiration{
			Date:          p.date(p.field(data, "expirationDate"), required),
			DaysRemaining: int(p.integer(p.field(data, "daysRemaining"), optional, strconv.IntSize)),
			Action:        p.text(p.field(data, "action")),
		}
	case TypeRelatedPartyInvited:
		ev.Subject, ev.SessionID, ev.Invitation = p.invitation(data)
	}
	return ev
}

// root reads the body, which must be one JSON object.
func (p *parser) root(body []byte) (object, bool) {
	if len(bytes.Trim(body, " \t\r\n")) == 0 {
		p.fail("", "is empty")
		return object{}, false
	}
	if err := p.tree.read(body, lookedUp); err != nil {
		p.fail("", "is not valid JSON: "+syntaxError(body, err))
		return object{}, false
	}
	if body[p.tree.nodes[0].start] != '{' { // an array, a string, null, …
		p.fail("", "must be a JSON object")
		return object{}, false
	}
	return object{node: 0}, true
}

// syntaxError says why body is not JSON in encoding/json's words, which
// Parse has always used. Only refused bodies pay for the second scan.
func syntaxError(body []byte, err error) string {
	var syntax *json.SyntaxError
	if errors.As(json.Unmarshal(body, new(json.RawMessage)), &syntax) {
		return syntax.Error() + " at byte " + strconv.FormatInt(syntax.Offset, 10)
	}
	return err.Error() // not expected: the two agree on what JSON is
}

// canonicalType maps the dotted names of Ralio's overview pages
// (kyc.session_failed) to the names its events carry. The one type whose
// real name has a dot, related_party.kyc_session_created, stays as it is.
// A known type is returned as its constant, which costs no allocation.
func canonicalType(t []byte) string {
	known := [...]string{TypeSessionFailed, TypeSessionVerified, TypeSessionManualReview, TypeSessionExpired,
		TypeRelatedPartyInvited, TypeKYCStateUpdated, TypeKYBStateUpdated, TypeKYCExpirationWarning}
	for _, k := range known {
		if string(t) == k {
			return k
		}
	}
	if bytes.IndexByte(t, '.') >= 0 {
		for _, k := range known {
			if undotted(t, k) {
				return k
			}
		}
	}
	return string(t)
}

// undotted reports whether t is k once its dots are underscores.
func undotted(t []byte, k string) bool {
	if len(t) != len(k) {
		return false
	}
	for i := range len(k) {
		c := t[i]
		if c == '.' {
			c = '_'
		}
		if c != k[i] {
			return false
		}
	}
	return true
}

func isKnown(t string) bool {
	switch t {
	case TypeSessionFailed, TypeSessionVerified, TypeSessionManualReview, TypeSessionExpired,
		TypeRelatedPartyInvited, TypeKYCStateUpdated, TypeKYBStateUpdated, TypeKYCExpirationWarning:
		return true
	}
	return false
}

// subject finds whom a session or level event is about: entityType names the
// kind (generations B and C), else userId wins over relatedPartyId
// (generation A has userId only). Flat ids and nested objects are accepted.
func (p *parser) subject(data object) Subject {
	etf := p.field(data, "entityType")
	et, ok := p.strBytes(etf, optional)
	switch {
	case etf.bad || etf.raw != nil && !ok:
		return Subject{}
	case !ok:
		uf := p.subjectID(data, "userId", "user")
		if uf.raw == nil && !uf.bad {
			if rf := p.subjectID(data, "relatedPartyId", "relatedParty"); rf.raw != nil || rf.bad {
				return Subject{Type: SubjectRelatedParty, ID: p.uuid(rf, required)}
			}
		}
		return Subject{Type: SubjectUser, ID: p.uuid(uf, required)}
	case bytes.EqualFold(et, []byte(SubjectUser)):
		return Subject{Type: SubjectUser, ID: p.uuid(p.subjectID(data, "userId", "user"), required)}
	case bytes.EqualFold(et, []byte(SubjectRelatedParty)), bytes.EqualFold(et, []byte("related_party")):
		return Subject{Type: SubjectRelatedParty, ID: p.uuid(p.subjectID(data, "relatedPartyId", "relatedParty"), required)}
	}
	p.fail(p.path(etf.loc()), `must be "user" or "related-party"`)
	return Subject{}
}

// subjectID finds a subject's id as a flat field (userId) or, failing that,
// as the id of a nested object (user.id). Missing, it is reported under the
// flat name.
func (p *parser) subjectID(data object, flat, nested string) field {
	f := p.field(data, flat)
	if f.raw != nil || f.bad {
		return f
	}
	n := p.field(data, nested)
	if n.raw == nil && !n.bad {
		return f
	}
	return p.field(p.obj(n, optional), "id")
}

// checks decodes a session's checks; they are optional since generation B.
// An empty list is nil, as are a check's empty reasons.
func (p *parser) checks(f field) []Check {
	first, n := p.elems(f, optional)
	if n == 0 {
		return nil
	}
	out := make([]Check, 0, n)
	for k := first; k != 0; k = p.tree.nodes[k].next {
		o := p.obj(p.elem(k), required)
		c := Check{
			Type:  p.nonEmpty(p.field(o, "type"), required),
			State: p.checkState(p.field(o, "state")),
		}
		if first, n := p.elems(p.field(o, "reasons"), optional); n > 0 {
			c.Reasons = make([]Reason, 0, n)
			for k := first; k != 0; k = p.tree.nodes[k].next {
				r := p.obj(p.elem(k), required)
				c.Reasons = append(c.Reasons, Reason{
					Type:     p.text(p.field(r, "type")),
					Code:     p.nonEmpty(p.field(r, "code"), required),
					Message:  p.text(p.field(r, "message")),
					Category: p.text(p.field(r, "category")),
				})
			}
		}
		// A copy, as for Event.Data.
		c.Data = bytes.Clone(p.field(o, "data").raw)
		out = append(out, c)
	}
	return out
}

// checkState accepts the strings of generation A in any case and the codes
// 1 and 2 of generation B. Other state strings are kept as sent, so that a
// state Ralio adds later is not refused.
func (p *parser) checkState(f field) string {
	if !p.present(f, required) {
		return ""
	}
	if isNumber(f.raw) {
		switch string(f.raw) {
		case "1":
			return CheckValidated
		case "2":
			return CheckRefused
		}
		p.fail(p.path(f.loc()), "must be 1 (Validated) or 2 (Refused)")
		return ""
	}
	if f.raw[0] != '"' {
		p.wrongType(f, "a string or an integer")
		return ""
	}
	s := p.nonEmptyBytes(f, required)
	switch {
	case bytes.EqualFold(s, []byte(CheckValidated)):
		return CheckValidated
	case bytes.EqualFold(s, []byte(CheckRefused)):
		return CheckRefused
	}
	return string(s)
}

// level accepts REGULAR and LIGHT in any case, or their codes 1 and 2.
func (p *parser) level(f field) string {
	if !p.present(f, required) {
		return ""
	}
	var s []byte
	switch {
	case isNumber(f.raw):
		s = f.raw
	case f.raw[0] == '"':
		s, _ = p.strBytes(f, required)
	default:
		p.wrongType(f, "a string or an integer")
		return ""
	}
	switch {
	case string(s) == "1" && isNumber(f.raw), bytes.EqualFold(s, []byte(LevelRegular)):
		return LevelRegular
	case string(s) == "2" && isNumber(f.raw), bytes.EqualFold(s, []byte(LevelLight)):
		return LevelLight
	}
	p.fail(p.path(f.loc()), "must be REGULAR or LIGHT (or 1 or 2)")
	return ""
}

// invitation decodes related_party.kyc_session_created: the party is the
// subject and the session is the one opened for it.
func (p *parser) invitation(data object) (Subject, string, *Invitation) {
	bu := p.obj(p.field(data, "businessUser"), optional)
	rp := p.obj(p.field(data, "relatedParty"), optional)
	ks := p.obj(p.field(data, "kycSession"), optional)
	subject := Subject{Type: SubjectRelatedParty, ID: p.uuid(p.field(rp, "id"), required)}
	session := p.uuid(p.field(ks, "id"), required)
	return subject, session, &Invitation{
		BusinessUserID:  p.integer(p.field(bu, "id"), optional, 64),
		BusinessName:    p.text(p.field(bu, "name")),
		RoleType:        p.text(p.field(rp, "roleType")),
		FirstName:       p.text(p.field(rp, "firstName")),
		LastName:        p.text(p.field(rp, "lastName")),
		Email:           p.text(p.field(rp, "email")),
		PhoneNumber:     p.text(p.field(rp, "phoneNumber")),
		VerificationURL: p.text(p.field(ks, "url")),
		Provider:        p.text(p.field(ks, "provider")),
		ExpiresAt:       p.timestamp(p.field(ks, "expiresAt"), optional),
	}
}
