package kycd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// hashScheme prefixes the body hashes of BodyHash. Hashes stored before
// have the prefix jcsScheme (RFC 8785 of the bytes, issue 6) or none (the
// compacted bytes); SameBody compares each with the scheme it was made by.
const (
	hashScheme = "ev2:"
	jcsScheme  = "jcs:"
)

// BodyHash identifies an event by what it says, as ralio.Parse reads it,
// not by its bytes: the SHA-256 of the body's canonical form (canonical),
// so that a retry Ralio re-serialised, or sent in another envelope
// generation, is a duplicate and not a conflict. A body that is not JSON is
// hashed as it is.
func BodyHash(body []byte) string {
	c := canonPool.Get().(*canonicaliser)
	data, ok := c.canonical(body)
	if !ok {
		data = body
	}
	sum := sha256.Sum256(data)
	c.release()
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	var b strings.Builder
	b.Grow(len(hashScheme) + len(hexSum))
	b.WriteString(hashScheme)
	b.Write(hexSum[:])
	return b.String()
}

// SameBody reports whether a body with hash (from BodyHash) is the one
// stored under stored, which may be a hash of an older scheme: body is then
// hashed again the way stored was.
func SameBody(stored, hash string, body []byte) bool {
	switch {
	case stored == hash:
		return true
	case body == nil:
		return false
	case strings.HasPrefix(stored, hashScheme):
		return !strings.HasPrefix(hash, hashScheme) && stored == BodyHash(body)
	case strings.HasPrefix(stored, jcsScheme):
		return stored == jcsHash(body)
	}
	return stored == compactHash(body)
}

// jcsHash is the body hash of kycd before BodyHash read bodies as the
// decoder does: RFC 8785 of the bytes, or the bytes when they are not
// canonicalisable (a duplicate name, invalid UTF-8).
func jcsHash(body []byte) string {
	canonical := jsontext.Value(bytes.Clone(body))
	if err := canonical.Canonicalize(); err != nil {
		canonical = jsontext.Value(body)
	}
	sum := sha256.Sum256(canonical)
	return jcsScheme + hex.EncodeToString(sum[:])
}

