package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sqlite"
)

// sqlitePath is the file of --database, which must be SQLite for what:
// PostgreSQL has tools of its own (docs/operations.md).
func (e *env) sqlitePath(what string) (string, error) {
	driver, addr, err := parseDatabase(e.cfg.Database)
	if err != nil {
		return "", err
	}
	if driver != "sqlite" {
		return "", usagef("kycd %s works on SQLite (--database sqlite:PATH); on PostgreSQL use pg_dump / pg_restore or point-in-time recovery, as docs/operations.md describes", what)
	}
	return addr, nil
}

func backupCmd(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "backup DEST",
		Short: "Copy the SQLite database (both files) consistently, while serve runs",
		Long: `Copy the SQLite database of --database to DEST and DEST-log: the main file
first, then the event log, each as one read (VACUUM INTO) that serve goes on
working beside, so the copy's projection is never ahead of its log. The copy
is checked, written under temporary names and renamed into place, readable by
its owner only. Restore it with kycd restore. Refuses a DEST that exists
unless --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if _, err := e.sqlitePath("backup"); err != nil {
				return err
			}
			dest := args[0]
			if force {
				if err := removePair(dest); err != nil {
					return err
				}
			}
			store, err := e.openStore(cmd.Context(), existing)
			if err != nil {
				return err
			}
			defer closeStore(store, &err)
			sum, err := store.(*sqlite.Store).Backup(cmd.Context(), dest)
			if kycd.ErrorCode(err) == kycd.ECONFLICT {
				return usagef("%s: pass --force to replace it, or choose another DEST", kycd.ErrorMessage(err))
			}
			if err != nil {
				return fmt.Errorf("backup failed, nothing written to %s: %w", dest, err)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"main": sum.Main, "log": sum.Log, "mainBytes": sum.MainBytes, "logBytes": sum.LogBytes,
					"projectedThrough": sum.Coverage.Watermark, "logHead": sum.Coverage.LogHead})
			}
			fmt.Fprintf(e.stdout, "backed up to %s (%s) and %s (%s): events up to log entry %d, projected up to %d\n",
				kycd.Escaped(sum.Main), byteSize(sum.MainBytes), kycd.Escaped(sum.Log), byteSize(sum.LogBytes), sum.Coverage.LogHead, sum.Coverage.Watermark)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace DEST and DEST-log if they exist")
	e.use(cmd, storeFlags...)
	return cmd
}

func restoreCmd(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "restore SRC",
		Short: "Put a backup (SRC and SRC-log) in place of the SQLite database; serve stopped",
		Long: `Put the backup SRC and SRC-log, as kycd backup wrote them, in place of the
SQLite database of --database and its event log. The backup is checked first
(schema, and the projection not ahead of its log), copied beside the database
and renamed into place; the database's old write-ahead logs are removed. Stop
every kycd serve on the database first: restore refuses while one runs.
Refuses to replace an existing database unless --force. At its first start,
serve projects what the backup's log holds past its projection and delivers
the notifications the backup had not delivered (a merchant may get again one
delivered after the backup was taken, under the same webhook-id).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := e.sqlitePath("restore")
			if err != nil {
				return err
			}
			return e.restore(cmd.Context(), args[0], target, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace the database of --database if it exists")
	e.use(cmd, storeFlags...)
	return cmd
}

// restore puts the pair src into place as target, under target's serving
// lock.
func (e *env) restore(ctx context.Context, src, target string, force bool) error {
	for _, p := range []string{src, src + sqlite.LogSuffix} {
		if _, err := os.Stat(p); err != nil {
			return &kycd.Error{Code: kycd.ENOTFOUND, Message: fmt.Sprintf("no backup at %s (a backup is two files, %s and %s%s)", src, src, src, sqlite.LogSuffix), Err: err}
		}
	}
	if _, err := os.Stat(target); err == nil && !force {
		return usagef("a database exists at %s: pass --force to replace it with the backup", target)
	}
	if dir := filepath.Dir(target); dir != "." {
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("--database %s: its directory: %w", target, err)
		}
	}
	release, err := sqlite.ExcludeServingAt(target)
	if kycd.ErrorCode(err) == kycd.ECONFLICT {
		return fmt.Errorf("kycd serve (or a rebuild) is using the database at %s: stop every kycd serve on it first, since restore replaces its files", target)
	}
	if err != nil {
		return err
	}
	defer func() { _ = release() }() // the lock ends with the process anyway
	staged := target + ".restoring"
	if err := removePair(staged); err != nil {
		return err
	}
	if err := copyFile(src, staged); err != nil {
		return err
	}
	if err := copyFile(src+sqlite.LogSuffix, staged+sqlite.LogSuffix); err != nil {
		return errors.Join(err, removePair(staged))
	}
	if err := checkBackup(ctx, staged); err != nil {
		return errors.Join(fmt.Errorf("%s is not a usable backup, nothing restored: %w", src, err), removePair(staged))
	}
	// The old files' write-ahead logs would be applied to the new files.
	if err := removePair(target); err != nil {
		return err
	}
	if err := os.Rename(staged+sqlite.LogSuffix, target+sqlite.LogSuffix); err != nil {
		return err
	}
	if err := os.Rename(staged, target); err != nil {
		return err
	}
	if e.cfg.JSON {
		return printJSON(e.stdout, map[string]string{"restored": target, "from": src})
	}
	fmt.Fprintf(e.stdout, "restored %s and %s%s from %s; start kycd serve on it\n", kycd.Escaped(target), kycd.Escaped(target), sqlite.LogSuffix, kycd.Escaped(src))
	return nil
}

