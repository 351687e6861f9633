// Package sqlite is kycd's embedded store: two SQLite files in WAL mode, the
// event log in one and everything derived from it in the other, with their
// migrations compiled into the binary.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kycd/kycd"
)

//go:embed migrations/*.sql
var migrations embed.FS

//go:embed logmigrations/*.sql
var logMigrations embed.FS

// timeFormat is fixed-width UTC, so stored times sort as strings.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: formatTime(t), Valid: true}
}

// parseNullTime reads NULL as the zero time.
func parseNullTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return parseTime(s.String)
}

// LogSuffix names the event log's file: the main file's path with it
// appended (kycd.db and kycd.db-log). A copy or backup of the store is both
// files.
const LogSuffix = "-log"

// mainCheckpointPages is the main file's wal_autocheckpoint. The projector
// commits batches of up to a thousand events that dirty a few thousand pages
// each; at SQLite's default of 1000 pages nearly every batch is checkpointed
// at once, so each dirtied page goes to the file as often as it is
// committed. Every 8000 pages (32 MiB of WAL with 4 KiB pages) the pages that
// several batches dirty again (the ends of the append-only tables and
// indexes, the status index, interior pages) reach the file once per
// checkpoint instead. BenchmarkProjection (100,000 events, batches of 1000,
// one sink) writes 23.4 KB per event to the main file at 1000 pages, 20.3 at
// 4000, 18.6 at 8000, 17.1 at 16000; past 8000 the WAL grows for little
// gain. The WAL file keeps its size on disk once grown. The page cache
// stays at its default (2 MiB): 64 MiB wrote 18.3 instead of 18.6 KB per
// event and projected ~13% faster, not worth the memory.
const mainCheckpointPages = 8000

// Store is a kycd.Store on two SQLite files. The event log, which
// acknowledges webhooks, is a file of its own with its own write lock, so a
// projection transaction of a thousand events on the main file never makes
// an acknowledgement wait. Each file's writes go through a single connection,
// as SQLite allows one writer at a time anyway, so they queue in Go instead
// of spinning on SQLITE_BUSY; reads use pools of their own and, thanks to
// WAL, never wait for a writer.
type Store struct {
	w  *sql.DB // the main file's one write connection
	r  *sql.DB // the main file's readers
	lw *sql.DB // the log file's one write connection
	lr *sql.DB // the log file's readers

	closed atomic.Bool

	appendMu   sync.Mutex
	appendStmt *sql.Stmt // AppendLog's insert, prepared once on lw

	path string // the main file, beside which serving.lock lives

	ck *checkpointer // keeps both WALs bounded (checkpoint.go)
}

var _ kycd.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path and its event
// log at path+LogSuffix. Call Migrate before using it. ctx bounds the
// first queries (switching to WAL, the ping that proves both files answer).
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, "")
}

// OpenExisting opens the SQLite database at path and its event log
// without creating either: a command that only reads or changes what is
// there must not leave an empty database behind a mistyped path. It does
// not migrate (Schema says whether the files need it). ENOTFOUND when a
// file is missing.
func OpenExisting(ctx context.Context, path string) (*Store, error) {
	for _, p := range []string{path, path + LogSuffix} {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return nil, kycd.Errorf(kycd.ENOTFOUND, "sqlite: no database file %s", p)
		}
	}
	return open(ctx, path, "&mode=rw")
}

// open opens both files with the extra connection parameters given.
func open(ctx context.Context, path, extra string) (*Store, error) {
	if path == "" {
		return nil, kycd.Errorf(kycd.EINVALID, "sqlite: empty database path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if _, err := os.Stat(dir); err != nil {
			return nil, kycd.Errorf(kycd.EINVALID, "sqlite: directory of database %q does not exist", path)
		}
	}
	s := &Store{path: path}
	var err error
	// synchronous(FULL) on both files: a 200 promises the event survives a
	// power cut, not only a crash of the process, and the projection's
	// watermark must never get ahead of the log it covers.
	main := dsn(path) + extra + "&_pragma=foreign_keys(1)"
	if s.w, err = openDB(main+fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)&_txlock=immediate", mainCheckpointPages), 1); err != nil {
		return nil, err
	}
	if s.r, err = openDB(main+"&_pragma=query_only(1)", 4); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	// The log's checkpoints stay at SQLite's default (1000 pages): its
	// pages are appended once and never dirtied again, so a longer WAL would
	// save no writes, only make the checkpoint that one append batch in
	// ~60 runs on its commit longer. Checkpointing in the background
	// instead was measured (batches of 64 ~900-byte bodies, 2 cores, ext4):
	// an append's p99 fell from ~5 ms to ~1.5 ms but its p999 rose from
	// ~7 ms to ~25 ms (the log's fsync then waits for the checkpoint's
	// writes) and throughput did not improve, so it was not kept.
	log := dsn(path+LogSuffix) + extra
	if s.lw, err = openDB(log+"&_txlock=immediate", 1); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if s.lr, err = openDB(log+"&_pragma=query_only(1)", 2); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	for _, db := range []*sql.DB{s.w, s.lw} {
		if err := s.enableWAL(ctx, db); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	}
	if err := s.Ping(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	ck, err := openCheckpointer(s, filepath.Dir(path))
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	s.ck = ck
	// The checkpointer outlives ctx, which bounds the opening only; Close
	// stops it.
	s.ck.start() //nolint:contextcheck // see above

	return s, nil
}

