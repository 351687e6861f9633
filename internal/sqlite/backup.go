package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kycd/kycd"
)

// BackupSummary is what Backup wrote.
type BackupSummary struct {
	Main, Log           string // the files written
	MainBytes, LogBytes int64
	Coverage            kycd.LogCoverage // of the copy
}

// Backup writes a consistent copy of both files to dest and dest+LogSuffix
// while the store is in use, and checks the copy. Each file is copied by
// VACUUM INTO, one read transaction that waits for no writer and that no
// writer waits for; the main file first, then the log: the log only grows,
// so the copy of the log holds every entry that the copy of the projection
// covers, and more (which the projector takes in at the copy's first
// start). The files are written under temporary names and renamed into
// place once both are complete; readable by their owner only, since they
// hold personal data. ECONFLICT when dest or dest+LogSuffix exists.
func (s *Store) Backup(ctx context.Context, dest string) (*BackupSummary, error) {
	if s.closed.Load() {
		return nil, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	sum := &BackupSummary{Main: dest, Log: dest + LogSuffix}
	for _, p := range []string{sum.Main, sum.Log} {
		if _, err := os.Lstat(p); err == nil {
			return nil, kycd.Errorf(kycd.ECONFLICT, "%s exists", p)
		}
	}
	const partial = ".partial"
	tmp := dest + partial // so that the log's is dest+partial+LogSuffix: a pair Open can check
	tmpLog := tmp + LogSuffix
	for _, p := range []string{tmp, tmpLog, tmp + "-wal", tmp + "-shm", tmpLog + "-wal", tmpLog + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: backup: remove an earlier partial copy: %w", err)
		}
	}
	fail := func(err error) (*BackupSummary, error) {
		_ = os.Remove(tmp)    // a partial copy is no backup
		_ = os.Remove(tmpLog) // (the error is the one to report)
		return nil, err
	}
	if err := vacuumInto(ctx, s, s.path, tmp); err != nil {
		return fail(err)
	}
	if err := vacuumInto(ctx, s, s.path+LogSuffix, tmpLog); err != nil {
		return fail(err)
	}
	cp, err := OpenExisting(ctx, tmp)
	if err != nil {
		return fail(fmt.Errorf("sqlite: backup: open the copy: %w", err))
	}
	sum.Coverage, err = cp.LogCoverage(ctx)
	if err = errors.Join(err, cp.Close()); err != nil {
		return fail(fmt.Errorf("sqlite: backup: check the copy: %w", err))
	}
	if p := sum.Coverage.Problem(); p != "" {
		return fail(kycd.Errorf(kycd.EINTERNAL, "sqlite: backup: the copy is not consistent: %s", p))
	}
	// The log first: a main file is only ever beside its log.
	if err := os.Rename(tmpLog, sum.Log); err != nil {
		return fail(fmt.Errorf("sqlite: backup: %w", err))
	}
	if err := os.Rename(tmp, sum.Main); err != nil {
		return fail(fmt.Errorf("sqlite: backup: %w", err))
	}
	if err := syncDir(filepath.Dir(dest)); err != nil {
		return nil, fmt.Errorf("sqlite: backup: %w", err)
	}
	for _, f := range []struct {
		path string
		size *int64
	}{{sum.Main, &sum.MainBytes}, {sum.Log, &sum.LogBytes}} {
		if fi, err := os.Stat(f.path); err == nil {
			*f.size = fi.Size()
		}
	}
	return sum, nil
}

// vacuumInto copies the database file src to dst on a connection of its
// own, owner-only. VACUUM INTO only reads src: it takes no write lock.
func vacuumInto(ctx context.Context, s *Store, src, dst string) error {
	db, err := openDB(dsn(src), 1)
	if err != nil {
		return err
	}
	defer db.Close() //nolint:errcheck // a read-only connection: nothing to lose
	// Created owner-only before SQLite writes into it: VACUUM INTO takes
	// an empty file.
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: the path the operator named
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("sqlite: backup of %s: %w", filepath.Base(src), translate(s, err))
	}
	return nil
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // G304: the directory the operator named
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
