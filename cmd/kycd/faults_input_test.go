package main

// The bad-input corpus of the fault suite: hundreds of kinds of bodies and
// headers, each sent on a raw connection to a kycd on SQLite and to one on
// PostgreSQL, with the answer DESIGN.md's endpoint table promises. A 400
// must leave its body in the quarantine, a 409 both bodies, and nothing
// else may leave anything there.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/ralio"
)

// Answers of the corpus, as the rows write them.
const (
	want200        = "200"
	want200Dup     = "200 duplicate"
	want400Kept    = "400, kept"
	want409Kept    = "409, both kept"
	want401        = "401"
	want401Held    = "401, held"
	want405        = "405"
	want413        = "413"
	want415        = "415"
	want503        = "503"
	want400NetHTTP = "400 from net/http"
	want431NetHTTP = "431 from net/http"
	want501NetHTTP = "501 from net/http"
)

// wantText says what an answer means, for the Expected column.
var wantText = map[string]string{
	want200:        "200; the event stored",
	want200Dup:     "200 `duplicate`; no second effect",
	want400Kept:    "400 problem naming the bad fields; the body kept in quarantine",
	want409Kept:    "409 problem; both bodies kept in quarantine",
	want401:        "401; nothing kept",
	want401Held:    "401; the body kept in the signature hold (reason `signature`), acted on only by a replay under which it verifies",
	want405:        "405 with `Allow: POST`; nothing kept",
	want413:        "413; nothing kept",
	want415:        "415; nothing kept",
	want503:        "503 with Retry-After (Ralio retries); nothing kept",
	want400NetHTTP: "400 from Go's HTTP server (not valid HTTP; kycd never sees it)",
	want431NetHTTP: "431 from Go's HTTP server (headers over 32 KiB)",
	want501NetHTTP: "501 from Go's HTTP server (a transfer coding it does not implement)",
}

// badCase is one request of the corpus.
type badCase struct {
	method  string              // POST when ""
	path    string              // /webhooks/ralio when ""
	ctype   string              // application/json when ""; "-" sends none
	noSig   bool                // no X-Signature
	sig     func([]byte) string // X-Signature; the right hex MAC when nil
	headers []string            // more header lines
	body    []byte
	chunked bool
	length  string   // Content-Length sent instead of the body's length
	short   bool     // half-close the connection after the body
	raw     []byte   // the whole request as is, instead of all the above
	before  [][]byte // bodies delivered (and answered 200) first
	want    string
	eventID string // the event a 200 stores
	// kept is the quarantine entry a 400 or 409 must leave: its body, and
	// for a 409 the body stored first. Set from body and before.
}

// badKind is one row: a kind of bad input, tried on one or more bodies.
type badKind struct {
	name   string
	expect string // the Expected column; from wantText when ""
	cases  []badCase
}

// ralioBody is one of Ralio's examples in ralio/testdata.
type ralioBody struct {
	label          string
	raw            []byte
	idKey, typeKey string
	kind           string // session, level, expiration, invitation, unknown
}

func ralioBodies(t *testing.T) []ralioBody {
	t.Helper()
	list := []struct{ file, label, kind string }{
		{"a-kyc_session_failed.json", "A kyc_session_failed", "session"},
		{"a-kyc_state_updated-snake.json", "A kyc_state_updated (snake_case)", "level"},
		{"a-viban_created.json", "A unknown type", "unknown"},
		{"b-kyc_expiration_warning.json", "B kyc_expiration_warning", "expiration"},
		{"b-kyc_session_failed-related-party.json", "B kyc_session_failed (related party)", "session"},
		{"c-kyb_state_updated.json", "C kyb_state_updated", "level"},
		{"c-kyc_session_manual_review.json", "C kyc_session_manual_review", "session"},
		{"c-related_party.kyc_session_created.json", "C related_party.kyc_session_created", "invitation"},
	}
	var out []ralioBody
	for _, e := range list {
		b := ralioBody{label: e.label, raw: example(t, e.file), idKey: "id", typeKey: "event", kind: e.kind}
		if strings.HasPrefix(e.file, "c-") {
			b.idKey, b.typeKey = "eventId", "eventType"
		}
		out = append(out, b)
	}
	return out
}

