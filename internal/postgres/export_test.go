package postgres

import (
	"context"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// MigrateUpTo and MigrateDownTo move the schema to a version, for tests of
// the migrations themselves.
func (s *Store) MigrateUpTo(ctx context.Context, version int64) error {
	return s.migrate(ctx, func(ctx context.Context, p *goose.Provider) error {
		_, err := p.UpTo(ctx, version)
		return err
	})
}

func (s *Store) MigrateDownTo(ctx context.Context, version int64) error {
	return s.migrate(ctx, func(ctx context.Context, p *goose.Provider) error {
		_, err := p.DownTo(ctx, version)
		return err
	})
}

// MigrateAlone migrates as Migrate does but without goose's advisory lock,
// for the conformance suite: its schemas are one per case and migrate
// nothing in common, and the lock (one for the whole server, polled every
// second) would make the cases of every test process on the server take
// turns. TestConcurrentMigrations tests Migrate with the lock.
func (s *Store) MigrateAlone(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}
