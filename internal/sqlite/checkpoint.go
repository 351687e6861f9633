package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// The write-ahead logs are kept bounded by a checkpointer of the store's
// own: a goroutine with a connection to each file that is not the file's
// writer, so that a checkpoint that must wait (for a reader, for the
// writer) waits there, for checkpointWait at most, and never holds the
// connection every write of the file queues for.
//
// What it does:
//   - every passiveEvery, a PASSIVE checkpoint of both files, which waits
//     for no one: an idle file's WAL is written back, and the next write
//     starts it again from its beginning, truncated to journalSizeLimit;
//   - after a write failed for want of space (SQLITE_FULL, seen by
//     translate) and after DropCopies found a reader in the way, a TRUNCATE
//     checkpoint of both files, tried again (1 s, then twice as long each
//     time up to a minute) until one succeeds:
//     it gives the WAL's space back to the file system, so that the next
//     (smaller, see the projector) transaction fits, where SQLite's own
//     checkpoint, which runs after a commit only, would never run again;
//   - every checkpointRetry, it compares the file system's free space with
//     the main file's WAL budget (mainCheckpointPages): below lowSpace it
//     checkpoints the main file at SQLite's default instead, so that its WAL
//     cannot grow into the last of the free space, and back above
//     2 × lowSpace.

const (
	// journalSizeLimit is the size both WAL files are cut back to when
	// SQLite starts them again from the beginning after a checkpoint: the
	// log's whole WAL at its default checkpoint (1000 pages of 4 KiB).
	journalSizeLimit = 4 << 20
	// smallCheckpointPages is the main file's wal_autocheckpoint on a file
	// system short of space: SQLite's default.
	smallCheckpointPages = 1000
	// lowSpace is the free space below which the main file checkpoints at
	// smallCheckpointPages: four times its WAL at mainCheckpointPages.
	lowSpace = 4 * mainCheckpointPages * 4096

	checkpointWait   = 100 * time.Millisecond // the busy_timeout of the checkpointer's connections
	checkpointRetry  = time.Second
	maxTruncateDelay = time.Minute
	passiveEvery     = 30 * time.Second
)

type checkpointer struct {
	main, log *sql.DB // one connection each, busy_timeout checkpointWait
	w         *sql.DB // the main file's writer, for its wal_autocheckpoint
	dir       string  // where the files are, for the free space

	owed  atomic.Bool   // a TRUNCATE is due
	full  chan struct{} // a write failed for want of space
	stop  context.CancelFunc
	done  chan struct{}
	small bool // the main file checkpoints at smallCheckpointPages
}

// openCheckpointer opens the checkpointer's connections; start runs it.
func openCheckpointer(s *Store, dir string) (*checkpointer, error) {
	c := &checkpointer{w: s.w, dir: dir, full: make(chan struct{}, 1), done: make(chan struct{})}
	var err error
	if c.main, err = openDB(dsnWaiting(s.path, checkpointWait), 1); err != nil {
		return nil, err
	}
	if c.log, err = openDB(dsnWaiting(s.path+LogSuffix, checkpointWait), 1); err != nil {
		return nil, errors.Join(err, c.main.Close())
	}
	return c, nil
}

func (c *checkpointer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	go c.run(ctx)
}

// close stops the checkpointer and closes its connections.
func (c *checkpointer) close() error {
	if c.stop != nil {
		c.stop()
		<-c.done
	}
	return errors.Join(c.main.Close(), c.log.Close())
}

// spaceRunOut tells the checkpointer that a write failed for want of
// space; it does not wait.
func (c *checkpointer) spaceRunOut() {
	c.owed.Store(true)
	select {
	case c.full <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(checkpointRetry)
	defer t.Stop()
	passive := time.Now()
	// A TRUNCATE that failed is tried again after 1 s, then 2, 4, … up to
	// maxTruncateDelay: while it waits (checkpointWait at most) it keeps
	// writers out, and a reader that never lets go (Litestream) would
	// otherwise cost the writers a tenth of every second.
	var delay time.Duration
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.full:
			delay, next = 0, time.Time{} // space first: try at once
		case <-t.C:
		}
		c.budget(ctx)
		switch {
		case c.owed.Load() && !time.Now().Before(next):
			if c.checkpoint(ctx, "TRUNCATE") == nil {
				c.owed.Store(false)
				delay = 0
				continue
			}
			delay = min(max(2*delay, checkpointRetry), maxTruncateDelay)
			next = time.Now().Add(delay)
		case time.Since(passive) >= passiveEvery:
			_ = c.checkpoint(ctx, "PASSIVE") // a failure is tried again in passiveEvery
			passive = time.Now()
		}
	}
}

// checkpoint runs a checkpoint of mode on both files and reports the
// first that failed or could not write back every frame.
func (c *checkpointer) checkpoint(ctx context.Context, mode string) error {
	var errs []error
	for _, f := range []struct {
		name string
		db   *sql.DB
	}{{"main file", c.main}, {"log file", c.log}} {
		var busy, logPages, checkpointed int
		err := f.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &logPages, &checkpointed)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		case busy != 0:
			errs = append(errs, fmt.Errorf("%s: a reader or the writer holds its write-ahead log (%d of %d pages written back)", f.name, checkpointed, logPages))
		}
	}
	return errors.Join(errs...)
}

// budget sets the main file's wal_autocheckpoint by the free space.
func (c *checkpointer) budget(ctx context.Context) {
	free, ok := freeSpace(c.dir)
	if !ok {
		return
	}
	small := c.small
	switch {
	case !small && free < lowSpace:
		small = true
	case small && free >= 2*lowSpace:
		small = false
	}
	if small == c.small {
		return
	}
	pages := mainCheckpointPages
	if small {
		pages = smallCheckpointPages
	}
	// On the writer's one connection: it waits for the transaction in
	// progress, and the setting holds for the connection's life.
	if _, err := c.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, pages)); err == nil {
		c.small = small
	}
}
