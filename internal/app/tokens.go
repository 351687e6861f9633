package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"github.com/kycd/kycd"
)

// NewTokenSecret returns a new API token: 256 random bits, URL-safe.
func NewTokenSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreatedToken is a new token, shown this once: kycd keeps its hash only.
type CreatedToken struct {
	kycd.Token
	Secret string `json:"token"`
}

// CreateToken makes a token named name of role role, and records that a
// did it (kycd.AuditTokenCreate on token:<name>, detail "role <role>") in
// the same transaction, or that a tried. EINVALID for a name that
// kycd.CheckTokenName refuses or a role that is none of kycd's; ECONFLICT
// when a token of that name exists.
func (s *Service) CreateToken(ctx context.Context, a Actor, name, role string) (*CreatedToken, error) {
	secret := NewTokenSecret()
	t := &CreatedToken{Token: kycd.Token{Name: name, Role: kycd.Role(role), Hash: kycd.TokenHash(secret), CreatedAt: s.now()}, Secret: secret}
	err := s.Audited(ctx, a, kycd.AuditTokenCreate, kycd.AuditTarget("token", name), func(tx kycd.Tx) (string, error) {
		if err := kycd.CheckTokenName(name); err != nil {
			return "", err
		}
		r, err := kycd.ParseRole(role)
		if err != nil {
			return "", err
		}
		t.Role = r
		return "role " + role, tx.CreateToken(ctx, &t.Token)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// AddToken records t as it is, with no audit entry: how kycd serve makes
// the admin token on its first start, before anyone acts. ECONFLICT when
// a token of that name exists.
func (s *Service) AddToken(ctx context.Context, t *kycd.Token) error {
	return s.inTx(ctx, func(tx kycd.Tx) error { return tx.CreateToken(ctx, t) })
}

// Tokens lists the tokens by name (their hashes never leave kycd: Token's
// JSON has none). Who may list them is the front end's to decide (admin
// only in the API).
func (s *Service) Tokens(ctx context.Context) ([]*kycd.Token, error) {
	tokens, err := s.Store.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	return nonNil(tokens), nil
}

// RevokeToken deletes the token name, so it works no more, and records
// that a did it (kycd.AuditTokenRevoke on token:<name>) in the same
// transaction, or that a tried. ENOTFOUND for an unknown name.
func (s *Service) RevokeToken(ctx context.Context, a Actor, name string) error {
	return s.Audited(ctx, a, kycd.AuditTokenRevoke, kycd.AuditTarget("token", name), func(tx kycd.Tx) (string, error) {
		return "", tx.RevokeToken(ctx, name)
	})
}
