package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// CreateToken records a new token in the transaction unless its name is
// taken.
func (t *tx) CreateToken(ctx context.Context, tok *kycd.Token) error {
	s := t.s
	r, err := t.tx.ExecContext(ctx, `INSERT INTO tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		tok.Name, string(tok.Role), tok.Hash, formatTime(tok.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create token: %w", translate(s, err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return kycd.Errorf(kycd.ECONFLICT, "a token named %s exists already", tok.Name)
	}
	return nil
}

// PutToken creates the token t.Name or replaces its role and hash.
func (s *Store) PutToken(ctx context.Context, t *kycd.Token) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET role = excluded.role, hash = excluded.hash`,
		t.Name, string(t.Role), t.Hash, formatTime(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: put token: %w", translate(s, err))
	}
	return nil
}

const tokenColumns = `name, role, hash, created_at, last_used_at` //nolint:gosec // G101: column names, not a credential

func scanToken(row interface{ Scan(...any) error }) (*kycd.Token, error) {
	var t kycd.Token
	var created string
	var used sql.NullString
	if err := row.Scan(&t.Name, &t.Role, &t.Hash, &created, &used); err != nil {
		return nil, err
	}
	var err error
	if t.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	t.LastUsedAt, err = parseNullTime(used)
	return &t, err
}

// Tokens lists the tokens by name.
func (s *Store) Tokens(ctx context.Context) ([]*kycd.Token, error) {
	out := []*kycd.Token{}
	err := queryRows(ctx, s.r, `SELECT `+tokenColumns+` FROM tokens ORDER BY name`, nil, func(rows *sql.Rows) error {
		t, err := scanToken(rows)
		if err == nil {
			out = append(out, t)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: tokens: %w", translate(s, err))
	}
	return out, nil
}

// TokenByHash returns the token of a hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*kycd.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if err != nil {
		return nil, fmt.Errorf("sqlite: token: %w", s.notFound(err, "no such token"))
	}
	return t, nil
}

// RevokeToken deletes a token in the transaction.
func (t *tx) RevokeToken(ctx context.Context, name string) error {
	s := t.s
	r, err := t.tx.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("sqlite: revoke token: %w", translate(s, err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return kycd.Errorf(kycd.ENOTFOUND, "no token named %s", name)
	}
	return nil
}

// TouchToken keeps the latest time a token was used.
func (s *Store) TouchToken(ctx context.Context, name string, at time.Time) error {
	ts := formatTime(at)
	if _, err := s.w.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE name = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		ts, name, ts); err != nil {
		return fmt.Errorf("sqlite: touch token: %w", translate(s, err))
	}
	return nil
}
