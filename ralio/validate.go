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
	errs []FieldError
}

func (p *parser) fail(path, reason string) {
	p.errs = append(p.errs, FieldError{Field: path, Reason: reason})
}

// object is a decoded JSON object and its path in the body.
type object struct {
	path string
	m    map[string]json.RawMessage
	// bad marks an object that is absent where required or not an object; it
	// has already been reported, so its fields are not reported again.
	bad bool
}

func (o object) join(name string) string {
	switch {
	case name == "":
		return o.path
	case o.path == "":
		return name
	}
	return o.path + "." + name
}

// field is one value looked up in an object, or an array element.
type field struct {
	at   string          // path of the object, or the element's own path
	name string          // as sent, or the camelCase name if absent; "" for an element
	raw  json.RawMessage // nil if absent or null
	bad  bool            // already reported: don't report it again
}

// path is only built for error messages, which valid events never need.
func (f field) path() string {
	return object{path: f.at}.join(f.name)
}

// field looks up the first of names present in o, each under its camelCase
// name or its snake_case twin (sessionId or session_id), because Ralio has
// sent both. JSON null counts as absent. When several spellings are present
// with different values, that is reported, since either could be the truth.
func (p *parser) field(o object, names ...string) field {
	f := field{at: o.path, name: names[0], bad: o.bad}
	if o.bad {
		return f
	}
	for _, camel := range names {
		for i, key := range [2]string{camel, snakeCase(camel)} {
			raw, ok := o.m[key]
			if !ok || string(raw) == "null" || (i == 1 && key == camel) {
				continue
			}
			if f.raw == nil {
				f.raw, f.name = raw, key
				continue
			}
			if !sameJSON(f.raw, raw) {
				p.fail(f.path(), "conflicts with "+o.join(key))
				f.bad = true
				return f
			}
		}
	}
	return f
}

// snakeCase returns the snake_case spelling of a camelCase name.
func snakeCase(camel string) string {
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
	p.fail(f.path(), "must be "+want+", not "+kind(f.raw))
}

// present reports whether f holds a value to decode, reporting it missing if
// required.
func (p *parser) present(f field, req bool) bool {
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
func (p *parser) str(f field, req bool) (s string, ok bool) {
	if !p.present(f, req) {
		return "", false
	}
	if s, ok = unquote(f.raw); !ok {
		p.wrongType(f, "a string")
	}
	return s, ok
}

// unquote decodes a JSON string. Most strings have no escapes and are
// valid UTF-8, so they are copied without the cost of a json.Unmarshal.
func unquote(raw json.RawMessage) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if in := raw[1 : len(raw)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), true
	}
	return s, json.Unmarshal(raw, &s) == nil
}

// text is str for optional values whose absence needs no handling.
func (p *parser) text(f field) string {
	s, _ := p.str(f, optional)
	return s
}

// nonEmpty decodes a string that must not be blank.
func (p *parser) nonEmpty(f field, req bool) string {
	s, ok := p.str(f, req)
	if ok && strings.TrimSpace(s) == "" {
		p.fail(f.path(), "must not be empty")
		return ""
	}
	return s
}

// uuid decodes a UUID into its canonical lower-case form.
func (p *parser) uuid(f field, req bool) string {
	s, ok := p.str(f, req)
	if !ok {
		return ""
	}
	id, ok := canonicalUUID(s)
	if !ok {
		p.fail(f.path(), "must be a UUID")
	}
	return id
}

// canonicalUUID accepts exactly the 8-4-4-4-12 hex form, in any case; the
// braced and urn: forms are not identifiers Ralio sends.
func canonicalUUID(s string) (string, bool) {
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
		p.fail(f.path(), "must be an integer")
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
	t, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil:
		p.fail(f.path(), "must be an RFC 3339 timestamp")
	case t.IsZero():
		// The zero time is what a sender's unset field looks like, not a time.
		p.fail(f.path(), "must not be the zero time")
	}
	return t.UTC()
}

// date decodes a calendar date written YYYY-MM-DD.
func (p *parser) date(f field, req bool) string {
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
func (p *parser) obj(f field, req bool) object {
	o := object{path: f.path(), bad: true}
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
func (p *parser) elems(f field, req bool) []field {
	if !p.present(f, req) {
		return nil
	}
	var raws []json.RawMessage
	if f.raw[0] != '[' || json.Unmarshal(f.raw, &raws) != nil {
		p.wrongType(f, "an array")
		return nil
	}
	out := make([]field, len(raws))
	for i, raw := range raws {
		out[i] = field{at: f.path() + "[" + strconv.Itoa(i) + "]", raw: raw}
	}
	return out
}
