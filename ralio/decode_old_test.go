package ralio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// oldParse is Parse as it was before it read the body in one pass: it
// decoded the body into a map[string]json.RawMessage, then each nested
// object and array into maps and slices again. It is kept, with its helpers
// renamed old…, so that decode_diff_test.go can check that Parse still
// decodes every body exactly as it did.
func oldParse(body []byte) (Event, error) {
	var p oldParser
	ev := p.event(body)
	if len(p.errs) > 0 {
		return ev, &ValidationError{Fields: p.errs}
	}
	return ev, nil
}

func (p *oldParser) event(body []byte) Event {
	var ev Event
	env, ok := p.root(body)
	if !ok {
		return ev
	}
	ev.ID = p.uuid(p.field(env, "id", "eventId"), oldRequired)
	if t := p.nonEmpty(p.field(env, "event", "eventType"), oldRequired); t != "" {
		ev.Type = oldCanonicalType(t)
		ev.Known = oldIsKnown(ev.Type)
	}
	ev.Timestamp = p.timestamp(p.field(env, "timestamp"), oldRequired)
	df := p.field(env, "data")
	data := p.obj(df, ev.Known)
	if data.m != nil {
		ev.Data = df.raw
	}
	if !ev.Known {
		return ev
	}

	switch ev.Type {
	case TypeSessionFailed, TypeSessionVerified, TypeSessionManualReview, TypeSessionExpired:
		ev.SessionID = p.uuid(p.field(data, "sessionId"), oldRequired)
		ev.Subject = p.subject(data)
		ev.Checks = p.checks(p.field(data, "checks"))
	case TypeKYCStateUpdated:
		ev.Subject = p.subject(data)
		ev.Level = p.level(p.field(data, "state"))
		ev.KYCID = p.integer(p.field(data, "kycId"), oldOptional, 64)
	case TypeKYBStateUpdated:
		ev.Subject = Subject{Type: SubjectBusiness, ID: p.uuid(p.subjectID(data, "userId", "user"), oldRequired)}
		ev.Level = p.level(p.field(data, "state"))
		ev.KYBID = p.integer(p.field(data, "kybId"), oldOptional, 64)
	case TypeKYCExpirationWarning:
		ev.Subject = p.subject(data)
		ev.KYCID = p.integer(p.field(data, "kycId"), oldOptional, 64)
		ev.Expiration = &Expiration{
			Date:          p.date(p.field(data, "expirationDate"), oldRequired),
			DaysRemaining: int(p.integer(p.field(data, "daysRemaining"), oldOptional, strconv.IntSize)),
			Action:        p.text(p.field(data, "action")),
		}
	case TypeRelatedPartyInvited:
		ev.Subject, ev.SessionID, ev.Invitation = p.invitation(data)
	}
	return ev
}

// root decodes the body as one JSON object.
func (p *oldParser) root(body []byte) (oldObject, bool) {
	if len(bytes.Trim(body, " \t\r\n")) == 0 {
		p.fail("", "is empty")
		return oldObject{}, false
	}
	var o oldObject
	err := json.Unmarshal(body, &o.m)
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		p.fail("", "is not valid JSON: "+syntax.Error()+" at byte "+strconv.FormatInt(syntax.Offset, 10))
		return o, false
	case err != nil || o.m == nil:
		p.fail("", "must be a JSON object")
		return o, false
	}
	return o, true
}

// canonicalType maps the dotted names of Ralio's overview pages
// (kyc.session_failed) to the names its events carry. The one type whose
// real name has a dot, related_party.kyc_session_created, stays as it is.
func oldCanonicalType(t string) string {
	if strings.Contains(t, ".") && t != TypeRelatedPartyInvited {
		if u := strings.ReplaceAll(t, ".", "_"); oldIsKnown(u) {
			return u
		}
	}
	return t
}

