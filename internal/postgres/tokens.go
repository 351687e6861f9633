package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// CreateToken records a new token in the transaction unless its name is
// taken.
func (t *tx) CreateToken(ctx context.Context, tok *kycd.Token) error {
	s := t.s
	tag, err := t.tx.Exec(ctx, `INSERT INTO tokens (name, role, hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`,
		tok.Name, string(tok.Role), tok.Hash, tok.CreatedAt)
	if err != nil {
		return fmt.Errorf("postgres: create token: %w", translate(s, err))
	}
	if tag.RowsAffected() == 0 {
		return kycd.Errorf(kycd.ECONFLICT, "a token named %s exists already", tok.Name)
	}
	return nil
}

// PutToken creates the token t.Name or replaces its role and hash.
func (s *Store) PutToken(ctx context.Context, t *kycd.Token) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tokens (name, role, hash, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET role = excluded.role, hash = excluded.hash`,
		t.Name, string(t.Role), t.Hash, t.CreatedAt)
	if err != nil {
		return fmt.Errorf("postgres: put token: %w", translate(s, err))
	}
	return nil
}

const tokenColumns = `name, role, hash, created_at, last_used_at` //nolint:gosec // G101: column names, not a credential

func scanToken(row pgx.Row) (*kycd.Token, error) {
	var t kycd.Token
	var used *time.Time
	if err := row.Scan(&t.Name, &t.Role, &t.Hash, &t.CreatedAt, &used); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsedAt = t.CreatedAt.UTC(), derefTime(used)
	return &t, nil
}

// Tokens lists the tokens by name.
func (s *Store) Tokens(ctx context.Context) ([]*kycd.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.Token, error) { return scanToken(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", translate(s, err))
	}
	if out == nil {
		out = []*kycd.Token{}
	}
	return out, nil
}

// TokenByHash returns the token of a hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*kycd.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if err != nil {
		return nil, fmt.Errorf("postgres: token: %w", s.notFound(err, "no such token"))
	}
	return t, nil
}

// RevokeToken deletes a token in the transaction.
func (t *tx) RevokeToken(ctx context.Context, name string) error {
	s := t.s
	tag, err := t.tx.Exec(ctx, `DELETE FROM tokens WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("postgres: revoke token: %w", translate(s, err))
	}
	if tag.RowsAffected() == 0 {
		return kycd.Errorf(kycd.ENOTFOUND, "no token named %s", name)
	}
	return nil
}

// TouchToken keeps the latest time a token was used.
func (s *Store) TouchToken(ctx context.Context, name string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE tokens SET last_used_at = $2 WHERE name = $1 AND (last_used_at IS NULL OR last_used_at < $2)`,
		name, at); err != nil {
		return fmt.Errorf("postgres: touch token: %w", translate(s, err))
	}
	return nil
}