// doc decodes the example, numbers as written.
func (b ralioBody) doc() map[string]any {
	d := json.NewDecoder(bytes.NewReader(b.raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		panic(err)
	}
	return m
}

// marshal writes v as compact JSON without HTML escapes.
func marshal(v any) []byte {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// fresh is the example under a new event id, changed by mutate (which may
// be nil); id is the event id the body then carries ("" if none).
func (b ralioBody) fresh(mutate func(m, data map[string]any)) (id string, body []byte) {
	m := b.doc()
	m[b.idKey] = uuid.NewString()
	if mutate != nil {
		data, _ := m["data"].(map[string]any)
		mutate(m, data)
	}
	for _, k := range []string{"id", "eventId", "event_id"} {
		if s, ok := m[k].(string); ok {
			id = strings.ToLower(s)
		}
	}
	return id, marshal(m)
}

// inject replaces the JSON string "marker" in body by raw bytes.
func inject(body []byte, marker string, raw string) []byte {
	return bytes.Replace(body, []byte(`"`+marker+`"`), []byte(raw), 1)
}

// nested is a JSON value nested depth arrays deep.
func nested(depth int) string {
	return strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth)
}

func hexMAC(secret string) func([]byte) string {
	return func(b []byte) string { return ralio.Sign(b, secret) }
}

func macBytes(b []byte) []byte {
	h := hmac.New(sha256.New, []byte(testSecret))
	h.Write(b)
	return h.Sum(nil)
}

// badInputKinds is the corpus.
func badInputKinds(t *testing.T) []badKind {
	bodies := ralioBodies(t)
	var kinds []badKind

	// every applies mutate to each of Ralio's bodies; want gives the
	// answer per body.
	every := func(name string, want func(b ralioBody) string, expect string, mutate func(b ralioBody) (string, []byte)) {
		k := badKind{name: name + " — Ralio's bodies", expect: expect}
		for _, b := range bodies {
			id, body := mutate(b)
			c := badCase{body: body, want: want(b)}
			if c.want == want200 {
				c.eventID = id
			}
			k.cases = append(k.cases, c)
		}
		kinds = append(kinds, k)
	}
	always := func(w string) func(ralioBody) string { return func(ralioBody) string { return w } }
	change := func(f func(b ralioBody, m, data map[string]any)) func(b ralioBody) (string, []byte) {
		return func(b ralioBody) (string, []byte) {
			return b.fresh(func(m, data map[string]any) { f(b, m, data) })
		}
	}
	set := func(key string, v any) func(b ralioBody) (string, []byte) {
		return change(func(b ralioBody, m, _ map[string]any) {
			k := key
			switch key {
			case "id":
				k = b.idKey
			case "type":
				k = b.typeKey
			}
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		})
	}
	null := json.RawMessage("null")

	every("as they are (their own event ids)", always(want200), "", func(b ralioBody) (string, []byte) {
		id, _ := b.doc()[b.idKey].(string)
		return id, b.raw
	})

	// The envelope.
	every("event id removed", always(want400Kept), "", set("id", nil))
	every("event id null", always(want400Kept), "", set("id", null))
	every("event id a number (12345)", always(want400Kept), "", set("id", json.Number("12345")))
	every("event id an empty string", always(want400Kept), "", set("id", ""))
	every("event id not a UUID (evt_1a2b3c)", always(want400Kept), "", set("id", "evt_1a2b3c"))
	every("event id a UUID in braces", always(want400Kept), "", set("id", "{"+uuid.NewString()+"}"))
	every("event id a UUID with a character too many", always(want400Kept), "", set("id", uuid.NewString()+"0"))
	every("event id an object", always(want400Kept), "", set("id", map[string]any{"id": uuid.NewString()}))
	every("event id a UUID in upper case", always(want200), "200; the event stored under its lower-case id",
		change(func(b ralioBody, m, _ map[string]any) { m[b.idKey] = strings.ToUpper(uuid.NewString()) }))
	every("event id under its snake_case name (event_id)", always(want200), "",
		change(func(b ralioBody, m, _ map[string]any) { m["event_id"] = m[b.idKey]; delete(m, b.idKey) }))
	every("event id twice, as id and as eventId, with different values", always(want400Kept), "",
		change(func(_ ralioBody, m, _ map[string]any) { m["id"], m["eventId"] = uuid.NewString(), uuid.NewString() }))
	every("event type removed", always(want400Kept), "", set("type", nil))
	every("event type a number", always(want400Kept), "", set("type", json.Number("7")))
	every("event type blank (\"  \")", always(want400Kept), "", set("type", "  "))
	every("event type an array", always(want400Kept), "", set("type", []any{"kyc_session_failed"}))
	every("event type with U+0000 (\\u0000) inside: a type kycd does not know", always(want200), "200; stored as an unhandled type",
		change(func(b ralioBody, m, _ map[string]any) { m[b.typeKey] = m[b.typeKey].(string) + "\x00" }))
	every("timestamp removed", always(want400Kept), "", set("timestamp", nil))
	every("timestamp a Unix time (a number)", always(want400Kept), "", set("timestamp", json.Number("1750353253")))
	every("timestamp \"yesterday\"", always(want400Kept), "", set("timestamp", "yesterday"))
	every("timestamp without a time zone", always(want400Kept), "", set("timestamp", "2025-06-19T17:14:13.123"))
	every("timestamp with a space for the T", always(want400Kept), "", set("timestamp", "2025-06-19 17:14:13.123Z"))
	every("timestamp a date only", always(want400Kept), "", set("timestamp", "2025-06-19"))
	every("timestamp in month 13", always(want400Kept), "", set("timestamp", "2025-13-19T17:14:13.123Z"))
	every("timestamp on February 30", always(want400Kept), "", set("timestamp", "2026-02-30T17:14:13.123Z"))
	every("timestamp the zero time (0001-01-01T00:00:00Z)", always(want400Kept), "", set("timestamp", "0001-01-01T00:00:00Z"))
	every("timestamp in the year 99999", always(want400Kept), "", set("timestamp", "99999-01-01T00:00:00Z"))
	every("timestamp with a +02:00 offset", always(want200), "", set("timestamp", "2025-06-19T19:14:13.123+02:00"))
	every("timestamp in the year 9999", always(want200), "", set("timestamp", "9999-12-31T23:59:59.999Z"))
	every("timestamp with nanoseconds", always(want200), "", set("timestamp", "2025-06-19T17:14:13.123456789Z"))
	every("timestamp with a lower-case t and z (RFC 3339 §5.6)", always(want200), "", set("timestamp", "2025-06-19t17:14:13.123z"))
	every("timestamp a leap second (2016-12-31T23:59:60Z)", always(want200), "",
		set("timestamp", "2016-12-31T23:59:60Z"))
	every("timestamp with second 60 that is no leap second (17:14:60Z)", always(want400Kept), "", set("timestamp", "2025-06-19T17:14:60Z"))
	every("timestamp with a +24:00 offset", always(want400Kept), "", set("timestamp", "2025-06-19T17:14:13.123+24:00"))
	every("timestamp with a +23:60 offset", always(want400Kept), "", set("timestamp", "2025-06-19T17:14:13.123+23:60"))
	knownNeedsData := func(b ralioBody) string {
		if b.kind == "unknown" {
			return want200
		}
		return want400Kept
	}
	dataOptional := "400, the body kept in quarantine; 200 for the unknown type, whose data kycd does not need"
	every("data removed", knownNeedsData, dataOptional, set("data", nil))
	every("data null", knownNeedsData, dataOptional, set("data", null))
	every("data a string", always(want400Kept), "", set("data", "{}"))
	every("data an array", always(want400Kept), "", set("data", []any{}))
	every("data a number", always(want400Kept), "", set("data", json.Number("1")))

	// Unknown fields, odd text and numbers: kept, not refused.
	every("an unknown top-level field", always(want200), "", set("deliveredBy", "ralio-v3"))
	every("an unknown object inside data", always(want200), "",
		change(func(_ ralioBody, m, data map[string]any) {
			if data != nil {
				data["extra"] = map[string]any{"a": []any{1, "two", nil, true}}
			} else {
				m["extra"] = map[string]any{"a": 1}
			}
		}))
	every("U+0000 (\\u0000) in an unknown string field", always(want200), "", set("note", "nul \x00 here"))
	every("a raw NUL byte inside a string", always(want400Kept), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(func(m, _ map[string]any) { m["note"] = "@@RAW@@" })
			return id, inject(body, "@@RAW@@", "\"nul \x00 here\"")
		})
	every("invalid UTF-8 bytes inside a string", always(want200), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(func(m, _ map[string]any) { m["note"] = "@@RAW@@" })
			return id, inject(body, "@@RAW@@", "\"bad \xff\xfe\xc3 here\"")
		})
	every("invalid UTF-8 bytes outside any string", always(want400Kept), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(nil)
			return id, append([]byte{'{', 0xff, ' '}, body[1:]...)
		})
	every("a lone UTF-16 surrogate escape (\\ud800)", always(want200), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(func(m, _ map[string]any) { m["note"] = "@@RAW@@" })
			return id, inject(body, "@@RAW@@", `"lone \ud800 here"`)
		})
	every("a number too large for a double (1e400) in an unknown field", always(want200), "",
		set("amount", json.Number("1e400")))
	every("a 40-digit integer in an unknown field", always(want200), "",
		set("amount", json.Number("1234567890123456789012345678901234567890")))
	every("a negative zero and an exponent in unknown fields", always(want200), "",
		change(func(_ ralioBody, m, _ map[string]any) { m["a"], m["b"] = json.Number("-0"), json.Number("1E-7") }))
	every("the event id twice (a duplicate key), the first another UUID", always(want200),
		"200; the last key wins, as in encoding/json: the event stored under the second id",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(nil)
			return id, append([]byte(fmt.Sprintf(`{%q:%q,`, b.idKey, uuid.NewString())), body[1:]...)
		})
	every("the event type twice (a duplicate key), the first \"nonsense\"", always(want200),
		"200; the last key wins, as in encoding/json",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(nil)
			return id, append([]byte(fmt.Sprintf(`{%q:"nonsense",`, b.typeKey)), body[1:]...)
		})
	every("an unknown field nested 1,000 arrays deep", always(want200), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(func(m, _ map[string]any) { m["deep"] = "@@RAW@@" })
			return id, inject(body, "@@RAW@@", nested(1000))
		})
	every("an unknown field nested 10,001 arrays deep (past encoding/json's limit)", always(want400Kept), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(func(m, _ map[string]any) { m["deep"] = "@@RAW@@" })
			return id, inject(body, "@@RAW@@", nested(10001))
		})
	every("an unknown field holding a 900 KB string (under the 1 MiB limit)", always(want200), "",
		set("padding", strings.Repeat("x", 900_000)))

	// Not one JSON object.
	every("truncated to half its length", always(want400Kept), "",
		func(b ralioBody) (string, []byte) { id, body := b.fresh(nil); return id, body[:len(body)/2] })
	every("with trailing garbage", always(want400Kept), "",
		func(b ralioBody) (string, []byte) { id, body := b.fresh(nil); return id, append(body, " garbage"...) })
	every("followed by a second JSON object", always(want400Kept), "",
		func(b ralioBody) (string, []byte) { id, body := b.fresh(nil); return id, append(body, body...) })
	every("with a trailing comma", always(want400Kept), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(nil)
			return id, append(body[:len(body)-1:len(body)-1], ",}"...)
		})
	every("preceded by a UTF-8 byte order mark", always(want400Kept), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(nil)
			return id, append([]byte("\xef\xbb\xbf"), body...)
		})
	every("encoded in UTF-16 (little endian, with a byte order mark)", always(want400Kept), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(nil)
			out := []byte{0xff, 0xfe}
			for _, u := range utf16.Encode([]rune(string(body))) {
				out = binary.LittleEndian.AppendUint16(out, u)
			}
			return id, out
		})
	every("wrapped in a JSON array", always(want400Kept), "",
		func(b ralioBody) (string, []byte) {
			id, body := b.fresh(nil)
			return id, []byte("[" + string(body) + "]")
		})
	every("envelope keys in upper case (ID, EVENT, TIMESTAMP, DATA)", always(want400Kept), "",
		func(b ralioBody) (string, []byte) {
			return b.fresh(func(m, _ map[string]any) {
				for _, k := range []string{b.idKey, b.typeKey, "timestamp", "data"} {
					if v, ok := m[k]; ok {
						m[strings.ToUpper(k)] = v
						delete(m, k)
					}
				}
			})
		})

	// Retries and conflicts.
	dup := func(name string, second func(b ralioBody, m map[string]any) []byte) {
		k := badKind{name: name + " — Ralio's bodies"}
		for _, b := range bodies {
			m := b.doc()
			m[b.idKey] = uuid.NewString()
			m["n"], m["s"] = json.Number("1"), "A"
			first := marshal(m)
			k.cases = append(k.cases, badCase{before: [][]byte{first}, body: second(b, m), want: want200Dup})
		}
		kinds = append(kinds, k)
	}
	dup("the exact same body again", func(_ ralioBody, m map[string]any) []byte { return marshal(m) })
	dup("the same event again, indented (other white space)", func(_ ralioBody, m map[string]any) []byte {
		b, _ := json.MarshalIndent(m, "", "    ")
		return b
	})
	dup("the same event again, keys in another order", func(_ ralioBody, m map[string]any) []byte {
		// encoding/json sorts keys: write them in reverse by hand.
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		slices.Reverse(keys)
		var buf bytes.Buffer
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, "%q:%s", k, marshal(m[k]))
		}
		buf.WriteByte('}')
		return buf.Bytes()
	})
	dup("the same event again, a number spelt otherwise (1.0 for 1)", func(_ ralioBody, m map[string]any) []byte {
		return bytes.Replace(marshal(m), []byte(`"n":1`), []byte(`"n":1.0`), 1)
	})
	dup("the same event again, a string escaped otherwise (\\u0041 for A)", func(_ ralioBody, m map[string]any) []byte {
		return bytes.Replace(marshal(m), []byte(`"s":"A"`), []byte(`"s":"\u0041"`), 1)
	})
	// Issue 15, item 8: duplicates as the decoder reads the body.
	pair := func(name, want string, second func(b ralioBody, m map[string]any) (first, retry []byte)) {
		k := badKind{name: name + " — Ralio's bodies"}
		for _, b := range bodies {
			m := b.doc()
			m[b.idKey] = uuid.NewString()
			m["n"], m["s"] = json.Number("1"), "A"
			first, retry := second(b, m)
			k.cases = append(k.cases, badCase{before: [][]byte{first}, body: retry, want: want})
		}
		kinds = append(kinds, k)
	}
	indented := func(body []byte) []byte {
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "", "  "); err != nil {
			panic(err)
		}
		return buf.Bytes()
	}
	withS := func(m map[string]any, raw string) []byte { return inject(marshal(m), "A", raw) }
	pair("the same event again, indented, the body with a duplicate key", want200Dup, func(_ ralioBody, m map[string]any) ([]byte, []byte) {
		first := append([]byte(`{"s":"B",`), marshal(m)[1:]...)
		return first, indented(first)
	})
	pair("the same event again, indented, the body with a lone surrogate (\\ud800)", want200Dup, func(_ ralioBody, m map[string]any) ([]byte, []byte) {
		first := withS(m, `"lone \ud800 here"`)
		return first, indented(first)
	})
	pair("the same event again, indented, the body with invalid UTF-8 (0xff)", want200Dup, func(_ ralioBody, m map[string]any) ([]byte, []byte) {
		first := withS(m, "\"bad \xff byte\"")
		return first, indented(first)
	})
	pair("the event id twice (the last stored), then the event with the last id only", want200Dup, func(b ralioBody, m map[string]any) ([]byte, []byte) {
		return append([]byte(fmt.Sprintf(`{%q:%q,`, b.idKey, uuid.NewString())), marshal(m)[1:]...), marshal(m)
	})
	pair("the same event again, its id in upper case", want200Dup, func(b ralioBody, m map[string]any) ([]byte, []byte) {
		first := marshal(m)
		m[b.idKey] = strings.ToUpper(m[b.idKey].(string))
		return first, marshal(m)
	})
	pair("the same event again in the other envelope generation (A's id and event, C's eventId and eventType)", want200Dup, func(b ralioBody, m map[string]any) ([]byte, []byte) {
		first := marshal(m)
		other := map[string]string{"id": "eventId", "event": "eventType", "eventId": "id", "eventType": "event"}
		for _, k := range []string{b.idKey, b.typeKey} {
			m[other[k]] = m[k]
			delete(m, k)
		}
		return first, marshal(m)
	})
	pair("the same event id again, an integer above 2^53 one more (kycId 9007199254740993 for …992)", want409Kept, func(_ ralioBody, m map[string]any) ([]byte, []byte) {
		data := m["data"].(map[string]any)
		key := "kycId"
		if _, ok := data["kyc_id"]; ok {
			key = "kyc_id" // both spellings with different values would be a 400
		}
		data[key] = json.Number("9007199254740992")
		first := marshal(m)
		data[key] = json.Number("9007199254740993")
		return first, marshal(m)
	})
	conflicts := badKind{name: "the same event id again with another body — Ralio's bodies"}
	for _, b := range bodies {
		m := b.doc()
		m[b.idKey] = uuid.NewString()
		first := marshal(m)
		m["timestamp"] = "2027-01-01T00:00:00.000Z"
		conflicts.cases = append(conflicts.cases, badCase{before: [][]byte{first}, body: marshal(m), want: want409Kept})
	}
	kinds = append(kinds, conflicts)

	// Fields of each kind of event.
	of := func(kind ...string) []ralioBody {
		var out []ralioBody
		for _, b := range bodies {
			if slices.Contains(kind, b.kind) {
				out = append(out, b)
			}
		}
		return out
	}
	some := func(name, want string, on []ralioBody, mutate func(b ralioBody, m, data map[string]any)) {
		k := badKind{name: name}
		var labels []string
		for _, b := range on {
			id, body := b.fresh(func(m, data map[string]any) { mutate(b, m, data) })
			c := badCase{body: body, want: want}
			if want == want200 {
				c.eventID = id
			}
			k.cases = append(k.cases, c)
			labels = append(labels, b.label)
		}
		k.name += " — " + strings.Join(labels, ", ")
		kinds = append(kinds, k)
	}
	sessions := of("session")
	subjectKey := func(b ralioBody) string {
		if b.label == "B kyc_session_failed (related party)" {
			return "relatedPartyId"
		}
		return "userId"
	}
	withChecks := []ralioBody{sessions[0], sessions[1]}
	firstCheck := func(data map[string]any) map[string]any { return data["checks"].([]any)[0].(map[string]any) }
	firstReason := func(data map[string]any) map[string]any {
		return firstCheck(data)["reasons"].([]any)[0].(map[string]any)
	}
	some("sessionId removed", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { delete(d, "sessionId") })
	some("sessionId a number", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { d["sessionId"] = json.Number("42") })
	some("sessionId not a UUID", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { d["sessionId"] = "sess_42" })
	some("the subject's id removed", want400Kept, sessions, func(b ralioBody, _, d map[string]any) { delete(d, subjectKey(b)) })
	some("the subject's id not a UUID", want400Kept, sessions, func(b ralioBody, _, d map[string]any) { d[subjectKey(b)] = "user-42" })
	some("the subject's id as a nested object (user.id, relatedParty.id)", want200, sessions, func(b ralioBody, _, d map[string]any) {
		nestedKey := map[string]string{"userId": "user", "relatedPartyId": "relatedParty"}[subjectKey(b)]
		d[nestedKey] = map[string]any{"id": d[subjectKey(b)]}
		delete(d, subjectKey(b))
	})
	some("the subject's id twice, camelCase and snake_case, with different values", want400Kept, sessions, func(b ralioBody, _, d map[string]any) {
		d[snakeName(subjectKey(b))] = uuid.NewString()
	})
	some("entityType \"robot\"", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { d["entityType"] = "robot" })
	some("entityType a number", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { d["entityType"] = json.Number("1") })
	some("entityType \"user\" with only a relatedPartyId", want400Kept, sessions, func(b ralioBody, _, d map[string]any) {
		d["relatedPartyId"] = d[subjectKey(b)]
		delete(d, "userId")
		d["entityType"] = "user"
	})
	some("checks a string", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { d["checks"] = "none" })
	some("checks an object", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { d["checks"] = map[string]any{} })
	some("checks an array of numbers", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { d["checks"] = []any{1, 2} })
	some("checks an array with null", want400Kept, sessions, func(_ ralioBody, _, d map[string]any) { d["checks"] = []any{nil} })
	some("checks empty", want200, sessions, func(_ ralioBody, _, d map[string]any) { d["checks"] = []any{} })
	some("checks removed (optional since generation B)", want200, sessions, func(_ ralioBody, _, d map[string]any) { delete(d, "checks") })
	some("5,000 checks", want200, sessions, func(_ ralioBody, _, d map[string]any) {
		var checks []any
		for i := range 5000 {
			checks = append(checks, map[string]any{"type": "check-" + strconv.Itoa(i), "state": "Refused",
				"reasons": []any{map[string]any{"code": "C" + strconv.Itoa(i)}}})
		}
		d["checks"] = checks
	})
	some("a check without its type", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { delete(firstCheck(d), "type") })
	some("a check's type empty", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { firstCheck(d)["type"] = "" })
	some("a check without its state", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { delete(firstCheck(d), "state") })
	some("a check's state 3 (codes are 1 and 2)", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { firstCheck(d)["state"] = json.Number("3") })
	some("a check's state 1.5", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { firstCheck(d)["state"] = json.Number("1.5") })
	some("a check's state true", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { firstCheck(d)["state"] = true })
	some("a check's state \"Pending\" (a state kycd does not know: kept as sent)", want200, withChecks, func(_ ralioBody, _, d map[string]any) { firstCheck(d)["state"] = "Pending" })
	some("a check's state in lower case (\"refused\")", want200, withChecks, func(_ ralioBody, _, d map[string]any) { firstCheck(d)["state"] = "refused" })
	some("a check's reasons a string", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { firstCheck(d)["reasons"] = "expired" })
	some("a reason without its code", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { delete(firstReason(d), "code") })
	some("a reason's code empty", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { firstReason(d)["code"] = " " })
	some("a reason's message a number", want400Kept, withChecks, func(_ ralioBody, _, d map[string]any) { firstReason(d)["message"] = json.Number("42") })
	some("a reason's message with U+0000 (\\u0000)", want200, withChecks, func(_ ralioBody, _, d map[string]any) { firstReason(d)["message"] = "nul \x00 here" })
	some("a reason's message of 100,000 characters", want200, withChecks, func(_ ralioBody, _, d map[string]any) {
		firstReason(d)["message"] = strings.Repeat("é", 100_000)
	})
	k := badKind{name: "a reason's message with invalid UTF-8 bytes — " + withChecks[0].label + ", " + withChecks[1].label}
	for _, b := range withChecks {
		id, body := b.fresh(func(_, d map[string]any) { firstReason(d)["message"] = "@@RAW@@" })
		k.cases = append(k.cases, badCase{body: inject(body, "@@RAW@@", "\"bad \xff here\""), want: want200, eventID: id})
	}
	kinds = append(kinds, k)

	levels := of("level")
	levelID := func(b ralioBody) string {
		if b.kind == "level" && b.typeKey == "event" {
			return "kyc_id"
		}
		return "kybId"
	}
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"the level removed", nil, want400Kept},
		{"the level \"MEDIUM\"", "MEDIUM", want400Kept},
		{"the level in lower case (\"light\")", "light", want200},
		{"the level 1 (the code of REGULAR)", json.Number("1"), want200},
		{"the level 3", json.Number("3"), want400Kept},
		{"the level \"1\" (a string)", "1", want400Kept},
		{"the level true", true, want400Kept},
	} {
		some(c.name, c.want, levels, func(_ ralioBody, _, d map[string]any) {
			if c.v == nil {
				delete(d, "state")
			} else {
				d["state"] = c.v
			}
		})
	}
	for _, c := range []struct {
		name string
		v    any
		want string
	}{
		{"kycId/kybId a string", "778", want400Kept},
		{"kycId/kybId 1.5", json.Number("1.5"), want400Kept},
		{"kycId/kybId 1e400", json.Number("1e400"), want400Kept},
		{"kycId/kybId past 64 bits (99999999999999999999)", json.Number("99999999999999999999"), want400Kept},
		{"kycId/kybId negative", json.Number("-1"), want200},
	} {
		some(c.name, c.want, levels, func(b ralioBody, _, d map[string]any) { d[levelID(b)] = c.v })
	}
	some("the user id removed", want400Kept, levels, func(_ ralioBody, _, d map[string]any) { delete(d, "user_id"); delete(d, "userId") })

	warn := of("expiration")
	for _, c := range []struct {
		name, key string
		v         any
		want      string
	}{
		{"expirationDate removed", "expirationDate", nil, want400Kept},
		{"expirationDate February 30", "expirationDate", "2026-02-30", want400Kept},
		{"expirationDate day first (15/06/2026)", "expirationDate", "15/06/2026", want400Kept},
		{"expirationDate a timestamp", "expirationDate", "2026-06-15T00:00:00Z", want400Kept},
		{"daysRemaining a string", "daysRemaining", "14", want400Kept},
		{"daysRemaining 1e308", "daysRemaining", json.Number("1e308"), want400Kept},
		{"daysRemaining 2.5", "daysRemaining", json.Number("2.5"), want400Kept},
		{"daysRemaining negative", "daysRemaining", json.Number("-5"), want200},
		{"action a number", "action", json.Number("1"), want400Kept},
		{"action removed", "action", nil, want200},
	} {
		some(c.name, c.want, warn, func(_ ralioBody, _, d map[string]any) {
			if c.v == nil {
				delete(d, c.key)
			} else {
				d[c.key] = c.v
			}
		})
	}

	invite := of("invitation")
	obj := func(d map[string]any, key string) map[string]any { return d[key].(map[string]any) }
	for _, c := range []struct {
		name   string
		want   string
		mutate func(d map[string]any)
	}{
		{"relatedParty removed", want400Kept, func(d map[string]any) { delete(d, "relatedParty") }},
		{"relatedParty.id removed", want400Kept, func(d map[string]any) { delete(obj(d, "relatedParty"), "id") }},
		{"relatedParty a string", want400Kept, func(d map[string]any) { d["relatedParty"] = "Ana" }},
		{"relatedParty.email a number", want400Kept, func(d map[string]any) { obj(d, "relatedParty")["email"] = json.Number("42") }},
		{"kycSession removed", want400Kept, func(d map[string]any) { delete(d, "kycSession") }},
		{"kycSession.id not a UUID", want400Kept, func(d map[string]any) { obj(d, "kycSession")["id"] = "ks_1" }},
		{"kycSession.expiresAt \"soon\"", want400Kept, func(d map[string]any) { obj(d, "kycSession")["expiresAt"] = "soon" }},
		{"kycSession.expiresAt removed", want200, func(d map[string]any) { delete(obj(d, "kycSession"), "expiresAt") }},
		{"businessUser.id a string", want400Kept, func(d map[string]any) { obj(d, "businessUser")["id"] = "4821" }},
		{"businessUser removed", want200, func(d map[string]any) { delete(d, "businessUser") }},
	} {
		some(c.name, c.want, invite, func(_ ralioBody, _, d map[string]any) { c.mutate(d) })
	}

	// Bodies of their own.
	one := func(name, want string, body []byte) {
		kinds = append(kinds, badKind{name: name, cases: []badCase{{body: body, want: want}}})
	}
	rng := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, 1024)
	for i := range random {
		random[i] = byte(rng.UintN(256)) //nolint:gosec // G115: UintN(256) is below 256
	}
	for _, c := range []struct{ name, body string }{
		{"an empty body", ""},
		{"white space only", " \n\t\r\n"},
		{"YAML", "received: true\n"},
		{"a lone {", "{"},
		{"a lone }", "}"},
		{"a lone [", "["},
		{"an empty object {}", "{}"},
		{"an empty array []", "[]"},
		{"null", "null"},
		{"true", "true"},
		{"the number 0", "0"},
		{"1e400", "1e400"},
		{"a JSON string", `"kyc_session_failed"`},
		{"XML", `<event id="1"/>`},
		{"a form (a=1&b=2)", "a=1&b=2"},
		{"NaN", "NaN"},
		{"Infinity", "Infinity"},
		{"single-quoted JSON", `{'id': '550e8400-e29b-41d4-a716-446655440000'}`},
		{"unquoted keys", `{id: 1, event: "kyc_session_failed"}`},
		{"a comment before the object", "// Ralio\n{}"},
		{"a NUL byte", "\x00"},
		{"bytes that are not UTF-8", "\xff\xfe\xfd"},
		{"1 KiB of random bytes", string(random)},
		{"1,000,000 bytes of x (under the 1 MiB limit)", strings.Repeat("x", 1_000_000)},
		{"100,000 nested arrays", nested(100_000)},
		{"an object 100,000 deep", strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000)},
		{"an object with 50,000 keys", func() string {
			var b strings.Builder
			b.WriteByte('{')
			for i := range 50_000 {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `"k%d":%d`, i, i)
			}
			b.WriteByte('}')
			return b.String()
		}()},
		{"an array of 100,000 nulls", "[" + strings.Repeat("null,", 99_999) + "null]"},
	} {
		one(c.name, want400Kept, []byte(c.body))
	}

	// Headers and the request itself, on a valid body.
	valid := func() (string, []byte) { return bodies[0].fresh(nil) }
	request := func(name, want string, c badCase) {
		if c.body == nil && c.raw == nil {
			c.eventID, c.body = valid()
		}
		if want != want200 {
			c.eventID = ""
		}
		c.want = want
		kinds = append(kinds, badKind{name: name, cases: []badCase{c}})
	}
	other := func(b []byte) string { return ralio.Sign(append(slices.Clone(b), ' '), testSecret) }
	for _, c := range []struct {
		name string
		want string
		sig  func([]byte) string
	}{
		{"X-Signature empty", want401, func([]byte) string { return "" }},
		{"X-Signature made with another secret", want401Held, hexMAC("not-the-secret")},
		{"X-Signature of another body (the body plus a space)", want401Held, other},
		{"X-Signature missing its last hex digit", want401, func(b []byte) string { s := ralio.Sign(b, testSecret); return s[:len(s)-1] }},
		{"X-Signature with one hex digit changed", want401Held, func(b []byte) string {
			s := []byte(ralio.Sign(b, testSecret))
			s[10] = map[bool]byte{true: '0', false: '1'}[s[10] != '0']
			return string(s)
		}},
		{"X-Signature with 00 appended", want401, func(b []byte) string { return ralio.Sign(b, testSecret) + "00" }},
		{"X-Signature sha1= and the right SHA-256 digest", want401, func(b []byte) string { return "sha1=" + ralio.Sign(b, testSecret) }},
		{"X-Signature sha256= and nothing", want401, func([]byte) string { return "sha256=" }},
		{"X-Signature of 10,000 characters", want401, func([]byte) string { return strings.Repeat("ab", 5000) }},
		{"X-Signature with bytes that are not ASCII", want401, func([]byte) string { return "sha256=\xe9\xe9" }},
		{"X-Signature the digest of the secret alone", want401Held, func([]byte) string { return ralio.Sign(nil, testSecret) }},
		{"X-Signature sha256=<hex>", want200, func(b []byte) string { return "sha256=" + ralio.Sign(b, testSecret) }},
		{"X-Signature in upper-case hex", want200, func(b []byte) string { return strings.ToUpper(ralio.Sign(b, testSecret)) }},
		{"X-Signature in standard base64", want200, func(b []byte) string { return base64.StdEncoding.EncodeToString(macBytes(b)) }},
		{"X-Signature in URL-safe base64 without padding", want200, func(b []byte) string { return base64.RawURLEncoding.EncodeToString(macBytes(b)) }},
	} {
		request(c.name, c.want, badCase{sig: c.sig})
	}
	request("no X-Signature", want401, badCase{noSig: true})
	request("X-Signature header name in lower case (x-signature)", want200, badCase{noSig: true,
		headers: []string{"x-signature: @SIG@"}})
	request("two X-Signature headers, a wrong one first", want401Held, badCase{noSig: true,
		headers: []string{"X-Signature: " + strings.Repeat("0", 64), "X-Signature: @SIG@"}})
	request("two X-Signature headers, the right one first", want200, badCase{noSig: true,
		headers: []string{"X-Signature: @SIG@", "X-Signature: " + strings.Repeat("0", 64)}})
	request("unsigned, a body that is not JSON", want401, badCase{noSig: true, body: []byte("received: true")})
	request("unsigned, an empty body", want401, badCase{noSig: true, body: []byte{}})

	// Signed, a body is read as JSON whatever its Content-Type (issue 15):
	// only an unsigned one of a type that is not JSON is answered 415.
	for _, c := range []struct{ ctype, want string }{
		{"text/plain", want200},
		{"application/xml", want200},
		{"application/x-www-form-urlencoded", want200},
		{"multipart/form-data; boundary=x", want200},
		{"text/json", want200},
		{"application/x-json", want200},
		{"application/octet-stream", want200},
		{"application/json, text/plain", want200},
		{"json", want200},
		{"application/jsonp", want200},
		{"*/*", want200},
		{"application/json; charset=utf-8", want200},
		{"APPLICATION/JSON", want200},
		{"application/json;charset=latin1", want200},
		{"application/vnd.ralio+json", want200},
		{"application/problem+json", want200},
	} {
		request("Content-Type: "+c.ctype, c.want, badCase{ctype: c.ctype})
	}
	request("no Content-Type (read as JSON)", want200, badCase{ctype: "-"})
	request("Content-Type empty", want200, badCase{ctype: "-", headers: []string{"Content-Type: "}})
	request("Content-Type text/plain and unsigned (the type is checked first)", want415, badCase{ctype: "text/plain", noSig: true})
	request("Content-Type text/plain and a wrong signature", want401Held, badCase{ctype: "text/plain", sig: func([]byte) string { return strings.Repeat("0", 64) }})
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	request("a gzip-compressed body with Content-Encoding: gzip, signed over the JSON (decoded, kept decoded)", want200, func() badCase {
		id, b := valid()
		return badCase{body: gz(b), sig: func([]byte) string { return ralio.Sign(b, testSecret) }, headers: []string{"Content-Encoding: gzip"}, eventID: id}
	}())
	request("a gzip-compressed body with Content-Encoding: gzip, signed over the bytes sent", want200, func() badCase {
		id, b := valid()
		return badCase{body: gz(b), headers: []string{"Content-Encoding: gzip"}, eventID: id}
	}())
	request("Content-Encoding: gzip, 16 MiB of spaces compressed to 16 KiB (over --max-body once decoded)", want413, func() badCase {
		_, b := valid()
		return badCase{body: gz(append(b, bytes.Repeat([]byte(" "), 16<<20)...)), headers: []string{"Content-Encoding: gzip"}}
	}())
	request("Content-Encoding: gzip on a JSON body that is not compressed (read as sent)", want200, func() badCase {
		_, b := valid()
		return badCase{body: b, headers: []string{"Content-Encoding: gzip"}}
	}())

	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		request("method "+m, want405, badCase{method: m})
	}
	request("a query string on the webhook URL (?source=ralio)", want200, badCase{path: "/webhooks/ralio?source=ralio"})

	request("a body of 1 MiB + 1 byte (Content-Length)", want413, badCase{body: bytes.Repeat([]byte("x"), 1<<20+1)})
	request("a body of 1 MiB + 1 byte, chunked", want413, badCase{body: bytes.Repeat([]byte("x"), 1<<20+1), chunked: true})
	request("Content-Length: 10 GiB declared, nothing sent", want413, badCase{body: []byte{}, length: strconv.Itoa(10 << 30)})
	request("an unsigned body of 2 MiB (size is checked before the signature)", want413, badCase{noSig: true, body: bytes.Repeat([]byte("x"), 2<<20)})
	request("a valid event padded to exactly 1 MiB", want200, func() badCase {
		id, b := newFailedEvent(1 << 20)
		return badCase{body: b, eventID: id}
	}())
	request("a valid event, chunked", want200, func() badCase {
		id, b := valid()
		return badCase{body: b, eventID: id, chunked: true}
	}())
	request("a body shorter than its Content-Length, then the client stops sending", want503, func() badCase {
		_, b := valid()
		return badCase{body: b, length: strconv.Itoa(len(b) + 100), short: true}
	}())
	request("an empty body with Content-Length: 0, signed", want400Kept, badCase{body: []byte{}})
	request("Expect: 100-continue", want200, badCase{headers: []string{"Expect: 100-continue"}})
	request("HTTP/1.0", want200, func() badCase {
		id, b := valid()
		return badCase{eventID: id, body: b, raw: fmt.Appendf(nil, "POST /webhooks/ralio HTTP/1.0\r\nContent-Type: application/json\r\nX-Signature: %s\r\nContent-Length: %d\r\n\r\n%s",
			ralio.Sign(b, testSecret), len(b), b)}
	}())
	rawReq := func(header string) []byte {
		return []byte("POST /webhooks/ralio HTTP/1.1\r\nHost: kycd\r\n" + header + "\r\n{}")
	}
	request("Content-Length: abc", want400NetHTTP, badCase{raw: rawReq("Content-Length: abc\r\n")})
	request("two different Content-Length headers", want400NetHTTP, badCase{raw: rawReq("Content-Length: 2\r\nContent-Length: 3\r\n")})
	request("Content-Length: -1", want400NetHTTP, badCase{raw: rawReq("Content-Length: -1\r\n")})
	request("Content-Length and Transfer-Encoding: chunked both (chunked wins, RFC 9112)", want200, func() badCase {
		id, b := valid()
		return badCase{eventID: id, body: b, chunked: true, headers: []string{"Content-Length: 2"}}
	}())
	request("Transfer-Encoding: gzip (not chunked)", want501NetHTTP, badCase{raw: rawReq("Transfer-Encoding: gzip\r\n")})
	request("a header line without a colon", want400NetHTTP, badCase{raw: rawReq("X-Signature\r\nContent-Length: 2\r\n")})
	request("a request line that is not HTTP", want400NetHTTP, badCase{raw: []byte("HELLO kycd\r\n\r\n")})
	request("64 KiB of headers", want431NetHTTP, badCase{headers: []string{"X-Padding: " + strings.Repeat("p", 64<<10)}})
	return kinds
}

