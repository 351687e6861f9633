package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
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
			_ = tx.Rollback() // err is the one to report
			for _, e := range entries {
				e.Seq = 0
			}
		}
	}()
	st := tx.StmtContext(ctx, insert)
	defer st.Close() //nolint:errcheck // a transaction's statement; the commit reports what went wrong
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
		_ = tx.Rollback() // the read's error is the one to report
		return nil, fmt.Errorf("sqlite: begin projection: %w", translate(s, err))
	}
	return &projectionTx{s: s, tx: tx, watermark: w, claimed: w}, nil
}

// LockProjection does nothing more than the transaction does: it holds
// the main file's write lock, which is what keeps projections out.
func (t *tx) LockProjection(context.Context) error { return nil }

// ProjectedLogRuns reads the entries through the watermark from the log
// file, numbered twice, all together and apart by whether they have a
// body: the difference is constant along a run.
func (t *tx) ProjectedLogRuns(ctx context.Context) ([]kycd.LogRun, error) {
	w, err := watermark(ctx, t.tx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: projected log runs: %w", translate(t.s, err))
	}
	var runs []kycd.LogRun
	err = queryRows(ctx, t.s.lr, `
		SELECT min(seq), max(seq), count(*), has_body FROM (
			SELECT seq, body IS NOT NULL AS has_body,
				row_number() OVER (ORDER BY seq) - row_number() OVER (PARTITION BY body IS NOT NULL ORDER BY seq) AS run
			FROM event_log WHERE seq <= ?)
		GROUP BY has_body, run ORDER BY min(seq)`, []any{w}, func(rows *sql.Rows) error {
		var r kycd.LogRun
		err := rows.Scan(&r.From, &r.Through, &r.Entries, &r.HasBody)
		runs = append(runs, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: projected log runs: %w", translate(t.s, err))
	}
	// A log file older than the main file's (copied first, restored from
	// another moment): the events rows past its newest entry, and a
	// watermark past it, are a run of their own that a rebuild removes.
	var head int64
	if err := t.s.lr.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM event_log`).Scan(&head); err != nil {
		return nil, fmt.Errorf("sqlite: projected log runs: %w", translate(t.s, err))
	}
	var beyond, last int64
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(seq), 0) FROM events WHERE seq > ?`, head).Scan(&beyond, &last); err != nil {
		return nil, fmt.Errorf("sqlite: projected log runs: %w", translate(t.s, err))
	}
	if beyond > 0 || w > head {
		runs = append(runs, kycd.LogRun{From: head + 1, Through: max(w, last), Entries: beyond, Beyond: true})
	}
	return runs, nil
}

// LogCoverage compares the main file's projection with the log file: the
// watermark and the events rows past the log's newest entry, and the
// newest projected event the log should hold, which must be the same
// event at the same seq there. Three reads of an index each.
func (s *Store) LogCoverage(ctx context.Context) (kycd.LogCoverage, error) {
	var c kycd.LogCoverage
	var err error
	if c.Watermark, err = watermark(ctx, s.r); err != nil {
		return c, fmt.Errorf("sqlite: log coverage: %w", translate(s, err))
	}
	if c.LogHead, err = s.LogHead(ctx); err != nil {
		return c, err
	}
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE seq > ?`, c.LogHead).Scan(&c.Beyond); err != nil {
		return c, fmt.Errorf("sqlite: log coverage: %w", translate(s, err))
	}
	var seq int64
	var id string
	err = s.r.QueryRowContext(ctx, `SELECT seq, id FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT 1`, min(c.Watermark, c.LogHead)).Scan(&seq, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: log coverage: %w", translate(s, err))
	}
	var logID string
	err = s.lr.QueryRowContext(ctx, `SELECT event_id FROM event_log WHERE seq = ?`, seq).Scan(&logID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		c.Mismatch = fmt.Sprintf("event %s is projected from log entry %d, which the log does not hold", id, seq)
	case err != nil:
		return c, fmt.Errorf("sqlite: log coverage: %w", translate(s, err))
	case logID != id:
		c.Mismatch = fmt.Sprintf("event %s is projected from log entry %d, which is event %s in the log", id, seq, logID)
	}
	return c, nil
}

var _ kycd.CoverageChecker = (*Store)(nil)

// runsJSON gives runs as one JSON parameter, [[from, through], ...], read
// by inRuns: one statement however many runs there are.
func runsJSON(runs []kycd.LogRun) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, r := range runs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%d,%d]", r.From, r.Through)
	}
	b.WriteByte(']')
	return b.String()
}

// inRuns is the events rows of the runs given as runsJSON.
const inRuns = `SELECT e.* FROM events e JOIN json_each(?) r ON e.seq BETWEEN json_extract(r.value, '$[0]') AND json_extract(r.value, '$[1]')`

// DeleteRunSessions deletes the sessions of the runs' events rows.
func (t *tx) DeleteRunSessions(ctx context.Context, runs []kycd.LogRun) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM sessions WHERE id IN (SELECT session_id FROM (`+inRuns+`))`, runsJSON(runs))
	if err != nil {
		return fmt.Errorf("sqlite: delete sessions of the log: %w", translate(t.s, err))
	}
	return nil
}

// DeleteRunSubjects deletes the subjects of the runs' events rows of the
// given types.
func (t *tx) DeleteRunSubjects(ctx context.Context, runs []kycd.LogRun, types []string) error {
	typesJSON, err := json.Marshal(types)
	if err != nil {
		return fmt.Errorf("sqlite: delete subjects of the log: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `DELETE FROM subjects WHERE (id, type) IN (
		SELECT subject_id, subject_type FROM (`+inRuns+`) WHERE type IN (SELECT value FROM json_each(?)))`, runsJSON(runs), string(typesJSON))
	if err != nil {
		return fmt.Errorf("sqlite: delete subjects of the log: %w", translate(t.s, err))
	}
	return nil
}

// DeleteRunEvents deletes the runs' events rows.
func (t *tx) DeleteRunEvents(ctx context.Context, runs []kycd.LogRun) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM events WHERE seq IN (SELECT seq FROM (`+inRuns+`))`, runsJSON(runs))
	if err != nil {
		return fmt.Errorf("sqlite: delete events of the log: %w", translate(t.s, err))
	}
	return nil
}

// UnprojectLog moves the watermark back to before the first run. SQLite
// keeps one watermark, not a mark per entry (the log is another file,
// appended in commit order): the entries between runs are claimed again,
// and the projector finds those without a body projected already.
func (t *tx) UnprojectLog(ctx context.Context, runs []kycd.LogRun) error {
	if len(runs) == 0 {
		return nil
	}
	first := runs[0].From
	for _, r := range runs {
		first = min(first, r.From)
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE projection_watermark SET seq = min(seq, ? - 1) WHERE id = 1`, first); err != nil {
		return fmt.Errorf("sqlite: unproject the log: %w", translate(t.s, err))
	}
	return nil
}
