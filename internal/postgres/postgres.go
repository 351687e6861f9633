// Package postgres is kycd's store for several replicas: PostgreSQL through
// pgx, with migrations compiled into the binary and guarded by an advisory
// lock. The event log lives in the same database; projection and outbox
// claims skip rows another replica holds.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/schemastatus"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a kycd.Store on PostgreSQL. Every method is one statement or one
// transaction; replicas share the database safely.
type Store struct {
	pool   *pgxpool.Pool
	closed atomic.Bool
}

var _ kycd.Store = (*Store)(nil)

// Open connects to the database at url (postgres://…). Runtime parameters
// such as search_path may be given in the URL. Call Migrate before use.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, kycd.Errorf(kycd.EINVALID, "postgres: %s", strings.ReplaceAll(err.Error(), url, "…"))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Migrate brings the schema up to date; an advisory lock makes replicas
// starting together take turns.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrate(ctx, func(ctx context.Context, p *goose.Provider) error {
		_, err := p.Up(ctx)
		return err
	})
}

// MigrateTo moves the schema to version, down or up, under the same
// lock as Migrate, and says which migrations it ran.
func (s *Store) MigrateTo(ctx context.Context, version int64) (done []kycd.Migrated, err error) {
	err = s.migrate(ctx, func(ctx context.Context, p *goose.Provider) error {
		done, err = schemastatus.To(ctx, p, version)
		return err
	})
	return done, err
}

// migrate runs fn on a goose provider of the embedded migrations.
func (s *Store) migrate(ctx context.Context, fn func(ctx context.Context, p *goose.Provider) error) (err error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	// A replica waiting for another's migrations polls every second (goose
	// polls every five), for up to five minutes as goose does.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer func() { err = errors.Join(err, db.Close()) }()
	// Out of order: migrations were numbered as work began, and a database
	// migrated by a build that had 00004 and 00005 but not yet 00003 takes
	// 00003 late rather than refusing to start.
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker),
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if err := fn(ctx, p); err != nil {
		return fmt.Errorf("postgres: migrate: %w", translate(s, err))
	}
	return nil
}

// Schema says how the schema stands against the migrations compiled in.
// It changes nothing, not even goose's version table of a database never
// migrated, and takes no lock: replicas migrating meanwhile do not hold it
// up.
func (s *Store) Schema(ctx context.Context) (_ kycd.Schema, err error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return kycd.Schema{}, fmt.Errorf("postgres: schema: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer func() { err = errors.Join(err, db.Close()) }()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true))
	if err != nil {
		return kycd.Schema{}, fmt.Errorf("postgres: schema: %w", err)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, goose.DefaultTablename).Scan(&exists); err != nil {
		return kycd.Schema{}, fmt.Errorf("postgres: schema: %w", translate(s, err))
	}
	out, err := schemastatus.Read(ctx, p, exists)
	if err != nil {
		return kycd.Schema{}, fmt.Errorf("postgres: schema: %w", translate(s, err))
	}
	return out, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", translate(s, err))
	}
	return nil
}

// Close closes the pool; later calls fail with EUNAVAILABLE.
func (s *Store) Close() error {
	if !s.closed.Swap(true) {
		s.pool.Close()
	}
	return nil
}

// translate turns driver errors into kycd error codes by SQLSTATE class:
// what may pass (connections, resources, serialization, shutdown) is
// EUNAVAILABLE, so the webhook answers 503 and Ralio retries.
func translate(s *Store, err error) error {
	if err == nil {
		return nil
	}
	var ke *kycd.Error
	if errors.As(err, &ke) {
		return err
	}
	if s.closed.Load() || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "store unavailable", Err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources
			strings.HasPrefix(pe.Code, "57"),       // operator intervention (shutdown)
			pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "store unavailable", Err: err}
		}
		return err
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "store unavailable", Err: err}
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "store unavailable", Err: err}
	}
	return err
}

func (s *Store) notFound(err error, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return kycd.Errorf(kycd.ENOTFOUND, format, args...)
	}
	return translate(s, err)
}

// unavailable translates err and marks it kycd.Unrecorded.
func unavailable(s *Store, err error) error { return kycd.Unrecorded(translate(s, err)) }

// nullString maps "" to NULL.
func nullString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// derefTime reads NULL as the zero time, and a time in UTC.
func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