// snakeName is the snake_case twin of a camelCase name.
func snakeName(camel string) string {
	var b strings.Builder
	for _, r := range camel {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// requestBytes is c as bytes on the wire.
func (c badCase) requestBytes(host string) []byte {
	if c.raw != nil {
		return c.raw
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", cmpOr(c.method, http.MethodPost), cmpOr(c.path, "/webhooks/ralio"), host)
	if c.ctype != "-" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", cmpOr(c.ctype, "application/json"))
	}
	sig := ralio.Sign(c.body, testSecret)
	if c.sig != nil {
		sig = c.sig(c.body)
	}
	if !c.noSig {
		fmt.Fprintf(&b, "X-Signature: %s\r\n", sig)
	}
	for _, h := range c.headers {
		fmt.Fprintf(&b, "%s\r\n", strings.ReplaceAll(h, "@SIG@", ralio.Sign(c.body, testSecret)))
	}
	switch {
	case c.chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := c.body; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		b.WriteString("0\r\n\r\n")
		return b.Bytes()
	case c.length != "":
		fmt.Fprintf(&b, "Content-Length: %s\r\n\r\n", c.length)
	default:
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(c.body))
	}
	b.Write(c.body)
	return b.Bytes()
}

// send sends c on a connection of its own and returns the answer as the
// corpus writes it ("200 duplicate", "400", "431 from net/http", …), or
// what went wrong.
func (c badCase) send(addr string) string {
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	// kycd may answer before it reads the whole body (413): write and
	// read at once.
	go func() {
		conn.Write(c.requestBytes(addr))
		if c.short {
			conn.(*net.TCPConn).CloseWrite()
		}
	}()
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, &http.Request{Method: cmpOr(c.method, http.MethodPost)})
	for err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(r, &http.Request{Method: cmpOr(c.method, http.MethodPost)})
	}
	if err != nil {
		return "no answer: " + err.Error()
	}
	defer resp.Body.Close()
	var answer struct {
		Received  bool `json:"received"`
		Duplicate bool `json:"duplicate"`
	}
	body := new(bytes.Buffer)
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return "read the answer: " + err.Error()
	}
	out := strconv.Itoa(resp.StatusCode)
	ct := resp.Header.Get("Content-Type")
	switch {
	case resp.StatusCode == http.StatusOK:
		if json.Unmarshal(body.Bytes(), &answer) != nil || !answer.Received {
			return out + " " + body.String()
		}
		if answer.Duplicate {
			out += " duplicate"
		}
	case resp.StatusCode >= 400 && c.method != http.MethodHead && ct != "application/problem+json":
		out += " from net/http"
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "":
		out += " without Retry-After"
	case resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost:
		out += " without Allow: POST"
	}
	return out
}