func oldIsKnown(t string) bool {
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
func (p *oldParser) subject(data oldObject) Subject {
	etf := p.field(data, "entityType")
	et, ok := p.str(etf, oldOptional)
	switch {
	case etf.bad || etf.raw != nil && !ok:
		return Subject{}
	case !ok:
		uf := p.subjectID(data, "userId", "user")
		if uf.raw == nil && !uf.bad {
			if rf := p.subjectID(data, "relatedPartyId", "relatedParty"); rf.raw != nil || rf.bad {
				return Subject{Type: SubjectRelatedParty, ID: p.uuid(rf, oldRequired)}
			}
		}
		return Subject{Type: SubjectUser, ID: p.uuid(uf, oldRequired)}
	case strings.EqualFold(et, SubjectUser):
		return Subject{Type: SubjectUser, ID: p.uuid(p.subjectID(data, "userId", "user"), oldRequired)}
	case strings.EqualFold(et, SubjectRelatedParty), strings.EqualFold(et, "related_party"):
		return Subject{Type: SubjectRelatedParty, ID: p.uuid(p.subjectID(data, "relatedPartyId", "relatedParty"), oldRequired)}
	}
	p.fail(etf.path(), `must be "user" or "related-party"`)
	return Subject{}
}

// subjectID finds a subject's id as a flat field (userId) or, failing that,
// as the id of a nested object (user.id). Missing, it is reported under the
// flat name.
func (p *oldParser) subjectID(data oldObject, flat, nested string) oldField {
	f := p.field(data, flat)
	if f.raw != nil || f.bad {
		return f
	}
	n := p.field(data, nested)
	if n.raw == nil && !n.bad {
		return f
	}
	return p.field(p.obj(n, oldOptional), "id")
}

// checks decodes a session's checks; they are optional since generation B.
func (p *oldParser) checks(f oldField) []Check {
	var out []Check
	for _, el := range p.elems(f, oldOptional) {
		o := p.obj(el, oldRequired)
		c := Check{
			Type:  p.nonEmpty(p.field(o, "type"), oldRequired),
			State: p.checkState(p.field(o, "state")),
		}
		for _, rf := range p.elems(p.field(o, "reasons"), oldOptional) {
			r := p.obj(rf, oldRequired)
			c.Reasons = append(c.Reasons, Reason{
				Type:     p.text(p.field(r, "type")),
				Code:     p.nonEmpty(p.field(r, "code"), oldRequired),
				Message:  p.text(p.field(r, "message")),
				Category: p.text(p.field(r, "category")),
			})
		}
		c.Data = p.field(o, "data").raw
		out = append(out, c)
	}
	return out
}

// checkState accepts the strings of generation A in any case and the codes
// 1 and 2 of generation B. Other state strings are kept as sent, so that a
// state Ralio adds later is not refused.
func (p *oldParser) checkState(f oldField) string {
	if !p.present(f, oldRequired) {
		return ""
	}
	if oldIsNumber(f.raw) {
		switch string(f.raw) {
		case "1":
			return CheckValidated
		case "2":
			return CheckRefused
		}
		p.fail(f.path(), "must be 1 (Validated) or 2 (Refused)")
		return ""
	}
	if f.raw[0] != '"' {
		p.wrongType(f, "a string or an integer")
		return ""
	}
	s := p.nonEmpty(f, oldRequired)
	switch {
	case strings.EqualFold(s, CheckValidated):
		return CheckValidated
	case strings.EqualFold(s, CheckRefused):
		return CheckRefused
	}
	return s
}

// level accepts REGULAR and LIGHT in any case, or their codes 1 and 2.
func (p *oldParser) level(f oldField) string {
	if !p.present(f, oldRequired) {
		return ""
	}
	var s string
	switch {
	case oldIsNumber(f.raw):
		s = string(f.raw)
	case f.raw[0] == '"':
		s, _ = p.str(f, oldRequired)
	default:
		p.wrongType(f, "a string or an integer")
		return ""
	}
	switch {
	case s == "1" && oldIsNumber(f.raw), strings.EqualFold(s, LevelRegular):
		return LevelRegular
	case s == "2" && oldIsNumber(f.raw), strings.EqualFold(s, LevelLight):
		return LevelLight
	}
	p.fail(f.path(), "must be REGULAR or LIGHT (or 1 or 2)")
	return ""
}

// invitation decodes related_party.kyc_session_created: the party is the
// subject and the session is the one opened for it.
func (p *oldParser) invitation(data oldObject) (Subject, string, *Invitation) {
	bu := p.obj(p.field(data, "businessUser"), oldOptional)
	rp := p.obj(p.field(data, "relatedParty"), oldOptional)
	ks := p.obj(p.field(data, "kycSession"), oldOptional)
	subject := Subject{Type: SubjectRelatedParty, ID: p.uuid(p.field(rp, "id"), oldRequired)}
	session := p.uuid(p.field(ks, "id"), oldRequired)
	return subject, session, &Invitation{
		BusinessUserID:  p.integer(p.field(bu, "id"), oldOptional, 64),
		BusinessName:    p.text(p.field(bu, "name")),
		RoleType:        p.text(p.field(rp, "roleType")),
		FirstName:       p.text(p.field(rp, "firstName")),
		LastName:        p.text(p.field(rp, "lastName")),
		Email:           p.text(p.field(rp, "email")),
		PhoneNumber:     p.text(p.field(rp, "phoneNumber")),
		VerificationURL: p.text(p.field(ks, "url")),
		Provider:        p.text(p.field(ks, "provider")),
		ExpiresAt:       p.timestamp(p.field(ks, "expiresAt"), oldOptional),
	}
}

// Arguments of the parser's accessors, for readable call sites.
const (
	oldOptional = false
	oldRequired = true
)

// parser collects field errors while an event is decoded, so that one pass
// reports all of them.
type oldParser struct {
	errs []FieldError
}

func (p *oldParser) fail(path, reason string) {
	p.errs = append(p.errs, FieldError{Field: path, Reason: reason})
}

// object is a decoded JSON object and its path in the body.
type oldObject struct {
	path string
	m    map[string]json.RawMessage
	// bad marks an object that is absent where required or not an object; it
	// has already been reported, so its fields are not reported again.
	bad bool
}

func (o oldObject) join(name string) string {
	switch {
	case name == "":
		return o.path
	case o.path == "":
		return name
	}
	return o.path + "." + name
}

// field is one value looked up in an object, or an array element.
type oldField struct {
	at   string          // path of the object, or the element's own path
	name string          // as sent, or the camelCase name if absent; "" for an element
	raw  json.RawMessage // nil if absent or null
	bad  bool            // already reported: don't report it again
}

// path is only built for error messages, which valid events never need.
func (f oldField) path() string {
	return oldObject{path: f.at}.join(f.name)
}

// field looks up the first of names present in o, each under its camelCase
// name or its snake_case twin (sessionId or session_id), because Ralio has
// sent both. JSON null counts as absent. When several spellings are present
// with different values, that is reported, since either could be the truth.
func (p *oldParser) field(o oldObject, names ...string) oldField {
	f := oldField{at: o.path, name: names[0], bad: o.bad}
	if o.bad {
		return f
	}
	for _, camel := range names {
		for i, key := range [2]string{camel, oldSnakeCase(camel)} {
			raw, ok := o.m[key]
			if !ok || string(raw) == "null" || (i == 1 && key == camel) {
				continue
			}
			if f.raw == nil {
				f.raw, f.name = raw, key
				continue
			}
			if !oldSameJSON(f.raw, raw) {
				p.fail(f.path(), "conflicts with "+o.join(key))
				f.bad = true
				return f
			}
		}
	}
	return f
}

// snakeCase returns the snake_case spelling of a camelCase name.
func oldSnakeCase(camel string) string {
	var b strings.Builder
	for i := 0; i < len(camel); i++ {
		c := camel[i]
		if 'A' <= c && c <= 'Z' {
			if b.Len() == 0 {
				b.WriteString(camel[:i])
			}
			b.WriteByte('_')
			b.WriteByte(c + 'a' - 'A')
		} else if b.Len() > 0 {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return camel
	}
	return b.String()
}

// sameJSON reports whether two valid JSON values are equal but for
// insignificant white space.
func oldSameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// kind names the JSON type of raw for error messages.
func oldKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func oldIsNumber(raw json.RawMessage) bool { return oldKind(raw) == "a number" }

func (p *oldParser) wrongType(f oldField, want string) {
	p.fail(f.path(), "must be "+want+", not "+oldKind(f.raw))
}

// present reports whether f holds a value to decode, reporting it missing if
// required.
func (p *oldParser) present(f oldField, req bool) bool {
	if f.bad {
		return false
	}
	if f.raw == nil {
		if req {
			p.fail(f.path(), "is required")
		}
		return false
	}
	return true
}

// str decodes a string; ok is false if it is absent or wrong.
func (p *oldParser) str(f oldField, req bool) (s string, ok bool) {
	if !p.present(f, req) {
		return "", false
	}
	if s, ok = oldUnquote(f.raw); !ok {
		p.wrongType(f, "a string")
	}
	return s, ok
}

// unquote decodes a JSON string. Most strings have no escapes and are
// valid UTF-8, so they are copied without the cost of a json.Unmarshal.
func oldUnquote(raw json.RawMessage) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if in := raw[1 : len(raw)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), true
	}
	return s, json.Unmarshal(raw, &s) == nil
}

