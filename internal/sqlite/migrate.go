package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/schemastatus"
)

// Migrate brings both files' schemas up to date, then finishes moving a
// database of the first schema to the second (moveV1Bodies). Two processes
// starting at once on one store both try; the loser's migration fails on
// the winner's tables and rolls back, so it looks again once and finds
// nothing left to do.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.migrate(ctx, s.lw, logMigrations, "logmigrations"); err != nil {
		return fmt.Errorf("sqlite: migrate log: %w", err)
	}
	if err := s.migrate(ctx, s.w, migrations, "migrations"); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if err := s.moveV1Bodies(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: move event bodies to the log: %w", translate(s, err))
	}
	return nil
}

// MigrateTo moves the main file's schema to version, down or up, and
// says which migrations it ran. The event log file has a schema of its
// own, which only grows (its one migration creates the log): it is
// brought up to date and never rolled back.
func (s *Store) MigrateTo(ctx context.Context, version int64) ([]kycd.Migrated, error) {
	if err := s.migrate(ctx, s.lw, logMigrations, "logmigrations"); err != nil {
		return nil, fmt.Errorf("sqlite: migrate log: %w", err)
	}
	p, err := provider(s.w, migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrate: %w", err)
	}
	done, err := schemastatus.To(ctx, p, version)
	if err != nil {
		return done, fmt.Errorf("sqlite: migrate to %d: %w", version, translate(s, err))
	}
	if version >= 2 {
		if err := s.moveV1Bodies(ctx); err != nil {
			return done, fmt.Errorf("sqlite: migrate: move event bodies to the log: %w", translate(s, err))
		}
	}
	return done, nil
}

// provider is goose's provider of dir's migrations on db.
func provider(db *sql.DB, fsys fs.FS, dir string) (*goose.Provider, error) {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, err
	}
	// Out of order: migrations were numbered as work began, and a database
	// migrated by a build that had 00004 and 00005 but not yet 00003 takes
	// 00003 late rather than refusing to start.
	return goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true))
}

func (s *Store) migrate(ctx context.Context, db *sql.DB, fsys fs.FS, dir string) error {
	p, err := provider(db, fsys, dir)
	if err != nil {
		return err
	}
	if _, err = p.Up(ctx); err != nil {
		if _, err = p.Up(ctx); err != nil {
			return translate(s, err)
		}
	}
	return nil
}

// moveChunk bounds the rows and bytes that moveV1Bodies copies in one
// transaction of the log file.
const (
	moveChunk      = 500
	moveChunkBytes = 16 << 20
)

// moveV1Bodies copies the events of a database of the first schema, which
// migration 00002 left in events_v1, into the log file (seq = their old
// rowid, which 00002 also gave their events rows and the watermark), then
// drops events_v1. Copies use INSERT OR IGNORE and the table goes only once
// every row is in the log, so an interrupted move (or two processes moving
// at once) just starts again; nothing appends to the log before Migrate has
// returned.
func (s *Store) moveV1Bodies(ctx context.Context) error {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events_v1'`).Scan(&n); err != nil || n == 0 {
		return err
	}
	// Chunks commit in seq order: what the log holds is a prefix of the copy.
	after, err := s.LogHead(ctx)
	if err != nil {
		return err
	}
	type row struct {
		seq                      int64
		id, receivedAt, bodyHash string
		body                     []byte
	}
	for {
		var rows []row
		size := 0
		err := queryRows(ctx, s.r, `SELECT rowid, id, received_at, body, body_hash FROM events_v1 WHERE rowid > ? ORDER BY rowid LIMIT ?`,
			[]any{after, moveChunk}, func(r *sql.Rows) error {
				if size > moveChunkBytes {
					return nil
				}
				var e row
				if err := r.Scan(&e.seq, &e.id, &e.receivedAt, &e.body, &e.bodyHash); err != nil {
					return err
				}
				rows = append(rows, e)
				size += len(e.body)
				return nil
			})
		if err != nil {
			// Another process finished the move and dropped the table.
			var still int
			if qerr := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events_v1'`).Scan(&still); qerr == nil && still == 0 {
				return nil
			}
			return err
		}
		if len(rows) == 0 {
			break
		}
		tx, err := s.lw.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, e := range rows {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO event_log (seq, event_id, received_at, body, body_hash) VALUES (?, ?, ?, ?, ?)`,
				e.seq, e.id, e.receivedAt, e.body, e.bodyHash); err != nil {
				return errors.Join(err, tx.Rollback())
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		after = rows[len(rows)-1].seq
	}
	_, err = s.w.ExecContext(ctx, `DROP TABLE IF EXISTS events_v1`)
	return err
}

// Schema says how both files' schemas stand against the migrations
// compiled in, through the read-only connections: it changes nothing, not
// even goose's version table of a file never migrated.
func (s *Store) Schema(ctx context.Context) (kycd.Schema, error) {
	var out kycd.Schema
	for _, set := range []struct {
		db   *sql.DB
		fsys fs.FS
		dir  string
	}{{s.lr, logMigrations, "logmigrations"}, {s.r, migrations, "migrations"}} {
		sc, err := schema(ctx, set.db, set.fsys, set.dir)
		if err != nil {
			return kycd.Schema{}, fmt.Errorf("sqlite: schema: %w", translate(s, err))
		}
		// The main file's versions are the ones a person compares, unless
		// only the log file is newer than this build.
		if !out.Newer || sc.Newer {
			out.Version, out.Latest, out.Versions = sc.Version, sc.Latest, sc.Versions
		}
		out.Pending += sc.Pending
		out.Newer = out.Newer || sc.Newer
	}
	return out, nil
}

// schema compares one file's applied migrations with those of dir.
func schema(ctx context.Context, db *sql.DB, fsys fs.FS, dir string) (kycd.Schema, error) {
	p, err := provider(db, fsys, dir)
	if err != nil {
		return kycd.Schema{}, err
	}
	// goose would create its table on a file never migrated.
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, goose.DefaultTablename).Scan(&n); err != nil {
		return kycd.Schema{}, err
	}
	return schemastatus.Read(ctx, p, n > 0)
}