// quarantineKey identifies a quarantine entry by its bodies.
func quarantineKey(body, original []byte) string {
	return string(body) + "\x00\x00" + string(original)
}

// quarantineLister is what the corpus reads of a store.
type quarantineLister interface {
	Quarantine(ctx context.Context, all bool, limit int) ([]*kycd.Quarantined, error)
	Close() error
}

// corpusRun is what one store answered to the corpus: per kind, per case.
type corpusRun struct {
	store    string
	observed [][]string
	acked    []int
	found    []int
	skipped  string
}

// runCorpus sends every case to s and checks the quarantine and the
// stored events behind the answers.
func runCorpus(t *testing.T, s *kycdServer, open func() (quarantineLister, error), kinds []badKind) *corpusRun {
	run := &corpusRun{observed: make([][]string, len(kinds)), acked: make([]int, len(kinds)), found: make([]int, len(kinds))}
	for i, k := range kinds {
		run.observed[i] = make([]string, len(k.cases))
	}
	type job struct{ k, c int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for j := range jobs {
				c := kinds[j.k].cases[j.c]
				for _, b := range c.before {
					if a := (badCase{body: b}).send(s.Addr); a != want200 {
						t.Errorf("%s: the first delivery answered %s, want 200", kinds[j.k].name, a)
					}
				}
				run.observed[j.k][j.c] = c.send(s.Addr)
			}
		})
	}
	for k := range kinds {
		for c := range kinds[k].cases {
			jobs <- job{k, c}
		}
	}
	close(jobs)
	wg.Wait()

	// Every 400 and 409 left its bodies in the quarantine; nothing else
	// left anything there.
	st, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Bodies refused for their signature enter the hold off the request:
	// wait for as many as the corpus expects (or give up and report).
	wantHeld := 0
	for _, k := range kinds {
		for _, c := range k.cases {
			if c.want == want401Held {
				wantHeld++
			}
		}
	}
	var items []*kycd.Quarantined
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if items, err = st.Quarantine(t.Context(), true, 1_000_000); err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, q := range items {
			if q.Reason == kycd.QuarantineSignature {
				held++
			}
		}
		if held >= wantHeld || time.Now().After(deadline) {
			break
		}
	}
	kept, held := map[string]int{}, map[string]int{}
	for _, q := range items {
		if q.Reason == kycd.QuarantineSignature {
			held[quarantineKey(q.Body, q.OriginalBody)]++
		} else {
			kept[quarantineKey(q.Body, q.OriginalBody)]++
		}
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i, k := range kinds {
		for j, c := range k.cases {
			obs := &run.observed[i][j]
			var key string
			switch *obs {
			case "400", "401":
				key = quarantineKey(c.body, nil)
			case "409":
				key = quarantineKey(c.body, c.before[0])
			case want200, want200Dup:
				run.acked[i]++
				// The corpus reuses the examples' sessions and timestamps:
				// an event may be stale, or of a type kycd does not act on.
				if ok, why := eventStored(client, s.URL, s.Token, eventIDOf(c), kycd.OutcomeApplied, kycd.OutcomeStale, kycd.OutcomeUnhandled); ok {
					run.found[i]++
				} else {
					*obs += ", NOT FOUND: " + why
				}
				continue
			default:
				continue
			}
			switch {
			case *obs == "401":
				// Held only when its signature is one a secret could make.
				if held[key] > 0 {
					held[key]--
					*obs += ", held"
				}
			case kept[key] > 0:
				kept[key]--
				*obs += map[string]string{"400": ", kept", "409": ", both kept"}[*obs]
			default:
				*obs += ", NOT KEPT"
			}
		}
	}
	for key, n := range held {
		if n > 0 {
			body, _, _ := strings.Cut(key, "\x00\x00")
			t.Errorf("%d bodies held without a 401 for them, e.g. a body of %d bytes: %.80q", n, len(body), body)
		}
	}
	for key, n := range kept {
		if n > 0 {
			body, _, _ := strings.Cut(key, "\x00\x00")
			t.Errorf("%d quarantine entries kept without a 400 or 409 for them, e.g. a body of %d bytes: %.80q", n, len(body), body)
		}
	}
	for i, k := range kinds {
		for j, c := range k.cases {
			if run.observed[i][j] != c.want {
				t.Errorf("%s (case %d): answered %q, want %q", k.name, j+1, run.observed[i][j], c.want)
			}
		}
	}
	return run
}

