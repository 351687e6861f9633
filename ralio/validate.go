package ralio

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError says which field is wrong and what is wrong with it.
type FieldError struct {
	// Field is the JSON path of the field as it was sent, e.g. "id",
	// "data.sessionId" or "data.checks[1].state". A missing field is named
	// by its camelCase spelling. Field is "" when the whole body is wrong.
	Field string `json:"field"`
	// Reason is a short lower-case sentence, e.g. "is required" or
	// "must be a UUID".
	Reason string `json:"reason"`
}

// String returns the field and the reason as one phrase; the whole body is
// called "body".
func (e FieldError) String() string {
	if e.Field == "" {
		return "body " + e.Reason
	}
	return e.Field + " " + e.Reason
}

// ValidationError is the error of Parse for a body that is not a valid Ralio
// event. It lists every wrong field found, in a fixed order: the envelope
// (id, type, timestamp, data) first, then the data fields of the event's
// type, array elements in order.
type ValidationError struct {
	Fields []FieldError
}

// Error returns all field errors in one line, e.g.
// "ralio: invalid event: data.sessionId must be a UUID; timestamp is required".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("ralio: invalid event:")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteByte(' ')
		b.WriteString(f.String())
	}
	return b.String()
}

// Arguments of the parser's accessors, for readable call sites.
const (
	optional = false
	required = true
)

// parser collects field errors while an event is decoded, so that one pass
// reports all of them.
type parser struct {
	tree tree
	errs []FieldError
}

func (p *parser) fail(path, reason string) {
	p.errs = append(p.errs, FieldError{Field: path, Reason: reason})
}

// loc is where a value is, or would be, in the body: the node of the value,
// or the node of its nearest ancestor in the body and the dotted camelCase
// names of the absent ones below it (relatedParty.id in a body without
// relatedParty). A path is built from it only for an error message, which
// valid events never need.
type loc struct {
	node   int
	absent string
}

// path returns the FieldError.Field of l.
func (p *parser) path(l loc) string {
	return join(p.tree.path(l.node), l.absent)
}

// object is a JSON object of the body, or where one was looked for.
type object struct {
	at   loc
	node int // -1 if absent or not an object
	// bad marks an object that is absent where required or not an object; it
	// has already been reported, so its fields are not reported again.
	bad bool
}

// field is one value looked up in an object, or an array element.
type field struct {
	in   loc    // where it was looked for
	name string // the camelCase name it was looked for by; "" for an element
	node int    // 0 if absent or null
	raw  []byte // the value in the body; nil if absent or null
	bad  bool   // already reported: don't report it again
}

// loc locates f: its own node, or where it was looked for and by what name.
func (f field) loc() loc {
	if f.node != 0 {
		return loc{node: f.node}
	}
	return loc{node: f.in.node, absent: join(f.in.absent, f.name)}
}

// field looks up the first of names present in o, each under its camelCase
// name or its snake_case twin (sessionId or session_id), because Ralio has
// sent both. JSON null counts as absent. When several spellings are present
// with different values, that is reported, since either could be the truth.
// It takes one or two names.
func (p *parser) field(o object, names ...string) field {
	f := field{in: o.at, name: names[0], bad: o.bad}
	if o.bad || o.node < 0 {
		return f
	}
	// One walk over the members finds every spelling, each camelCase name
	// before its twin. The last of duplicate members wins, as it did when
	// encoding/json decoded the object into a map.
	var spellings [4]int
	found := spellings[:2*len(names)]
	for k := p.tree.first(o.node); k != 0; k = p.tree.nodes[k].next {
		name := p.tree.name(k)
		for i, camel := range names {
			switch {
			case string(name) == camel:
				found[2*i] = k
			case isSnakeCase(name, camel): // a name without capitals is its own twin, found above
				found[2*i+1] = k
			}
		}
	}
	for _, k := range found {
		if k == 0 {
			continue
		}
		raw := p.tree.raw(k)
		if string(raw) == "null" {
			continue
		}
		if f.raw == nil {
			f.raw, f.node = raw, k
			continue
		}
		if !sameJSON(f.raw, raw) {
			p.fail(p.path(f.loc()), "conflicts with "+join(p.path(o.at), string(p.tree.name(k))))
			f.bad = true
			return f
		}
	}
	return f
}

