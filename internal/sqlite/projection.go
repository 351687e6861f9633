package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// projectionTx is one projection transaction: an IMMEDIATE transaction on
// the main file, which holds the watermark, and reads of the log file above
// it. The log file is another file with its own lock, so claiming entries
// takes no lock on it: the main file's write lock is what keeps other
// projections out.
type projectionTx struct {
	s         *Store
	tx        *sql.Tx
	watermark int64 // as read when the transaction began
	claimed   int64 // the newest entry claimed so far
	stmts     map[string]*sql.Stmt
}

// ClaimLog returns up to limit entries after those already claimed (at
// first, after the watermark), oldest first, with their bodies.
func (p *projectionTx) ClaimLog(ctx context.Context, limit int, maxBytes int64) ([]*kycd.LogEntry, error) {
	out := []*kycd.LogEntry{}
	if limit <= 0 {
		return out, nil
	}
	var bytes int64
	err := queryRows(ctx, p.s.lr, `SELECT seq, event_id, received_at, body, body_hash FROM event_log WHERE seq > ? ORDER BY seq LIMIT ?`,
		[]any{p.claimed, limit}, func(rows *sql.Rows) error {
			if len(out) > 0 && bytes >= maxBytes {
				return errEnough
			}
			var e kycd.LogEntry
			var at string
			if err := rows.Scan(&e.Seq, &e.EventID, &at, &e.Body, &e.BodyHash); err != nil {
				return err
			}
			var err error
			e.ReceivedAt, err = parseTime(at)
			out = append(out, &e)
			bytes += int64(len(e.Body))
			return err
		})
	if errors.Is(err, errEnough) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim log: %w", translate(p.s, err))
	}
	if len(out) > 0 {
		p.claimed = out[len(out)-1].Seq
	}
	return out, nil
}

// errEnough stops a scan that has read what it needs.
var errEnough = errors.New("enough rows")