// checkBackup opens the pair at path and checks its schema and that its
// projection is not ahead of its log.
func checkBackup(ctx context.Context, path string) (err error) {
	s, err := sqlite.OpenExisting(ctx, path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	sc, err := s.Schema(ctx)
	switch {
	case err != nil:
		return err
	case sc.Version == 0:
		return errors.New("it has no kycd schema")
	case sc.Version > sc.Latest:
		return fmt.Errorf("its schema version %d is newer than this kycd's %d: restore it with the kycd that made it", sc.Version, sc.Latest)
	}
	c, err := s.LogCoverage(ctx)
	if err != nil {
		return err
	}
	if p := c.Problem(); p != "" {
		return errors.New(p + "; a copy made by kycd backup never is (copy the files into place by hand and run kycd rebuild to re-derive the projection from this log)")
	}
	return nil
}

// removePair removes the SQLite database at path, its event log and their
// write-ahead logs, whichever exist.
func removePair(path string) error {
	for _, f := range []string{path, path + sqlite.LogSuffix} {
		for _, p := range []string{f, f + "-wal", f + "-shm"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// copyFile copies src to a new file dst, owner-only, and syncs it.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src) //nolint:gosec // G304: the backup the operator named
	if err != nil {
		return err
	}
	defer in.Close()                                                       //nolint:errcheck // read only
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: beside the database the operator named
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

// byteSize writes n bytes for a person.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// checkCoverage refuses to serve a database whose projection and log do
// not belong together (two files copied at different moments): serving it
// would acknowledge new events and never project them, since their entries
// would fall below the projection's watermark.
func checkCoverage(ctx context.Context, store kycd.Store, database string) error {
	c, ok := store.(kycd.CoverageChecker)
	if !ok {
		return nil
	}
	cov, err := c.LogCoverage(ctx)
	if err != nil {
		return err
	}
	if p := cov.Problem(); p != "" {
		return fmt.Errorf("%s: %s. The two files are not copies of the same moment (the event log copied before the main file?): "+
			"serving them would acknowledge new events and never project them. Restore both files from one kycd backup (kycd restore), "+
			"or re-derive the projection from this event log with kycd rebuild --database %s (serve stopped; nothing is notified again, "+
			"and what the projection holds past the log's entry %d is forgotten), then start serve again",
			kycd.RedactURL(database), p, kycd.RedactURL(database), cov.LogHead)
	}
	return nil
}
