package postgres

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
	if err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("postgres: setting: %w", s.notFound(err, "setting %s not found", key))
	}
	return v, nil
}

// InitSetting stores value under key unless it has one already; of
// replicas starting together, one value wins and all see it.
func (s *Store) InitSetting(ctx context.Context, key, value string) (string, bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, value)
	if err != nil {
		return "", false, fmt.Errorf("postgres: init setting: %w", translate(s, err))
	}
	if tag.RowsAffected() == 1 {
		return value, true, nil
	}
	v, err := s.Setting(ctx, key)
	return v, false, err
}

// SwapSetting replaces a setting's value if it is still old.
func (s *Store) SwapSetting(ctx context.Context, key, old, value string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE settings SET value = $1 WHERE key = $2 AND value = $3`, value, key, old)
	if err != nil {
		return fmt.Errorf("postgres: swap setting: %w", translate(s, err))
	}
	if tag.RowsAffected() == 0 {
		return kycd.Errorf(kycd.ECONFLICT, "setting %s changed meanwhile", key)
	}
	return nil
}
