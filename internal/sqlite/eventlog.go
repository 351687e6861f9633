package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kycd/kycd"
)

// The event log is the table event_log of the log file (path+LogSuffix).
// seq is its INTEGER PRIMARY KEY without AUTOINCREMENT: the one writer
// appends max(seq)+1 and rows are never deleted, so seqs increase in commit
// order, which makes the projection's watermark exact.

const sqlAppendLog = `INSERT INTO event_log (event_id, received_at, body, body_hash) VALUES (?, ?, ?, ?)`

// AppendLog commits entries to the log in one transaction and sets their
// Seq, in slice order. Any failure is EUNAVAILABLE: nothing was committed
// and the sender must try again.
func (s *Store) AppendLog(ctx context.Context, entries []*kycd.LogEntry) (err error) {
	if len(entries) == 0 {
		return nil
	}
	if s.closed.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	insert, err := s.appendStatement(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: append log: %w", unavailable(s, err))
	}
	tx, err := s.lw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: append log: %w", unavailable(s, err))
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			for _, e := range entries {
				e.Seq = 0
			}
		}
	}()
	st := tx.StmtContext(ctx, insert)
	defer st.Close()
	for _, e := range entries {
		r, err := st.ExecContext(ctx, e.EventID, formatTime(e.ReceivedAt), e.Body, e.BodyHash)
		if err != nil {
			return fmt.Errorf("sqlite: append log: %w", unavailable(s, err))
		}
		if e.Seq, err = r.LastInsertId(); err != nil {
			return fmt.Errorf("sqlite: append log: %w", unavailable(s, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: append log: commit: %w", unavailable(s, err))
	}
	return nil
}

// appendStatement returns AppendLog's insert, prepared on the log's write
// connection the first time (after migrations have made the table) and
// reused after: preparing it per batch cost a fifth of an ingest's CPU. It
// must not be called inside a transaction on lw, which holds the only
// connection.
func (s *Store) appendStatement(ctx context.Context) (*sql.Stmt, error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if s.appendStmt == nil {
		if s.closed.Load() {
			return nil, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
		}
		st, err := s.lw.PrepareContext(ctx, sqlAppendLog)
		if err != nil {
			return nil, err
		}
		s.appendStmt = st
	}
	return s.appendStmt, nil
}

// KnownEvents returns the projected events among ids: a read of the events'
// id index, through the read pool.
func (s *Store) KnownEvents(ctx context.Context, ids []string) (map[string]kycd.KnownEvent, error) {
	out := make(map[string]kycd.KnownEvent, len(ids))
	if err := knownEvents(ctx, s.r, ids, out); err != nil {
		return nil, fmt.Errorf("sqlite: known events: %w", translate(s, err))
	}
	return out, nil
}

func knownEvents(ctx context.Context, q queryer, ids []string, out map[string]kycd.KnownEvent) error {
	return queryIn(ctx, q, `SELECT id, seq, body_hash FROM events WHERE id IN (%s)`, ids, func(rows *sql.Rows) error {
		var id string
		var k kycd.KnownEvent
		if err := rows.Scan(&id, &k.Seq, &k.BodyHash); err != nil {
			return err
		}
		out[id] = k
		return nil
	})
}

// UnprojectedLog returns up to limit entries above the projection's
// watermark and at most through, oldest first, without bodies.
func (s *Store) UnprojectedLog(ctx context.Context, through int64, limit int) ([]*kycd.LogEntry, error) {
	out := []*kycd.LogEntry{}
	if limit <= 0 {
		return out, nil
	}
	w, err := watermark(ctx, s.r)
	if err != nil {
		return nil, fmt.Errorf("sqlite: unprojected log: %w", translate(s, err))
	}
	err = queryRows(ctx, s.lr, `SELECT seq, event_id, received_at, body_hash FROM event_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
		[]any{w, through, limit}, func(rows *sql.Rows) error {
			var e kycd.LogEntry
			var at string
			if err := rows.Scan(&e.Seq, &e.EventID, &at, &e.BodyHash); err != nil {
				return err
			}
			var err error
			e.ReceivedAt, err = parseTime(at)
			out = append(out, &e)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: unprojected log: %w", translate(s, err))
	}
	return out, nil
}

// LogHead returns the newest entry's seq, 0 when the log is empty.
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var head int64
	if err := s.lr.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM event_log`).Scan(&head); err != nil {
		return 0, fmt.Errorf("sqlite: log head: %w", translate(s, err))
	}
	return head, nil
}

// LogBody returns an entry's body, nil once purged; ENOTFOUND for an
// unknown seq.
func (s *Store) LogBody(ctx context.Context, seq int64) ([]byte, error) {
	var body []byte
	if err := s.lr.QueryRowContext(ctx, `SELECT body FROM event_log WHERE seq = ?`, seq).Scan(&body); err != nil {
		return nil, fmt.Errorf("sqlite: log body: %w", s.notFound(err, "log entry %d not found", seq))
	}
	return body, nil
}

// rowQueryer is what reads one row: a pool or a transaction.
type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// watermark returns the seq through which the log is projected.
func watermark(ctx context.Context, q rowQueryer) (int64, error) {
	var w int64
	err := q.QueryRowContext(ctx, `SELECT seq FROM projection_watermark WHERE id = 1`).Scan(&w)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return w, err
}

// BeginProjection starts an IMMEDIATE transaction on the main file's write
// connection: it waits for any other projection, in this process (the one
// connection) or another (SQLite's write lock, up to busy_timeout), and the
// watermark it reads cannot move until it ends. While it is open, the
// store's other writes to the main file wait for it; appends to the log do
// not.
func (s *Store) BeginProjection(ctx context.Context) (kycd.ProjectionTx, error) {
	if s.closed.Load() {
		return nil, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin projection: %w", translate(s, err))
	}
	w, err := watermark(ctx, tx)
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("sqlite: begin projection: %w", translate(s, err))
	}
	return &projectionTx{s: s, tx: tx, watermark: w, claimed: w}, nil
}

// levelEventTypes are the event types that set a subject's level.
const levelEventTypes = `'kyc_state_updated', 'kyb_state_updated'`

// ResetProjection makes the entries that still have their body unprojected
// again: the watermark goes back to just below the oldest of them (bodies
// are purged oldest first, so they are the end of the log), and their
// events rows, the sessions those events belong to and the subjects whose
// level they set are deleted, all in one transaction on the main file.
// Entries above the watermark whose bodies an erasure removed keep their
// events rows (their projection is claimed again and found done), so a
// late copy of them stays a duplicate, and their sessions stay unless
// another entry re-derives them. Notifications, deliveries and the
// quarantine stay. It returns how many entries will be projected again.
func (s *Store) ResetProjection(ctx context.Context) (_ int64, err error) {
	if s.closed.Load() {
		return 0, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	projected, err := watermark(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
	}
	// Purged entries are a prefix of the log: the scan stops at the first
	// body.
	var first int64
	switch err := s.lr.QueryRowContext(ctx, `SELECT seq FROM event_log WHERE body IS NOT NULL ORDER BY seq LIMIT 1`).Scan(&first); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, tx.Rollback()
	case err != nil:
		return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
	}
	if first > projected {
		return 0, tx.Rollback()
	}
	var n int64
	if err := s.lr.QueryRowContext(ctx, `SELECT count(*) FROM event_log WHERE seq BETWEEN ? AND ? AND body IS NOT NULL`, first, projected).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
	}
	// The erased entries after the first body, kept projected: the log is
	// another file, so they go into a temporary table of this connection.
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS reset_kept (seq INTEGER PRIMARY KEY)`); err != nil {
		return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM temp.reset_kept`); err != nil {
		return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
	}
	var kept []any
	err = queryRows(ctx, s.lr, `SELECT seq FROM event_log WHERE seq BETWEEN ? AND ? AND body IS NULL`, []any{first, projected}, func(rows *sql.Rows) error {
		var seq int64
		err := rows.Scan(&seq)
		kept = append(kept, seq)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
	}
	for len(kept) > 0 {
		part := kept[:min(len(kept), maxIn)]
		kept = kept[len(part):]
		if _, err := tx.ExecContext(ctx, `INSERT INTO temp.reset_kept (seq) VALUES (`+strings.Repeat(`?), (`, len(part)-1)+`?)`, part...); err != nil {
			return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
		}
	}
	const reset = `seq >= ? AND seq NOT IN (SELECT seq FROM temp.reset_kept)`
	for _, q := range []string{
		`DELETE FROM sessions WHERE id IN (SELECT session_id FROM events WHERE ` + reset + ` AND session_id IS NOT NULL)`,
		`DELETE FROM subjects WHERE (id, type) IN (
			SELECT subject_id, subject_type FROM events WHERE ` + reset + ` AND type IN (` + levelEventTypes + `) AND subject_id IS NOT NULL)`,
		`DELETE FROM events WHERE ` + reset,
		`UPDATE projection_watermark SET seq = ? - 1 WHERE id = 1`,
		`DELETE FROM temp.reset_kept WHERE ? > 0`,
	} {
		if _, err := tx.ExecContext(ctx, q, first); err != nil {
			return 0, fmt.Errorf("sqlite: reset projection: %w", translate(s, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: reset projection: commit: %w", translate(s, err))
	}
	return n, nil
}