// text is str for optional values whose absence needs no handling.
func (p *oldParser) text(f oldField) string {
	s, _ := p.str(f, oldOptional)
	return s
}

// nonEmpty decodes a string that must not be blank.
func (p *oldParser) nonEmpty(f oldField, req bool) string {
	s, ok := p.str(f, req)
	if ok && strings.TrimSpace(s) == "" {
		p.fail(f.path(), "must not be empty")
		return ""
	}
	return s
}

// uuid decodes a UUID into its canonical lower-case form.
func (p *oldParser) uuid(f oldField, req bool) string {
	s, ok := p.str(f, req)
	if !ok {
		return ""
	}
	id, ok := oldCanonicalUUID(s)
	if !ok {
		p.fail(f.path(), "must be a UUID")
	}
	return id
}

// canonicalUUID accepts exactly the 8-4-4-4-12 hex form, in any case; the
// braced and urn: forms are not identifiers Ralio sends.
func oldCanonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	var b [36]byte
	for i := range len(s) {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		b[i] = c
	}
	return string(b[:]), true
}

// integer decodes a JSON integer (no fraction or exponent) that fits in
// bits bits.
func (p *oldParser) integer(f oldField, req bool, bits int) int64 {
	if !p.present(f, req) {
		return 0
	}
	if !oldIsNumber(f.raw) {
		p.wrongType(f, "an integer")
		return 0
	}
	n, err := strconv.ParseInt(string(f.raw), 10, bits)
	if err != nil {
		p.fail(f.path(), "must be an integer")
	}
	return n
}