// compactHash is the body hash of kycd before BodyHash: the SHA-256 of the
// body with insignificant whitespace removed.
func compactHash(body []byte) string {
	var buf bytes.Buffer
	buf.Grow(len(body))
	if err := json.Compact(&buf, body); err != nil {
		buf.Reset()
		buf.Write(body)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

// CleanText makes a string that came from a body safe for every store's
// text columns: invalid UTF-8 and U+0000 (which PostgreSQL refuses in text
// and jsonb) become U+FFFD. Raw bodies are kept as received; only what kycd
// extracts from them is cleaned, the same way on every store.
func CleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// ValidUTF8 returns b with each byte that is not part of valid UTF-8
// replaced by U+FFFD, as encoding/json does within strings: JSON is UTF-8
// (RFC 8259), and a raw invalid byte makes an answer that strict parsers
// refuse. Invalid bytes of a JSON body can only be inside its strings, so
// the result is JSON still. Stored bytes stay as received (the body hash
// is theirs); this is for showing them.
func ValidUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// canonicaliser writes a JSON body's canonical form, the value ralio.Parse
// reads from it:
//
//   - object members sorted by name, and of members of the same name only
//     the last, which is the one the decoder reads;
//   - strings (names too) decoded, with invalid UTF-8 and lone surrogates as
//     U+FFFD as the decoder has them, and written in RFC 8785's spelling;
//   - numbers as their exact decimal value (digits without leading or
//     trailing zeros, and an exponent), never through float64: 1.0, 1 and
//     1e0 are one number, 2^53 and 2^53+1 are two;
//   - the envelope of any generation in one form: at the top level, eventId
//     and event_id are id, eventType and event_type are event, an envelope
//     field that is null is left out (the decoder has it absent), and an id
//     that is a UUID is in lower case.
//
// It reads with jsontext, the decoder's tokenizer, with the decoder's
// options, so that what it accepts as JSON is what the decoder accepts.
type canonicaliser struct {
	in      bytes.Buffer
	dec     jsontext.Decoder
	out     []byte
	str     []byte   // a string being unquoted
	moved   []byte   // an object's members before they are sorted
	members []member // of the objects being read, innermost last
}

// member is an object member written to canonicaliser.out: ",name:value"
// from start to end, the name (quoted) up to colon.
type member struct{ start, colon, end int }

var canonPool = sync.Pool{New: func() any { return new(canonicaliser) }}

// canonical returns body's canonical form, valid until c is used again, or
// false when body is not one JSON value.
func (c *canonicaliser) canonical(body []byte) ([]byte, bool) {
	c.in = *bytes.NewBuffer(body)
	c.dec.Reset(&c.in, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	c.out, c.members = c.out[:0], c.members[:0]
	err := c.value(true)
	if err == nil {
		if _, err = c.dec.ReadToken(); errors.Is(err, io.EOF) {
			err = nil
		} else if err == nil {
			err = errors.New("a second value after the top-level value")
		}
	}
	return c.out, err == nil
}

// release puts c back in the pool, without a reference to the body, and
// without the buffers a large body grew.
func (c *canonicaliser) release() {
	c.in = bytes.Buffer{}
	c.dec.Reset(&c.in)
	const large = 64 << 10
	if cap(c.out) > large || cap(c.moved) > large || cap(c.str) > large || cap(c.members) > large/16 {
		c.out, c.moved, c.str, c.members = nil, nil, nil, nil
	}
	canonPool.Put(c)
}

func (c *canonicaliser) value(top bool) error {
	switch c.dec.PeekKind() {
	case '{':
		return c.object(top)
	case '[':
		if _, err := c.dec.ReadToken(); err != nil {
			return err
		}
		c.out = append(c.out, '[')
		for i := 0; c.dec.PeekKind() != ']'; i++ {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			if err := c.value(false); err != nil {
				return err
			}
		}
		if _, err := c.dec.ReadToken(); err != nil {
			return err
		}
		c.out = append(c.out, ']')
		return nil
	}
	v, err := c.dec.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case '"':
		c.appendString(v)
	case '0':
		c.out = appendNumber(c.out, v)
	default: // true, false, null
		c.out = append(c.out, v...)
	}
	return nil
}

func (c *canonicaliser) object(top bool) error {
	if _, err := c.dec.ReadToken(); err != nil {
		return err
	}
	start, base := len(c.out), len(c.members)
	sorted := true
	for c.dec.PeekKind() != '}' {
		name, err := c.dec.ReadValue()
		if err != nil {
			return err
		}
		m := member{start: len(c.out)}
		c.out = append(c.out, ',')
		c.appendString(name)
		if top {
			c.out = append(c.out[:m.start+1], envelopeName(c.out[m.start+1:])...)
		}
		m.colon = len(c.out)
		c.out = append(c.out, ':')
		if err := c.value(false); err != nil {
			return err
		}
		m.end = len(c.out)
		if top && !c.envelopeValue(m) {
			c.out = c.out[:m.start]
			continue
		}
		if n := len(c.members); n > base && bytes.Compare(c.name(c.members[n-1]), c.name(m)) >= 0 {
			sorted = false
		}
		c.members = append(c.members, m)
	}
	if _, err := c.dec.ReadToken(); err != nil {
		return err
	}
	ms := c.members[base:]
	c.members = c.members[:base]
	if len(ms) == 0 {
		c.out = append(c.out, '{', '}')
		return nil
	}
	if !sorted {
		c.moved = append(c.moved[:0], c.out[start:]...)
		slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(c.movedName(a, start), c.movedName(b, start)) })
		c.out = c.out[:start]
		for i, m := range ms {
			if i+1 < len(ms) && bytes.Equal(c.movedName(m, start), c.movedName(ms[i+1], start)) {
				continue // a later member of the same name wins
			}
			c.out = append(c.out, c.moved[m.start-start:m.end-start]...)
		}
	}
	c.out[start] = '{' // the first member's comma
	c.out = append(c.out, '}')
	return nil
}