// eventIDOf is the id of the event a 200 stored.
func eventIDOf(c badCase) string {
	if c.eventID != "" {
		return c.eventID
	}
	body := c.body
	if c.before != nil {
		body = c.before[0]
	}
	ev, _ := ralio.Parse(body)
	return ev.ID
}

// badInputScenario sends the corpus to kycd on SQLite and on PostgreSQL.
func badInputScenario(t *testing.T, _ string, rows *scenarioRows) {
	kinds := badInputKinds(t)
	runs := []*corpusRun{{store: "SQLite"}, {store: "PostgreSQL"}}
	t.Run("stores", func(t *testing.T) {
		for i, r := range runs {
			t.Run(r.store, func(t *testing.T) {
				t.Parallel()
				var s *kycdServer
				var open func() (quarantineLister, error)
				if r.store == "SQLite" {
					s = startServer(t)
					open = func() (quarantineLister, error) { return sqlite.Open(t.Context(), s.DB) }
				} else {
					if os.Getenv("KYCD_TEST_POSTGRES") == "" && os.Getenv("KYCD_TEST_REQUIRE_SERVICES") != "1" {
						r.skipped = "KYCD_TEST_POSTGRES not set"
						rows.report.skip("bad input on PostgreSQL", r.skipped)
						t.Skip(r.skipped)
					}
					db := postgrestest.URL(t)
					s = serve(t, nil, "--addr", "127.0.0.1:0", "--database", db, "--ralio-secret", testSecret, "--admin-token", testToken)
					s.Secret, s.Token = testSecret, testToken
					open = func() (quarantineLister, error) { return postgres.Open(t.Context(), db) }
				}
				got := runCorpus(t, s, open, kinds)
				got.store = r.store
				runs[i] = got
			})
		}
	})
	cases := 0
	for i, k := range kinds {
		cases += len(k.cases)
		expect := k.expect
		if expect == "" {
			var wants []string
			for _, c := range k.cases {
				if !slices.Contains(wants, c.want) {
					wants = append(wants, c.want)
				}
			}
			for j, w := range wants {
				wants[j] = wantText[w]
			}
			expect = strings.Join(wants, "; or ")
		}
		var per []string
		for _, r := range runs {
			if r.observed == nil {
				per = append(per, r.store+": not run ("+cmpOr(r.skipped, "failed")+")")
				continue
			}
			counts := map[string]int{}
			for _, o := range r.observed[i] {
				counts[o]++
			}
			per = append(per, r.store+": "+countSummary(counts))
		}
		observed := strings.Join(per, "; ")
		if len(runs) == 2 && runs[0].observed != nil && runs[1].observed != nil &&
			slices.Equal(runs[0].observed[i], runs[1].observed[i]) {
			counts := map[string]int{}
			for _, o := range runs[0].observed[i] {
				counts[o]++
			}
			observed = "both stores: " + countSummary(counts)
		}
		row := faultRow{Fault: k.name, Expected: expect, Observed: observed}
		for _, r := range runs {
			if r.observed != nil {
				row.Acked += r.acked[i]
				row.Found += r.found[i]
			}
		}
		row.Counted = row.Acked > 0
		rows.add(t, row)
	}
	t.Logf("%d kinds of bad input, %d requests per store", len(kinds), cases)
}