// Current reads the rows keys name, one query per table.
func (p *projectionTx) Current(ctx context.Context, keys kycd.PlanKeys) (*kycd.Projection, error) {
	cur := &kycd.Projection{
		Events:   map[string]kycd.KnownEvent{},
		Sessions: map[string]*kycd.SessionState{},
		Levels:   map[kycd.SubjectRef]*kycd.LevelState{},
	}
	if err := knownEvents(ctx, p.tx, keys.EventIDs, cur.Events); err != nil {
		return nil, fmt.Errorf("sqlite: current events: %w", translate(p.s, err))
	}
	err := queryIn(ctx, p.tx, `SELECT id, subject_type, subject_id, status, status_at, status_event_id, expires_at, checks, history, version
		FROM sessions WHERE id IN (%s)`, keys.SessionIDs, func(rows *sql.Rows) error {
		var st kycd.SessionState
		var at string
		var expires sql.NullString
		var checks, history []byte
		if err := rows.Scan(&st.ID, &st.Subject.Type, &st.Subject.ID, &st.Status, &at, &st.StatusEventID, &expires, &checks, &history, &st.Version); err != nil {
			return err
		}
		var err error
		if st.StatusAt, err = parseTime(at); err != nil {
			return err
		}
		if st.ExpiresAt, err = parseNullTime(expires); err != nil {
			return err
		}
		if err := json.Unmarshal(checks, &st.Checks); err != nil {
			return fmt.Errorf("session %s checks: %w", st.ID, err)
		}
		if err := json.Unmarshal(history, &st.History); err != nil {
			return fmt.Errorf("session %s history: %w", st.ID, err)
		}
		cur.Sessions[st.ID] = &st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: current sessions: %w", translate(p.s, err))
	}
	// The primary key is (id, type): the ids find the rows through it and
	// the types are checked here, as one id under two types is rare.
	wanted := map[kycd.SubjectRef]bool{}
	var ids []string
	for _, sub := range keys.Subjects {
		wanted[sub] = true
		ids = append(ids, sub.ID)
	}
	slices.Sort(ids)
	err = queryIn(ctx, p.tx, `SELECT type, id, level, level_at, level_event_id, version FROM subjects
		WHERE id IN (%s) AND level IS NOT NULL`, slices.Compact(ids), func(rows *sql.Rows) error {
		var l kycd.LevelState
		var at string
		if err := rows.Scan(&l.Subject.Type, &l.Subject.ID, &l.Level, &at, &l.EventID, &l.Version); err != nil {
			return err
		}
		if !wanted[l.Subject] {
			return nil
		}
		var err error
		l.At, err = parseTime(at)
		cur.Levels[l.Subject] = &l
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: current levels: %w", translate(p.s, err))
	}
	return cur, nil
}

// The statements of Apply, each prepared once per transaction and reused for
// every row of the batch.
const (
	sqlInsertEvents   = `INSERT INTO events (seq, id, type, ts, received_at, body_hash, outcome, session_id, subject_type, subject_id) VALUES `
	sqlInsertSessions = `INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id, expires_at, checks, history, version) VALUES `
	sqlUpdateSession  = `UPDATE sessions SET subject_type = ?, subject_id = ?, status = ?, status_at = ?, status_event_id = ?,
		expires_at = ?, checks = ?, history = ?, version = version + 1 WHERE id = ? AND version = ?`
	// A subject's row may exist without a level (an expiration warning made
	// it): version 0 then, and the first level takes it over.
	sqlInsertLevel = `INSERT INTO subjects (type, id, level, level_at, level_event_id, version) VALUES (?, ?, ?, ?, ?, 1)
		ON CONFLICT (id, type) DO UPDATE SET level = excluded.level, level_at = excluded.level_at,
			level_event_id = excluded.level_event_id, version = subjects.version + 1
		WHERE subjects.version = 0 AND subjects.level IS NULL`
	sqlUpdateLevel = `UPDATE subjects SET level = ?, level_at = ?, level_event_id = ?, version = version + 1
		WHERE id = ? AND type = ? AND version = ?`
	sqlInsertSubject       = `INSERT INTO subjects (type, id, version) VALUES (?, ?, 0) ON CONFLICT (id, type) DO NOTHING`
	sqlInsertNotifications = `INSERT INTO notifications (id, type, event_id, payload, created_at) VALUES `
	sqlInsertDeliveries    = `INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at,
		order_key, ordinal) VALUES `
	sqlInsertQuarantine = `INSERT INTO quarantine (id, received_at, reason, problem, event_id, body, original_body) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	sqlAdvanceWatermark = `INSERT INTO projection_watermark (id, seq) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)`
)

// exec runs one of Apply's statements, preparing it the first time.
func (p *projectionTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, ok := p.stmts[query]
	if !ok {
		var err error
		if st, err = p.tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		if p.stmts == nil {
			p.stmts = map[string]*sql.Stmt{}
		}
		p.stmts[query] = st
	}
	return st.ExecContext(ctx, args...)
}

// Apply writes the plan in the transaction and advances the watermark to
// the newest entry of p.Projected. A session or level row that is no longer
// at the version read is ECONFLICT.
func (p *projectionTx) Apply(ctx context.Context, plan *kycd.Plan) error {
	if err := p.apply(ctx, plan); err != nil {
		return fmt.Errorf("sqlite: apply projection: %w", translate(p.s, err))
	}
	return nil
}

func (p *projectionTx) apply(ctx context.Context, plan *kycd.Plan) error {
	events := make([][]any, 0, len(plan.Events))
	for _, e := range plan.Events {
		events = append(events, []any{e.Seq, e.ID, e.Type, formatTime(e.Timestamp), formatTime(e.ReceivedAt), e.BodyHash, e.Outcome,
			nullString(e.SessionID), nullString(e.Subject.Type), nullString(e.Subject.ID)})
	}
	if err := p.insertRows(ctx, sqlInsertEvents, events, ""); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	var created [][]any
	for _, st := range plan.Sessions {
		checks, hist, err := sessionJSON(st)
		if err != nil {
			return fmt.Errorf("session %s: %w", st.ID, err)
		}
		if st.Version == 0 {
			created = append(created, []any{st.ID, st.Subject.Type, st.Subject.ID, st.Status, formatTime(st.StatusAt), st.StatusEventID,
				nullTime(st.ExpiresAt), checks, hist, 1})
			continue
		}
		r, err := p.exec(ctx, sqlUpdateSession,
			st.Subject.Type, st.Subject.ID, st.Status, formatTime(st.StatusAt), st.StatusEventID, nullTime(st.ExpiresAt), checks, hist, st.ID, st.Version)
		if err := conflictUnlessChanged(r, err, "session "+st.ID+" changed meanwhile"); err != nil {
			return err
		}
	}
	if err := p.insertRows(ctx, sqlInsertSessions, created, ""); err != nil {
		if isPrimaryKeyConflict(err) {
			return &kycd.Error{Code: kycd.ECONFLICT, Message: "a session was created meanwhile", Err: err}
		}
		return fmt.Errorf("sessions: %w", err)
	}
	for _, l := range plan.Levels {
		if err := p.applyLevel(ctx, l); err != nil {
			return fmt.Errorf("subject %s %s: %w", l.Subject.Type, l.Subject.ID, err)
		}
	}
	for _, sub := range plan.Subjects {
		if sub.IsZero() {
			continue
		}
		if _, err := p.exec(ctx, sqlInsertSubject, sub.Type, sub.ID); err != nil {
			return fmt.Errorf("subject %s %s: %w", sub.Type, sub.ID, err)
		}
	}
	if err := p.applyNotifications(ctx, plan, ordinals(plan.Events, max(p.watermark, p.claimed))); err != nil {
		return err
	}
	for _, q := range plan.Quarantine {
		if _, err := p.exec(ctx, sqlInsertQuarantine,
			q.ID, formatTime(q.ReceivedAt), q.Reason, string(q.Problem), nullString(q.EventID), q.Body, q.OriginalBody,
		); err != nil {
			return fmt.Errorf("quarantine %s: %w", q.ID, err)
		}
	}
	if len(plan.Projected) > 0 {
		if _, err := p.exec(ctx, sqlAdvanceWatermark, slices.Max(plan.Projected)); err != nil {
			return fmt.Errorf("watermark: %w", err)
		}
	}
	return nil
}

// rowsPerInsert bounds the rows of one multi-row INSERT, well within
// SQLite's limit of 32766 parameters.
const rowsPerInsert = 256

// insertRows inserts rows with head (an INSERT … VALUES without its row
// list) and tail (e.g. an ON CONFLICT clause), many rows per statement:
// a statement per row cost more in the driver than in SQLite itself.
// With returning, the values of its RETURNING column are collected.
func (p *projectionTx) insertRows(ctx context.Context, head string, rows [][]any, tail string) error {
	_, err := p.insertRowsReturning(ctx, head, rows, tail, false)
	return err
}

func (p *projectionTx) insertRowsReturning(ctx context.Context, head string, rows [][]any, tail string, returning bool) ([]string, error) {
	var out []string
	for chunk := range slices.Chunk(rows, rowsPerInsert) {
		var q strings.Builder
		q.WriteString(head)
		args := make([]any, 0, len(chunk)*len(chunk[0]))
		for i, r := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('(')
			q.WriteString(placeholders(len(r)))
			q.WriteByte(')')
			args = append(args, r...)
		}
		q.WriteString(tail)
		if !returning {
			if _, err := p.tx.ExecContext(ctx, q.String(), args...); err != nil {
				return nil, err
			}
			continue
		}
		vs, err := p.queryStrings(ctx, q.String(), args...)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

// queryStrings runs a statement that returns one text column and collects
// it.
func (p *projectionTx) queryStrings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := p.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// sessionJSON is a session's checks and history as stored: JSON text, not
// blobs (SQLite's JSON functions, which Stats uses, read a blob as its
// binary JSONB), times in UTC like every other time of the store.
func sessionJSON(st *kycd.SessionState) (checks, history string, err error) {
	c, err := json.Marshal(st.Checks)
	if err != nil {
		return "", "", err
	}
	hist := make([]kycd.HistoryEntry, len(st.History))
	for i, h := range st.History {
		h.Timestamp, h.ReceivedAt = h.Timestamp.UTC(), h.ReceivedAt.UTC()
		hist[i] = h
	}
	h, err := json.Marshal(hist)
	if err != nil {
		return "", "", err
	}
	return string(c), string(h), nil
}

func (p *projectionTx) applyLevel(ctx context.Context, l *kycd.LevelState) error {
	var r sql.Result
	var err error
	if l.Version == 0 {
		r, err = p.exec(ctx, sqlInsertLevel, l.Subject.Type, l.Subject.ID, l.Level, formatTime(l.At), l.EventID)
	} else {
		r, err = p.exec(ctx, sqlUpdateLevel, l.Level, formatTime(l.At), l.EventID, l.Subject.ID, l.Subject.Type, l.Version)
	}
	return conflictUnlessChanged(r, err, "the level of subject "+l.Subject.ID+" changed meanwhile")
}

// conflictUnlessChanged is ECONFLICT when a conditional write changed no row.
func conflictUnlessChanged(r sql.Result, err error, msg string) error {
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return kycd.Errorf(kycd.ECONFLICT, "%s", msg)
	}
	return nil
}

// ordinals gives a notification's deliveries their ordinal: the log seq of
// the event of the batch that made it, as the projection applies the log in
// seq order; for one that no event of the batch made (the watchdog's
// kyc.session.stalled, an erasure's), applied, the newest seq projected so
// far, after every event applied before it.
func ordinals(events []*kycd.EventRow, applied int64) func(n *kycd.Notification) int64 {
	bySeq := make(map[string]int64, len(events))
	for _, e := range events {
		bySeq[e.ID] = e.Seq
	}
	return func(n *kycd.Notification) int64 {
		if seq, ok := bySeq[n.SourceEventID]; ok && n.Type != kycd.NotifySessionStalled {
			return seq
		}
		return applied
	}
}

// applyNotifications records notifications and one pending delivery per
// sink of each, with its order key and its ordinal. A notification already
// there (its id derives from its event's) was recorded by an earlier
// projection of the same event: its deliveries exist too, and a second set
// would send it twice. With plan.Handoff, the new deliveries that head their
// key are leased to the local dispatcher and listed in plan.HandedOff.
func (p *projectionTx) applyNotifications(ctx context.Context, plan *kycd.Plan, ordinal func(*kycd.Notification) int64) error {
	outgoing := plan.Notifications
	if len(outgoing) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(outgoing))
	payloads := make([][]byte, len(outgoing))
	for i, o := range outgoing {
		n := o.Notification
		payload, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("notification %s: %w", n.ID, err)
		}
		payloads[i] = payload
		rows = append(rows, []any{n.ID, n.Type, n.SourceEventID, payload, formatTime(o.CreatedAt)})
	}
	added, err := p.insertRowsReturning(ctx, sqlInsertNotifications, rows, ` ON CONFLICT (id) DO NOTHING RETURNING id`, true)
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	isNew := make(map[string]bool, len(added))
	for _, id := range added {
		isNew[id] = true
	}
	var deliveries [][]any
	handed := map[string]*kycd.Delivery{} // the new deliveries that may be handed off, by id
	for i, o := range outgoing {
		if !isNew[o.Notification.ID] {
			continue
		}
		ts := formatTime(o.CreatedAt)
		key, ord := o.Notification.OrderKey(), ordinal(o.Notification)
		for _, sink := range o.Sinks {
			// Version 7 ids grow with time, so new deliveries go to the end
			// of the primary key's index instead of to a random page.
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			deliveries = append(deliveries, []any{id.String(), o.Notification.ID, sink, kycd.DeliveryPending, ts, ts, ts, ts, key, ord})
			if plan.Handoff != nil && slices.Contains(plan.Handoff.Sinks, sink) {
				handed[id.String()] = kycd.NewDelivery(id.String(), o, sink, payloads[i])
			}
		}
	}
	if err := p.insertRows(ctx, sqlInsertDeliveries, deliveries, ""); err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	if len(handed) == 0 {
		return nil
	}
	if err := p.handOff(ctx, plan, handed); err != nil {
		return fmt.Errorf("hand off deliveries: %w", err)
	}
	return nil
}

// handOff leases, of the deliveries just written, those that head their
// sink's order key (isHead, which sees the earlier ones of this batch too)
// to plan.Handoff's owner, and lists them in plan.HandedOff, oldest first.
func (p *projectionTx) handOff(ctx context.Context, plan *kycd.Plan, candidates map[string]*kycd.Delivery) error {
	ids := slices.Sorted(maps.Keys(candidates))
	for chunk := range slices.Chunk(ids, maxIn) {
		args := []any{plan.Handoff.Owner, formatTime(plan.Handoff.Until)}
		for _, id := range chunk {
			args = append(args, id)
		}
		leased, err := p.queryStrings(ctx, `UPDATE deliveries AS d SET lease_owner = ?, lease_until = ?
			WHERE d.id IN (`+placeholders(len(chunk))+`) AND `+notPaused+` AND `+isHead+` RETURNING id`, args...)
		if err != nil {
			return err
		}
		slices.Sort(leased)
		for _, id := range leased {
			plan.HandedOff = append(plan.HandedOff, candidates[id])
		}
	}
	return nil
}

// LogBody returns an entry's body. The log is another file, so it is read
// outside the transaction, like ClaimLog.
func (p *projectionTx) LogBody(ctx context.Context, seq int64) ([]byte, error) {
	return p.s.LogBody(ctx, seq)
}

// Commit makes the projection and its watermark durable together.
func (p *projectionTx) Commit(context.Context) error {
	if err := p.tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit projection: %w", translate(p.s, err))
	}
	return nil
}

// Rollback ends the transaction without effect; after Commit it does
// nothing.
func (p *projectionTx) Rollback(context.Context) error {
	if err := p.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("sqlite: roll back projection: %w", translate(p.s, err))
	}
	return nil
}
