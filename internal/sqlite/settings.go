package sqlite

import (
	"context"
	"fmt"

	"github.com/kycd/kycd"
)

// Settings are the values kycd keeps between runs (what it knows of the
// Ralio and sink secrets it was started with), one value per key.

// Setting returns a stored setting.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("sqlite: setting: %w", s.notFound(err, "setting %s not found", key))
	}
	return v, nil
}

// InitSetting stores value under key unless it has one already.
func (s *Store) InitSetting(ctx context.Context, key, value string) (string, bool, error) {
	r, err := s.w.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, value)
	if err != nil {
		return "", false, fmt.Errorf("sqlite: init setting: %w", translate(s, err))
	}
	if n, _ := r.RowsAffected(); n == 1 {
		return value, true, nil
	}
	var v string
	if err := s.w.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v); err != nil {
		return "", false, fmt.Errorf("sqlite: init setting: %w", translate(s, err))
	}
	return v, false, nil
}

// SwapSetting replaces a setting's value if it is still old.
func (s *Store) SwapSetting(ctx context.Context, key, old, value string) error {
	r, err := s.w.ExecContext(ctx, `UPDATE settings SET value = ? WHERE key = ? AND value = ?`, value, key, old)
	if err != nil {
		return fmt.Errorf("sqlite: swap setting: %w", translate(s, err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return kycd.Errorf(kycd.ECONFLICT, "setting %s changed meanwhile", key)
	}
	return nil
}
