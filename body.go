package kycd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
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
	canonical, err := jcs.Transform(body)
	if err != nil {
		canonical = body
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