// lookedUp reports whether field is ever asked for a member of this name,
// in either spelling. The tree keeps only those members (see tree.read): a
// new lookup must list its names here, which TestLookedUpNamesKept checks.
func lookedUp(name []byte) bool {
	switch string(name) {
	case "id", "eventId", "event_id", "event", "eventType", "event_type", "timestamp", "data",
		"sessionId", "session_id", "entityType", "entity_type",
		"userId", "user_id", "user", "relatedPartyId", "related_party_id", "relatedParty", "related_party",
		"checks", "type", "state", "reasons", "code", "message", "category",
		"kycId", "kyc_id", "kybId", "kyb_id",
		"expirationDate", "expiration_date", "daysRemaining", "days_remaining", "action",
		"businessUser", "business_user", "kycSession", "kyc_session", "name",
		"roleType", "role_type", "firstName", "first_name", "lastName", "last_name", "email",
		"phoneNumber", "phone_number", "url", "provider", "expiresAt", "expires_at":
		return true
	}
	return false
}

// isSnakeCase reports whether name is the snake_case twin of a camelCase
// name: each capital lower-cased after an underscore (session_id for
// sessionId). Comparing in place spares building the twin for every lookup.
func isSnakeCase(name []byte, camel string) bool {
	j := 0
	for i := range len(camel) {
		c := camel[i]
		if 'A' <= c && c <= 'Z' {
			if j == len(name) || name[j] != '_' {
				return false
			}
			j++
			c += 'a' - 'A'
		}
		if j == len(name) || name[j] != c {
			return false
		}
		j++
	}
	return j == len(name)
}

