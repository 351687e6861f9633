package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

var _ kycd.Serving = (*Store)(nil)

// The serving lock is a session advisory lock on a connection of its own,
// open for as long as the lock is held: serve holds it shared, kycd
// rebuild exclusive. Closing the connection releases it, and PostgreSQL
// drops it when the connection ends, so a serve that dies lets go of it
// too. Its second key is the OID of the settings table, one lock per
// schema (see lockProjection).
const (
	trySharedServing    = `SELECT pg_try_advisory_lock_shared($1, 'settings'::regclass::oid::int)`
	tryExclusiveServing = `SELECT pg_try_advisory_lock($1, 'settings'::regclass::oid::int)`
	// Both unlock queries run on release: the one that does not match the
	// lock held is a no-op (it answers false, with a notice).
	unlockServing = `SELECT pg_advisory_unlock_shared($1, 'settings'::regclass::oid::int),
		pg_advisory_unlock($1, 'settings'::regclass::oid::int)`
)

// servingLockClass is the first key of the serving lock ("kysv").
const servingLockClass int32 = 0x6b797376

// HoldServing takes the serving lock shared.
func (s *Store) HoldServing(ctx context.Context) (func() error, error) {
	return s.lockServing(ctx, trySharedServing)
}

// ExcludeServing takes the serving lock exclusive.
func (s *Store) ExcludeServing(ctx context.Context) (func() error, error) {
	return s.lockServing(ctx, tryExclusiveServing)
}

func (s *Store) lockServing(ctx context.Context, query string) (func() error, error) {
	// A connection of its own, not the pool's: serve keeps it for its
	// lifetime, and the pool keeps all of its connections for the work.
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: serving lock: %w", err)
	}
	// The lock is let go before the connection closes: a closed connection's
	// backend drops its locks only once it has ended, a moment after Close
	// returns, and a rebuild started right after a serve stopped would find
	// the lock still held.
	release := func() error {
		ctx := context.WithoutCancel(ctx)
		// An unlock that fails means the connection failed, and its lock
		// went with it.
		_, _ = conn.Exec(ctx, unlockServing, servingLockClass)
		return conn.Close(ctx)
	}
	var got bool
	if err := conn.QueryRow(ctx, query, servingLockClass).Scan(&got); err != nil {
		_ = release()
		return nil, fmt.Errorf("postgres: serving lock: %w", err)
	}
	if !got {
		_ = release()
		return nil, kycd.Errorf(kycd.ECONFLICT, "postgres: the serving lock is held by another session")
	}
	return release, nil
}
