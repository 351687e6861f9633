package kycd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// hashScheme prefixes the body hashes of BodyHash. Hashes without it were
// stored by kycd before it canonicalised bodies (whitespace removed only);
// SameBody still compares them the old way.
const hashScheme = "jcs:"

// BodyHash identifies a body's content: the SHA-256 of its canonical JSON
// (RFC 8785: key order, whitespace, number and escape spelling do not
// matter), so a retry that Ralio re-serialised is a duplicate, not a
// conflict. A body that is not JSON is hashed as it is.
func BodyHash(body []byte) string {
	// jsontext (the decoder's tokenizer too) canonicalises in one pass and
	// one allocation, about a third of what a tree-building JCS library
	// costs on the webhook's hot path.
	canonical := jsontext.Value(bytes.Clone(body))
	if err := canonical.Canonicalize(); err != nil {
		canonical = jsontext.Value(body)
	}
	sum := sha256.Sum256(canonical)
	return hashScheme + hex.EncodeToString(sum[:])
}

// SameBody reports whether a body with hash (from BodyHash) is the one
// stored under stored, which may be a hash of the older scheme.
func SameBody(stored, hash string, body []byte) bool {
	if stored == hash {
		return true
	}
	return !strings.HasPrefix(stored, hashScheme) && body != nil && stored == compactHash(body)
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