// sameJSON reports whether two valid JSON values are equal but for
// insignificant white space.
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// kind names the JSON type of raw for error messages.
func kind(raw json.RawMessage) string {
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

func isNumber(raw json.RawMessage) bool { return kind(raw) == "a number" }

func (p *parser) wrongType(f field, want string) {
	p.fail(p.path(f.loc()), "must be "+want+", not "+kind(f.raw))
}

// present reports whether f holds a value to decode, reporting it missing if
// required.
func (p *parser) present(f field, req bool) bool {
	if f.bad {
		return false
	}
	if f.raw == nil {
		if req {
			p.fail(p.path(f.loc()), "is required")
		}
		return false
	}
	return true
}

// str decodes a string; ok is false if it is absent or wrong.
func (p *parser) str(f field, req bool) (s string, ok bool) {
	b, ok := p.strBytes(f, req)
	return string(b), ok
}

// strBytes is str for a string that is only looked at: unless it has
// escapes, its bytes are the body's, and no string is allocated for it.
func (p *parser) strBytes(f field, req bool) (b []byte, ok bool) {
	if !p.present(f, req) {
		return nil, false
	}
	if b, ok = unquote(f.raw); !ok {
		p.wrongType(f, "a string")
	}
	return b, ok
}

// unquote decodes a JSON string. Most strings have no escapes and are
// valid UTF-8, so their bytes in the body are the value, without the cost
// of a json.Unmarshal; a caller copies what it keeps.
func unquote(raw []byte) (b []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if in := raw[1 : len(raw)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return in, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, false
	}
	return []byte(s), true
}

// text is str for optional values whose absence needs no handling.
func (p *parser) text(f field) string {
	s, _ := p.str(f, optional)
	return s
}

// nonEmpty decodes a string that must not be blank.
func (p *parser) nonEmpty(f field, req bool) string {
	return string(p.nonEmptyBytes(f, req))
}

// nonEmptyBytes is nonEmpty for a string that is only looked at (see
// strBytes); it is nil where nonEmpty is "".
func (p *parser) nonEmptyBytes(f field, req bool) []byte {
	b, ok := p.strBytes(f, req)
	if ok && len(bytes.TrimSpace(b)) == 0 {
		p.fail(p.path(f.loc()), "must not be empty")
		return nil
	}
	return b
}

// uuid decodes a UUID into its canonical lower-case form.
func (p *parser) uuid(f field, req bool) string {
	b, ok := p.strBytes(f, req)
	if !ok {
		return ""
	}
	id, ok := canonicalUUID(b)
	if !ok {
		p.fail(p.path(f.loc()), "must be a UUID")
	}
	return id
}

// canonicalUUID accepts exactly the 8-4-4-4-12 hex form, in any case; the
// braced and urn: forms are not identifiers Ralio sends.
func canonicalUUID(s []byte) (string, bool) {
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
func (p *parser) integer(f field, req bool, bits int) int64 {
	if !p.present(f, req) {
		return 0
	}
	if !isNumber(f.raw) {
		p.wrongType(f, "an integer")
		return 0
	}
	n, err := strconv.ParseInt(string(f.raw), 10, bits)
	if err != nil {
		p.fail(p.path(f.loc()), "must be an integer")
	}
	return n
}

// timestamp decodes an RFC 3339 time, returned in UTC so that equal instants
// compare equal.
func (p *parser) timestamp(f field, req bool) time.Time {
	s, ok := p.str(f, req)
	if !ok {
		return time.Time{}
	}
	t, reason := parseRFC3339(s)
	switch {
	case reason != "":
		p.fail(p.path(f.loc()), reason)
	case t.IsZero():
		// The zero time is what a sender's unset field looks like, not a time.
		p.fail(p.path(f.loc()), "must not be the zero time")
	}
	return t
}

// parseRFC3339 parses an RFC 3339 date-time (§5.6) or says why s is not one.
// Beyond what time.Parse takes it accepts a lower-case t and z, and a leap
// second (time-second 60, §5.7) in the last minute of a UTC day, read as the
// first instant of the next second — time.Time cannot hold second 60. It
// refuses an offset outside -23:59..+23:59, which time.Parse lets through.
func parseRFC3339(s string) (time.Time, string) {
	const bad = "must be an RFC 3339 timestamp"
	b := []byte(s)
	if len(b) > 10 && b[10] == 't' {
		b[10] = 'T'
	}
	if n := len(b); n > 0 && b[n-1] == 'z' {
		b[n-1] = 'Z'
	}
	if n := len(b); n >= 6 && (b[n-6] == '+' || b[n-6] == '-') && b[n-3] == ':' {
		if hh, mm := string(b[n-5:n-3]), string(b[n-2:]); hh > "23" || mm > "59" {
			return time.Time{}, "must be an RFC 3339 timestamp: its offset must be between -23:59 and +23:59"
		}
	}
	leap := len(b) > 18 && b[10] == 'T' && string(b[17:19]) == "60"
	if leap {
		b[17], b[18] = '5', '9'
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, bad
	}
	t = t.UTC()
	if leap {
		if t.Hour() != 23 || t.Minute() != 59 {
			return time.Time{}, "must be an RFC 3339 timestamp: second 60 is a leap second, only in the last minute of a UTC day"
		}
		t = t.Add(time.Second)
	}
	return t, ""
}

// date decodes a calendar date written YYYY-MM-DD.
func (p *parser) date(f field, req bool) string {
	s, ok := p.str(f, req)
	if !ok {
		return ""
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		p.fail(p.path(f.loc()), "must be a date (YYYY-MM-DD)")
		return ""
	}
	return s
}

// obj decodes a JSON object. The result of an absent optional object has no
// fields, so looking up its optional fields finds nothing and its required
// fields are reported missing under its path.
func (p *parser) obj(f field, req bool) object {
	o := object{at: f.loc(), node: -1, bad: true}
	if !p.present(f, req) {
		o.bad = f.bad || req
		return o
	}
	if f.raw[0] != '{' {
		p.wrongType(f, "an object")
		return o
	}
	o.node, o.bad = f.node, false
	return o
}

// elems returns the first element of array f, to be followed through
// next, and how many there are. Each element is named by its index. A
// null element is kept as null so that it is reported as the wrong type.
func (p *parser) elems(f field, req bool) (first, n int) {
	if !p.present(f, req) {
		return 0, 0
	}
	if f.raw[0] != '[' {
		p.wrongType(f, "an array")
		return 0, 0
	}
	first = p.tree.first(f.node)
	for k := first; k != 0; k = p.tree.nodes[k].next {
		n++
	}
	return first, n
}

// elem returns array element k as a field.
func (p *parser) elem(k int) field {
	return field{node: k, raw: p.tree.raw(k)}
}
