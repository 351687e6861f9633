package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// The statements of an ingest, prepared once when the store opens.
const (
	sqlSavepoint          = `SAVEPOINT ingest`
	sqlRollbackTo         = `ROLLBACK TO ingest`
	sqlRelease            = `RELEASE ingest`
	sqlFindEvent          = `SELECT body_hash FROM events WHERE id = ?`
	sqlInsertEvent        = `INSERT INTO events (id, type, ts, received_at, body, body_hash, outcome, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlFindSession        = `SELECT status_at, status_event_id FROM sessions WHERE id = ?`
	sqlInsertHistory      = `INSERT INTO session_history (session_id, event_id, event, ts, received_at, status, applied) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlUpsertSession      = `INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET subject_type = excluded.subject_type, subject_id = excluded.subject_id, status = excluded.status, status_at = excluded.status_at, status_event_id = excluded.status_event_id`
	sqlDeleteChecks       = `DELETE FROM session_checks WHERE session_id = ?`
	sqlDeleteReasons      = `DELETE FROM check_reasons WHERE session_id = ?`
	sqlInsertCheck        = `INSERT INTO session_checks (session_id, position, type, state) VALUES (?, ?, ?, ?)`
	sqlInsertReason       = `INSERT INTO check_reasons (session_id, check_position, position, type, code, message, category) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlFindLevel          = `SELECT level_at, level_event_id FROM subjects WHERE id = ? AND type = ?`
	sqlUpsertLevel        = `INSERT INTO subjects (type, id, level, level_at, level_event_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id, type) DO UPDATE SET level = excluded.level, level_at = excluded.level_at, level_event_id = excluded.level_event_id`
	sqlEnsureSubject      = `INSERT INTO subjects (type, id) VALUES (?, ?) ON CONFLICT (id, type) DO NOTHING`
	sqlInsertNotification = `INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES (?, ?, ?, ?, ?)`
	sqlInsertDelivery     = `INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)`
)

// ingestStatements lists them for preparing.
var ingestStatements = []string{sqlSavepoint, sqlRollbackTo, sqlRelease, sqlFindEvent, sqlInsertEvent, sqlFindSession, sqlInsertHistory, sqlUpsertSession, sqlDeleteChecks, sqlDeleteReasons, sqlInsertCheck, sqlInsertReason, sqlFindLevel, sqlUpsertLevel, sqlEnsureSubject, sqlInsertNotification, sqlInsertDelivery}

// maxBatch bounds how many ingests share one commit.
const maxBatch = 128

// commitTimeout bounds one batch's transaction.
const commitTimeout = 15 * time.Second

// ingestReq is one Ingest waiting for the writer.
type ingestReq struct {
	ctx   context.Context
	ev    *kycd.Event
	n     *kycd.Notification
	sinks []string
	done  chan ingestResult // buffered: the writer never blocks on it
}

type ingestResult struct {
	res kycd.IngestResult
	err error
}

// Ingest records ev, its projection and its notification in one transaction,
// which it shares with the ingests queued at the same moment (group commit):
// SQLite writes one transaction at a time and the fsync of its commit is
// most of an ingest's cost, so one commit for many deliveries multiplies
// throughput under load and costs nothing when deliveries come one by one.
// Ingest returns only once its transaction is committed (or failed).
func (s *Store) Ingest(ctx context.Context, ev *kycd.Event, n *kycd.Notification, sinks []string) (kycd.IngestResult, error) {
	if s.closed.Load() {
		return kycd.IngestResult{}, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	req := &ingestReq{ctx: ctx, ev: ev, n: n, sinks: sinks, done: make(chan ingestResult, 1)}
	select {
	case s.ingests <- req:
	case <-s.quit:
		return kycd.IngestResult{}, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	case <-ctx.Done():
		return kycd.IngestResult{}, &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "gave up waiting for the store", Err: ctx.Err()}
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		// The batch may still commit it; a retry then finds a duplicate.
		return kycd.IngestResult{}, &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "gave up waiting for the commit", Err: ctx.Err()}
	}
}

// writeLoop is the one writer of ingests: it takes every queued request, up
// to maxBatch, and commits them together.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	batch := make([]*ingestReq, 0, maxBatch)
	for {
		select {
		case r := <-s.ingests:
			batch = append(batch[:0], r)
		case <-s.quit:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.ingests:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
		clear(batch)
	}
}

// commitBatch runs every request of a batch in one transaction, each inside
// a savepoint so that one request's failure does not undo the others.
func (s *Store) commitBatch(batch []*ingestReq) {
	if s.observeBatch != nil {
		s.observeBatch(len(batch))
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	s.prepare(ctx)
	results := make([]ingestResult, len(batch))
	err := func() (err error) {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				tx.Rollback()
			}
		}()
		w := &txWriter{ctx: ctx, tx: tx, stmts: s.stmts}
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				results[i].err = &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "gave up waiting for the store", Err: err}
				continue
			}
			if _, err := w.exec(sqlSavepoint); err != nil {
				return err
			}
			results[i].res, results[i].err = ingestTx(w, r.ev, r.n, r.sinks)
			if results[i].err != nil && kycd.ErrorCode(results[i].err) != kycd.ECONFLICT {
				results[i].err = fmt.Errorf("sqlite: ingest: %w", unavailable(s, results[i].err))
				if _, err := w.exec(sqlRollbackTo); err != nil {
					return err
				}
			}
			if _, err := w.exec(sqlRelease); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	for i, r := range batch {
		if err != nil {
			results[i] = ingestResult{err: fmt.Errorf("sqlite: ingest: commit: %w", unavailable(s, err))}
		}
		r.done <- results[i]
	}
}

// prepare prepares the ingest statements on the write connection, outside
// any transaction (a transaction holds the only connection). Until it
// succeeds (before migrations, say) statements run unprepared.
func (s *Store) prepare(ctx context.Context) {
	if len(s.stmts) == len(ingestStatements) {
		return
	}
	for _, q := range ingestStatements {
		if s.stmts[q] != nil {
			continue
		}
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return
		}
		s.stmts[q] = st
	}
}

// txWriter runs the ingest statements in one transaction, each prepared
// once per store and reused: preparing them anew took a fifth of an
// ingest's CPU.
type txWriter struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (w *txWriter) exec(query string, args ...any) (sql.Result, error) {
	if st, ok := w.stmts[query]; ok {
		return w.tx.StmtContext(w.ctx, st).ExecContext(w.ctx, args...)
	}
	return w.tx.ExecContext(w.ctx, query, args...)
}

func (w *txWriter) queryRow(query string, args ...any) *sql.Row {
	if st, ok := w.stmts[query]; ok {
		return w.tx.StmtContext(w.ctx, st).QueryRowContext(w.ctx, args...)
	}
	return w.tx.QueryRowContext(w.ctx, query, args...)
}

// ingestTx records one event inside tx: the duplicate check, the
// projection, the event row and the outbox. The write connection's
// IMMEDIATE transaction means no other writer runs between the check and
// the insert.
func ingestTx(w *txWriter, ev *kycd.Event, n *kycd.Notification, sinks []string) (res kycd.IngestResult, err error) {
	var hash string
	switch err := w.queryRow(sqlFindEvent, ev.ID).Scan(&hash); {
	case err == nil:
		if hash != ev.BodyHash {
			return res, kycd.Errorf(kycd.ECONFLICT, "event %s was received before with a different body", ev.ID)
		}
		return kycd.IngestResult{Duplicate: true}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return res, fmt.Errorf("find event: %w", err)
	}
	if res.Outcome, err = project(w, ev); err != nil {
		return res, fmt.Errorf("project: %w", err)
	}
	if _, err = w.exec(
		sqlInsertEvent,
		ev.ID, ev.Type, formatTime(ev.Timestamp), formatTime(ev.ReceivedAt), ev.Body, ev.BodyHash, res.Outcome, nullString(ev.SessionID),
	); err != nil {
		return res, fmt.Errorf("insert event: %w", err)
	}
	if res.Outcome == kycd.OutcomeApplied && n != nil {
		if err = insertNotification(w, n, sinks, ev.ReceivedAt); err != nil {
			return res, fmt.Errorf("outbox: %w", err)
		}
		res.NotificationID = n.ID
	}
	return res, nil
}

// unavailable translates err and marks it kycd.Unrecorded.
func unavailable(s *Store, err error) error { return kycd.Unrecorded(translate(s, err)) }

// project applies ev to the session or subject it concerns and reports the
// outcome. Newest (timestamp, id) wins; an older session event is still
// written to the session's history, marked not applied.
func project(w *txWriter, ev *kycd.Event) (string, error) {
	switch {
	case ev.Status != "":
		return projectSession(w, ev)
	case ev.Level != "":
		return projectLevel(w, ev)
	case ev.Expiration != nil:
		return kycd.OutcomeApplied, ensureSubject(w, ev.Subject)
	}
	return kycd.OutcomeUnhandled, nil
}

func projectSession(w *txWriter, ev *kycd.Event) (string, error) {
	applied := true
	var at, eventID string
	switch err := w.queryRow(sqlFindSession, ev.SessionID).Scan(&at, &eventID); {
	case err == nil:
		cur, err := parseTime(at)
		if err != nil {
			return "", err
		}
		applied = kycd.Supersedes(ev.Timestamp, ev.ID, cur, eventID)
	case !errors.Is(err, sql.ErrNoRows):
		return "", err
	}
	if _, err := w.exec(
		sqlInsertHistory,
		ev.SessionID, ev.ID, ev.Type, formatTime(ev.Timestamp), formatTime(ev.ReceivedAt), ev.Status, applied,
	); err != nil {
		return "", err
	}
	if !applied {
		return kycd.OutcomeStale, nil
	}
	if err := ensureSubject(w, ev.Subject); err != nil {
		return "", err
	}
	if _, err := w.exec(sqlUpsertSession,
		ev.SessionID, ev.Subject.Type, ev.Subject.ID, ev.Status, formatTime(ev.Timestamp), ev.ID,
	); err != nil {
		return "", err
	}
	if _, err := w.exec(sqlDeleteChecks, ev.SessionID); err != nil {
		return "", err
	}
	if _, err := w.exec(sqlDeleteReasons, ev.SessionID); err != nil {
		return "", err
	}
	for i, c := range ev.Checks {
		if _, err := w.exec(
			sqlInsertCheck,
			ev.SessionID, i, c.Type, c.State,
		); err != nil {
			return "", err
		}
		for j, r := range c.Reasons {
			if _, err := w.exec(
				sqlInsertReason,
				ev.SessionID, i, j, r.Type, r.Code, r.Message, r.Category,
			); err != nil {
				return "", err
			}
		}
	}
	return kycd.OutcomeApplied, nil
}

func projectLevel(w *txWriter, ev *kycd.Event) (string, error) {
	var at, eventID sql.NullString
	switch err := w.queryRow(sqlFindLevel,
		ev.Subject.ID, ev.Subject.Type).Scan(&at, &eventID); {
	case err == nil && at.Valid:
		cur, err := parseTime(at.String)
		if err != nil {
			return "", err
		}
		if !kycd.Supersedes(ev.Timestamp, ev.ID, cur, eventID.String) {
			return kycd.OutcomeStale, nil
		}
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return "", err
	}
	_, err := w.exec(sqlUpsertLevel,
		ev.Subject.Type, ev.Subject.ID, ev.Level, formatTime(ev.Timestamp), ev.ID)
	if err != nil {
		return "", err
	}
	return kycd.OutcomeApplied, nil
}

func ensureSubject(w *txWriter, sub kycd.SubjectRef) error {
	if sub.IsZero() {
		return nil
	}
	_, err := w.exec(sqlEnsureSubject, sub.Type, sub.ID)
	return err
}

func insertNotification(w *txWriter, n *kycd.Notification, sinks []string, now time.Time) error {
	payload, err := json.Marshal(n)
	if err != nil {
		return err
	}
	ts := formatTime(now)
	if _, err := w.exec(
		sqlInsertNotification,
		n.ID, n.Type, n.SourceEventID, payload, ts,
	); err != nil {
		return err
	}
	for _, sink := range sinks {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if _, err := w.exec(
			sqlInsertDelivery,
			id.String(), n.ID, sink, ts, ts, ts, ts,
		); err != nil {
			return err
		}
	}
	return nil
}
