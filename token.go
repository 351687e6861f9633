package kycd

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// tokenHashPrefix marks a stored token hash, telling it from a token kept
// in plain text by an older kycd.
const tokenHashPrefix = "sha256:"

// TokenHash is what kycd keeps of an API token: its SHA-256, enough for a
// token of 256 random bits, so a copy of the database is no copy of the
// key.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return tokenHashPrefix + hex.EncodeToString(sum[:])
}

// IsTokenHash reports whether a stored value is a TokenHash rather than a
// token in plain text.
func IsTokenHash(v string) bool {
	return strings.HasPrefix(v, tokenHashPrefix) && len(v) == len(tokenHashPrefix)+2*sha256.Size
}

// TokenMatches reports, in constant time, whether token hashes to hash.
func TokenMatches(hash, token string) bool {
	return subtle.ConstantTimeCompare([]byte(TokenHash(token)), []byte(hash)) == 1
}