func (c *canonicaliser) name(m member) []byte { return c.out[m.start+1 : m.colon] }

func (c *canonicaliser) movedName(m member, start int) []byte {
	return c.moved[m.start+1-start : m.colon-start]
}

// envelopeName returns the one name of an envelope field that generations
// spell differently.
func envelopeName(quoted []byte) []byte {
	switch string(quoted) {
	case `"eventId"`, `"event_id"`:
		return []byte(`"id"`)
	case `"eventType"`, `"event_type"`:
		return []byte(`"event"`)
	}
	return quoted
}

// envelopeValue puts the value of top-level member m in its canonical form;
// false when the member is an envelope field that is null, which the
// decoder reads as absent.
func (c *canonicaliser) envelopeValue(m member) bool {
	name, v := c.name(m), c.out[m.colon+1:m.end]
	switch string(name) {
	case `"id"`, `"event"`, `"timestamp"`, `"data"`:
	default:
		return true
	}
	if string(v) == "null" {
		return false
	}
	if string(name) == `"id"` && isUUID(v) {
		for i, b := range v {
			if 'A' <= b && b <= 'F' {
				v[i] = b + 'a' - 'A'
			}
		}
	}
	return true
}

// isUUID reports whether quoted, a canonical JSON string, is a UUID in the
// 8-4-4-4-12 hex form, in any case, as the decoder accepts it.
func isUUID(quoted []byte) bool {
	if len(quoted) != 38 || quoted[0] != '"' {
		return false
	}
	for i, b := range quoted[1:37] {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if b != '-' {
				return false
			}
		case '0' <= b && b <= '9', 'a' <= b && b <= 'f', 'A' <= b && b <= 'F':
		default:
			return false
		}
	}
	return true
}

// appendString writes a JSON string in RFC 8785's spelling. Most strings
// are written so already (no escapes, valid UTF-8) and are copied.
func (c *canonicaliser) appendString(quoted []byte) {
	if in := quoted[1 : len(quoted)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		c.out = append(c.out, quoted...)
		return
	}
	// Both replace invalid UTF-8 and lone surrogates with U+FFFD, and say
	// so with an error that is not one here.
	c.str, _ = jsontext.AppendUnquote(c.str[:0], quoted)
	c.out, _ = jsontext.AppendQuote(c.out, c.str)
}

// appendNumber writes the exact decimal value of a JSON number: an optional
// minus, its significant digits, and an exponent unless it is 0 ("-25e-1"
// for -2.50). Zero is "0", whatever its sign. An exponent too large for an
// int32 is left as written.
func appendNumber(dst, num []byte) []byte {
	if n := len(num); num[0] != '-' && num[n-1] != '0' && !bytes.ContainsAny(num, ".eE") || string(num) == "0" {
		return append(dst, num...) // an integer without trailing zeros: the common case
	}
	mark := len(dst)
	rest := num
	if rest[0] == '-' {
		dst = append(dst, '-')
		rest = rest[1:]
	}
	digits := len(dst)
	i := 0
	for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
		i++
	}
	dst = append(dst, rest[:i]...)
	rest = rest[i:]
	var exp int64
	if len(rest) > 0 && rest[0] == '.' {
		i = 1
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
		dst = append(dst, rest[1:i]...)
		exp -= int64(i - 1)
		rest = rest[i:]
	}
	if len(rest) > 0 { // e or E
		e, err := strconv.ParseInt(string(rest[1:]), 10, 32)
		if err != nil {
			return append(dst[:mark], num...)
		}
		exp += e
	}
	lead := digits
	for lead < len(dst) && dst[lead] == '0' {
		lead++
	}
	dst = append(dst[:digits], dst[lead:]...)
	for len(dst) > digits && dst[len(dst)-1] == '0' {
		dst = dst[:len(dst)-1]
		exp++
	}
	if len(dst) == digits {
		return append(dst[:mark], '0')
	}
	if exp != 0 {
		dst = append(dst, 'e')
		dst = strconv.AppendInt(dst, exp, 10)
	}
	return dst
}
