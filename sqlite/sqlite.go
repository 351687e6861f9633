// Package sqlite is kycd's embedded store: one SQLite file in WAL mode, with
// its migrations compiled into the binary.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kycd/kycd"
)

//go:embed migrations/*.sql
var migrations embed.FS

// timeFormat is fixed-width UTC, so stored times sort as strings.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// Store is a kycd.Store on one SQLite file. Writes go through a single
// connection, as SQLite allows one writer at a time anyway, so they queue in
// Go instead of spinning on SQLITE_BUSY; reads use a pool of their own and,
// thanks to WAL, never wait for a writer.
type Store struct {
	w      *sql.DB
	r      *sql.DB
	closed atomic.Bool

	ingests      chan *ingestReq
	quit         chan struct{}
	writerDone   chan struct{}
	observeBatch func(n int)
	stmts        map[string]*sql.Stmt // the writer goroutine's prepared ingest statements
}

// Option configures a Store.
type Option func(*Store)

// WithBatchObserver has f called with the size of every commit batch of
// ingests (for the kycd_commit_batch_size metric).
func WithBatchObserver(f func(n int)) Option {
	return func(s *Store) { s.observeBatch = f }
}

var _ kycd.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path. Call Migrate
// before using it.
func Open(path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, kycd.Errorf(kycd.EINVALID, "sqlite: empty database path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if _, err := os.Stat(dir); err != nil {
			return nil, kycd.Errorf(kycd.EINVALID, "sqlite: directory of database %q does not exist", path)
		}
	}
	// synchronous(FULL): a 200 promises the event survives a power cut, not
	// only a crash of the process.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)"
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{w: w, r: r, ingests: make(chan *ingestReq), quit: make(chan struct{}), writerDone: make(chan struct{}), stmts: map[string]*sql.Stmt{}}
	for _, o := range opts {
		o(s)
	}
	go s.writeLoop()
	if err := s.enableWAL(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Ping(context.Background()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// enableWAL switches the file to WAL mode, which then stays with the file.
// Switching takes an exclusive lock and SQLite answers SQLITE_BUSY at once,
// without waiting out busy_timeout, when another process (starting at the
// same moment) holds the file, so it is retried for a while.
func (s *Store) enableWAL() error {
	var err error
	for range 100 {
		var mode string
		if err = s.w.QueryRow(`PRAGMA journal_mode=WAL`).Scan(&mode); err == nil {
			if mode != "wal" {
				return fmt.Errorf("sqlite: journal mode is %q, not wal: the file system may not support WAL", mode)
			}
			return nil
		}
		var se *sqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("sqlite: enable WAL: %w", translate(s, err))
}

// Migrate brings the schema up to date. Two processes starting at once on one
// file both try; the loser's migration fails on the winner's tables, so it
// looks again once and finds nothing left to do.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err = p.Up(ctx); err != nil {
		if _, err = p.Up(ctx); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", translate(s, err))
		}
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", translate(s, err))
	}
	return nil
}

// Close closes the database; later calls fail with EUNAVAILABLE.
// The writer finishes the batch it is committing first, so every ingest
// that was answered stays answered truthfully.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.quit)
	<-s.writerDone
	for _, st := range s.stmts {
		st.Close()
	}
	return errors.Join(s.w.Close(), s.r.Close())
}

// translate turns driver errors into kycd error codes by SQLite's result
// codes: what may pass (busy, I/O, full disk, closed) is EUNAVAILABLE, so the
// webhook answers 503 and Ralio retries.
func translate(s *Store, err error) error {
	if err == nil {
		return nil
	}
	var ke *kycd.Error
	if errors.As(err, &ke) {
		return err
	}
	if s.closed.Load() || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "store unavailable", Err: err}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "store unavailable", Err: err}
		}
	}
	return err
}

func (s *Store) notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return kycd.Errorf(kycd.ENOTFOUND, format, args...)
	}
	return translate(s, err)
}

// nullString maps "" to NULL.
func nullString(v string) sql.NullString { return sql.NullString{String: v, Valid: v != ""} }
