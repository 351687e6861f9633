package kycd

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"time"
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

// Role is what an API token may do. Each role may do what the roles below
// it may.
type Role string

// Roles, from least to most.
const (
	// RoleViewer reads sessions, subjects, events without their raw
	// bodies, stats, deliveries without invitation contact data,
	// reconciliations and stalled sessions.
	RoleViewer Role = "viewer"
	// RoleOperator also retries, replays, resends, moves and drops
	// deliveries, and resumes sinks.
	RoleOperator Role = "operator"
	// RoleAdmin also reads raw bodies and personal data, exports and
	// erases subjects, manages tokens and reads the audit log.
	RoleAdmin Role = "admin"
)

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Allows reports whether a token of role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// ParseRole reads a role's name; anything else is EINVALID.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.rank() > 0 {
		return r, nil
	}
	return "", Errorf(EINVALID, "role %q: want admin, operator or viewer", s)
}

// AdminTokenName names the admin token that kycd serve generates on its
// first start, or that --admin-token sets.
const AdminTokenName = "admin"

// Token is a named API token as kycd keeps it: its hash, never the token.
type Token struct {
	Name       string    `json:"name"`
	Role       Role      `json:"role"`
	Hash       string    `json:"-"` // TokenHash of the token
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
}

// CheckTokenName says whether name may name a token: 1 to 64 lower-case
// letters, digits, '.', '_' or '-', beginning with a letter or a digit. A
// name is the actor of the token's actions in the audit trail, so it can
// never be taken for the CLI's cli:USER.
func CheckTokenName(name string) error {
	if !validName(name, 64) {
		return Errorf(EINVALID, "token name %q: want 1 to 64 lower-case letters, digits, '.', '_' or '-', beginning with a letter or a digit", name)
	}
	return nil
}

// TokenTouchInterval is the least time between two writes of a token's
// LastUsedAt: using a token costs no write per request.
const TokenTouchInterval = time.Minute
