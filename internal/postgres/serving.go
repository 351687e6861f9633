package postgres

import (
	"context"
	"fmt"

	"github.com/kycd/kycd"
)

var _ kycd.Serving = (*Store)(nil)

// The serving lock is a session advisory lock, on a connection of its own
// taken out of the pool for as long as it is held: serve holds it shared,
// kycd rebuild exclusive. PostgreSQL drops it when the connection ends, so
// a serve that dies without closing lets go of it too. Its second key is
// the OID of the settings table, one lock per schema (see lockProjection).
const (
	trySharedServing    = `SELECT pg_try_advisory_lock_shared($1, 'settings'::regclass::oid::int)`
	tryExclusiveServing = `SELECT pg_try_advisory_lock($1, 'settings'::regclass::oid::int)`
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
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: serving lock: %w", err)
	}
	conn := pc.Hijack() // closing it is what releases the lock
	release := func() error { return conn.Close(context.WithoutCancel(ctx)) }
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