// timestamp decodes an RFC 3339 time, returned in UTC so that equal instants
// compare equal.
func (p *oldParser) timestamp(f oldField, req bool) time.Time {
	s, ok := p.str(f, req)
	if !ok {
		return time.Time{}
	}
	// The one RFC 3339 rule (issue 15 widened it: lower-case t and z, leap
	// seconds, offsets to ±23:59) is shared: this file checks the decoding.
	t, reason := parseRFC3339(s)
	switch {
	case reason != "":
		p.fail(f.path(), reason)
	case t.IsZero():

		p.fail(f.path(), "must not be the zero time")
	}
	return t
}

// date decodes a calendar date written YYYY-MM-DD.
func (p *oldParser) date(f oldField, req bool) string {
	s, ok := p.str(f, req)
	if !ok {
		return ""
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		p.fail(f.path(), "must be a date (YYYY-MM-DD)")
		return ""
	}
	return s
}

// obj decodes a JSON object. The result of an absent optional object has no
// fields, so looking up its optional fields finds nothing and its required
// fields are reported missing under its path.
func (p *oldParser) obj(f oldField, req bool) oldObject {
	o := oldObject{path: f.path(), bad: true}
	if !p.present(f, req) {
		o.bad = f.bad || req
		return o
	}
	if f.raw[0] != '{' || json.Unmarshal(f.raw, &o.m) != nil {
		p.wrongType(f, "an object")
		return o
	}
	o.bad = false
	return o
}

// elems decodes a JSON array into its elements, each named by its index.
// A null element is kept as null so that it is reported as the wrong type.
func (p *oldParser) elems(f oldField, req bool) []oldField {
	if !p.present(f, req) {
		return nil
	}
	var raws []json.RawMessage
	if f.raw[0] != '[' || json.Unmarshal(f.raw, &raws) != nil {
		p.wrongType(f, "an array")
		return nil
	}
	out := make([]oldField, len(raws))
	for i, raw := range raws {
		out[i] = oldField{at: f.path() + "[" + strconv.Itoa(i) + "]", raw: raw}
	}
	return out
}