// dsn is the connection string of a file with the settings every
// connection shares. journal_size_limit: see checkpoint.go. secure_delete: what is deleted or overwritten
// (a purged or erased body, a hashed token) is zeroed in the file, not
// left in free space for a copy of the file to show. Appends free
// nothing, so it costs them nothing (BenchmarkProjection writes as many
// bytes per event with it as without).
func dsn(path string) string { return dsnWaiting(path, 10*time.Second) }

// dsnWaiting is dsn with another busy_timeout.
func dsnWaiting(path string, busy time.Duration) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() +
		fmt.Sprintf("?_pragma=busy_timeout(%d)", busy.Milliseconds()) + "&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)&_pragma=secure_delete(on)" +
		fmt.Sprintf("&_pragma=journal_size_limit(%d)", journalSizeLimit)
}

// openDB opens a pool of at most n connections that are kept open.
func openDB(dsn string, n int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// enableWAL switches a file to WAL mode, which then stays with the file.
// Switching takes an exclusive lock and SQLite answers SQLITE_BUSY at once,
// without waiting out busy_timeout, when another process (starting at the
// same moment) holds the file, so it is retried for a while.
func (s *Store) enableWAL(ctx context.Context, db *sql.DB) error {
	var err error
	for range 100 {
		var mode string
		if err = db.QueryRowContext(ctx, `PRAGMA journal_mode=WAL`).Scan(&mode); err == nil {
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

// Ping reports whether both files answer.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	for _, db := range []*sql.DB{s.r, s.lr} {
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("sqlite: ping: %w", translate(s, err))
		}
	}
	return nil
}

// Close closes both files; later calls fail with EUNAVAILABLE. A
// transaction in progress (an append, a projection) is rolled back when it
// gives its connection back, unless it commits first.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	if s.ck != nil {
		errs = append(errs, s.ck.close())
	}
	s.appendMu.Lock()
	if s.appendStmt != nil {
		errs = append(errs, s.appendStmt.Close())
	}
	s.appendMu.Unlock()
	for _, db := range []*sql.DB{s.w, s.r, s.lw, s.lr} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
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
		if se.Code()&0xff == sqlite3.SQLITE_FULL && s.ck != nil {
			s.ck.spaceRunOut()
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "store unavailable", Err: err}
		}
	}
	return err
}

// unavailable translates err and marks it kycd.Unrecorded.
func unavailable(s *Store, err error) error { return kycd.Unrecorded(translate(s, err)) }

func (s *Store) notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return kycd.Errorf(kycd.ENOTFOUND, format, args...)
	}
	return translate(s, err)
}

// isPrimaryKeyConflict reports whether err is SQLite refusing a row whose
// primary key is taken.
func isPrimaryKeyConflict(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// nullString maps "" to NULL.
func nullString(v string) sql.NullString { return sql.NullString{String: v, Valid: v != ""} }

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// maxIn bounds the values of one IN list, well below SQLite's limit of
// 32766 bound parameters.
const maxIn = 1000

// queryer is what runs a query: a pool or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryIn runs query, whose IN list is written %s, for ids a chunk at a
// time, and calls scan on each row.
func queryIn(ctx context.Context, q queryer, query string, ids []string, scan func(*sql.Rows) error) error {
	for len(ids) > 0 {
		part := ids[:min(len(ids), maxIn)]
		ids = ids[len(part):]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		if err := queryRows(ctx, q, fmt.Sprintf(query, placeholders(len(part))), args, scan); err != nil {
			return err
		}
	}
	return nil
}

// queryRows runs query and calls scan on each row.
func queryRows(ctx context.Context, q queryer, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
