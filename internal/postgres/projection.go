package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kycd/kycd"
)

// projection is one projection transaction. It holds the projection lock
// until it ends; reads and writes go through it in batches, so a whole
// projection is a handful of round trips however many entries it covers.
type projection struct {
	s       *Store
	tx      pgx.Tx
	claimed int64 // the newest entry claimed so far
}

var _ kycd.ProjectionTx = (*projection)(nil)

// BeginProjection starts a transaction and waits for the projection lock,
// so one projection runs at a time across replicas. Read committed matters:
// each statement sees what the projection before this one committed while
// this one waited for the lock.
func (s *Store) BeginProjection(ctx context.Context) (kycd.ProjectionTx, error) {
	if s.closed.Load() {
		return nil, kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("postgres: begin projection: %w", translate(s, err))
	}
	// The projection is derived from the log, which was committed with
	// synchronous commit: should the server lose this commit in a crash, it
	// loses the projected marks with it, and the entries are projected
	// again, to the same result. And a later synchronous commit (the
	// dispatcher claiming a delivery this one created) flushes the WAL
	// through this one first. So the projection need not wait for its own
	// flush.
	if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx)) // the Exec's error is the one to report
		return nil, fmt.Errorf("postgres: begin projection: %w", translate(s, err))
	}
	if _, err := tx.Exec(ctx, lockProjection, projectionLockClass); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx)) // the Exec's error is the one to report
		return nil, fmt.Errorf("postgres: begin projection: lock: %w", translate(s, err))
	}
	return &projection{s: s, tx: tx}, nil
}

// ClaimLog locks up to limit unprojected entries after those it claimed
// before. SKIP LOCKED is the outbox's claim pattern: should a projection
// ever run beside this one, it takes other entries instead of waiting for
// these.
func (p *projection) ClaimLog(ctx context.Context, limit int, maxBytes int64) ([]*kycd.LogEntry, error) {
	rows, err := p.tx.Query(ctx, `
		SELECT seq, event_id, received_at, body, body_hash FROM event_log
		WHERE NOT projected AND seq > $2 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, limit, p.claimed)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim log: %w", translate(p.s, err))
	}
	defer rows.Close()
	// Rows past maxBytes stay locked by this transaction and unprojected:
	// the next batch takes them.
	out := []*kycd.LogEntry{}
	var bytes int64
	for rows.Next() && (len(out) == 0 || bytes < maxBytes) {
		var e kycd.LogEntry
		if err := rows.Scan(&e.Seq, &e.EventID, &e.ReceivedAt, &e.Body, &e.BodyHash); err != nil {
			return nil, fmt.Errorf("postgres: claim log: %w", translate(p.s, err))
		}
		e.ReceivedAt = e.ReceivedAt.UTC()
		out = append(out, &e)
		bytes += int64(len(e.Body))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: claim log: %w", translate(p.s, err))
	}
	if len(out) > 0 {
		p.claimed = out[len(out)-1].Seq
	}
	return out, nil
}

// Current reads the rows keys name, one statement per table, all in one
// round trip.
func (p *projection) Current(ctx context.Context, keys kycd.PlanKeys) (*kycd.Projection, error) {
	cur := &kycd.Projection{
		Events:   map[string]kycd.KnownEvent{},
		Sessions: map[string]*kycd.SessionState{},
		Levels:   map[kycd.SubjectRef]*kycd.LevelState{},
	}
	b := &pgx.Batch{}
	if len(keys.EventIDs) > 0 {
		b.Queue(`SELECT id, seq, body_hash FROM events WHERE id = ANY($1)`, keys.EventIDs).Query(func(rows pgx.Rows) error {
			var id string
			var k kycd.KnownEvent
			_, err := pgx.ForEachRow(rows, []any{&id, &k.Seq, &k.BodyHash}, func() error {
				cur.Events[id] = k
				return nil
			})
			return err
		})
	}
	if len(keys.SessionIDs) > 0 {
		b.Queue(`
			SELECT id, subject_type, subject_id, status, status_at, status_event_id, expires_at, checks, history, version
			FROM sessions WHERE id = ANY($1)`, keys.SessionIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var st kycd.SessionState
				var expires *time.Time
				var checks, history []byte
				if err := rows.Scan(&st.ID, &st.Subject.Type, &st.Subject.ID, &st.Status, &st.StatusAt, &st.StatusEventID,
					&expires, &checks, &history, &st.Version); err != nil {
					return err
				}
				st.ExpiresAt = derefTime(expires)
				if err := decodeSession(&st, checks, history); err != nil {
					return err
				}
				cur.Sessions[st.ID] = &st
			}
			return rows.Err()
		})
	}
	if len(keys.Subjects) > 0 {
		types, ids := make([]string, len(keys.Subjects)), make([]string, len(keys.Subjects))
		for i, sub := range keys.Subjects {
			types[i], ids[i] = sub.Type, sub.ID
		}
		b.Queue(`
			SELECT s.type, s.id, s.level, s.level_at, s.level_event_id, s.version
			FROM subjects s JOIN unnest($1::text[], $2::text[]) AS k(type, id) ON s.id = k.id AND s.type = k.type
			WHERE s.level IS NOT NULL`, types, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var l kycd.LevelState
				if err := rows.Scan(&l.Subject.Type, &l.Subject.ID, &l.Level, &l.At, &l.EventID, &l.Version); err != nil {
					return err
				}
				l.At = l.At.UTC()
				cur.Levels[l.Subject] = &l
			}
			return rows.Err()
		})
	}
	if b.Len() == 0 {
		return cur, nil
	}
	if err := p.tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("postgres: current: %w", translate(p.s, err))
	}
	return cur, nil
}

// decodeSession fills a session's checks and history from their JSON
// columns, times in UTC as every other time the store returns.
func decodeSession(st *kycd.SessionState, checks, history []byte) error {
	st.StatusAt = st.StatusAt.UTC()
	if err := json.Unmarshal(checks, &st.Checks); err != nil {
		return fmt.Errorf("session %s: checks: %w", st.ID, err)
	}
	if err := json.Unmarshal(history, &st.History); err != nil {
		return fmt.Errorf("session %s: history: %w", st.ID, err)
	}
	for i := range st.History {
		h := &st.History[i]
		h.Timestamp, h.ReceivedAt = h.Timestamp.UTC(), h.ReceivedAt.UTC()
	}
	return nil
}

// Apply writes the plan in one round trip: one multi-row statement per
// kind of row (arrays unnested on the server), then marks the entries
// projected. Sessions and levels are written only where their version is
// still the one read; a row that moved on is ECONFLICT, and the caller
// rolls the whole transaction back.
func (p *projection) Apply(ctx context.Context, plan *kycd.Plan) error {
	b := &pgx.Batch{}
	if err := queueEvents(b, plan.Events); err != nil {
		return fmt.Errorf("postgres: apply: %w", err)
	}
	if err := queueSessions(b, plan.Sessions); err != nil {
		return fmt.Errorf("postgres: apply: %w", err)
	}
	queueLevels(b, plan.Levels)
	queueSubjects(b, plan.Subjects)
	if err := queueNotifications(b, plan); err != nil {
		return fmt.Errorf("postgres: apply: %w", err)
	}
	queueQuarantine(b, plan.Quarantine)
	if len(plan.Projected) > 0 {
		b.Queue(`UPDATE event_log SET projected = true WHERE seq = ANY($1) AND NOT projected`, plan.Projected)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := p.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: apply: %w", translate(p.s, err))
	}
	return nil
}

// expect fails with ECONFLICT unless a statement wrote n rows: the rows it
// missed changed version since they were read.
func expect(n int, what string) func(pgconn.CommandTag) error {
	return func(tag pgconn.CommandTag) error {
		if got := tag.RowsAffected(); got != int64(n) {
			return kycd.Errorf(kycd.ECONFLICT, "%d of %d %s changed since they were read", int64(n)-got, n, what)
		}
		return nil
	}
}

// queueEvents inserts the events rows. A duplicate id is a bug of the
// caller (the plan read the ids first, under the projection lock) and
// fails the statement.
func queueEvents(b *pgx.Batch, events []*kycd.EventRow) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	seqs := make([]int64, n)
	ids, types, hashes, outcomes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts, received := make([]time.Time, n), make([]time.Time, n)
	sessions, subTypes, subIDs := make([]*string, n), make([]*string, n), make([]*string, n)
	for i, e := range events {
		if e.Outcome == "" {
			return fmt.Errorf("event %s has no outcome", e.ID)
		}
		seqs[i], ids[i], types[i], ts[i], received[i], hashes[i], outcomes[i] = e.Seq, e.ID, e.Type, e.Timestamp, e.ReceivedAt, e.BodyHash, e.Outcome
		sessions[i], subTypes[i], subIDs[i] = nullString(e.SessionID), nullString(e.Subject.Type), nullString(e.Subject.ID)
	}
	b.Queue(`
		INSERT INTO events (seq, id, type, ts, received_at, body_hash, outcome, session_id, subject_type, subject_id)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[])`,
		seqs, ids, types, ts, received, hashes, outcomes, sessions, subTypes, subIDs)
	return nil
}

// queueSessions inserts new sessions and updates the others where their
// version is still the one read.
func queueSessions(b *pgx.Batch, sessions []*kycd.SessionState) error {
	var ins, upd sessionColumns
	for _, st := range sessions {
		c := &ins
		if st.Version != 0 {
			c = &upd
		}
		if err := c.add(st); err != nil {
			return err
		}
	}
	if len(ins.ids) > 0 {
		// DO NOTHING rather than an error: a row that exists already is a
		// conflict to report, not a statement to abort.
		b.Queue(`
			INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id, expires_at, checks, history, version)
			SELECT id, subject_type, subject_id, status, status_at, status_event_id, expires_at, checks::json, history::json, 1
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
				AS u(id, subject_type, subject_id, status, status_at, status_event_id, checks, history, expires_at)
			ON CONFLICT (id) DO NOTHING`,
			ins.ids, ins.subTypes, ins.subIDs, ins.statuses, ins.statusAt, ins.statusEvents, ins.checks, ins.history, ins.expiresAt,
		).Exec(expect(len(ins.ids), "new sessions"))
	}
	if len(upd.ids) > 0 {
		b.Queue(`
			UPDATE sessions s SET subject_type = u.subject_type, subject_id = u.subject_id, status = u.status,
				status_at = u.status_at, status_event_id = u.status_event_id, expires_at = u.expires_at,
				checks = u.checks::json, history = u.history::json, version = s.version + 1
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::bigint[],
				$10::timestamptz[])
				AS u(id, subject_type, subject_id, status, status_at, status_event_id, checks, history, version, expires_at)
			WHERE s.id = u.id AND s.version = u.version`,
			upd.ids, upd.subTypes, upd.subIDs, upd.statuses, upd.statusAt, upd.statusEvents, upd.checks, upd.history, upd.versions,
			upd.expiresAt,
		).Exec(expect(len(upd.ids), "sessions"))
	}
	return nil
}

// sessionColumns are sessions as the arrays of a multi-row statement.
type sessionColumns struct {
	ids, subTypes, subIDs, statuses, statusEvents, checks, history []string
	statusAt                                                       []time.Time
	expiresAt                                                      []*time.Time // nil: no invitation expiry
	versions                                                       []int64
}

func (c *sessionColumns) add(st *kycd.SessionState) error {
	checks, err := json.Marshal(st.Checks)
	if err != nil {
		return fmt.Errorf("session %s: checks: %w", st.ID, err)
	}
	history, err := json.Marshal(st.History)
	if err != nil {
		return fmt.Errorf("session %s: history: %w", st.ID, err)
	}
	if st.Checks == nil {
		checks = []byte("[]")
	}
	if st.History == nil {
		history = []byte("[]")
	}
	c.ids = append(c.ids, st.ID)
	c.subTypes = append(c.subTypes, st.Subject.Type)
	c.subIDs = append(c.subIDs, st.Subject.ID)
	c.statuses = append(c.statuses, string(st.Status))
	c.statusAt = append(c.statusAt, st.StatusAt)
	c.statusEvents = append(c.statusEvents, st.StatusEventID)
	c.expiresAt = append(c.expiresAt, nullTime(st.ExpiresAt))
	c.checks = append(c.checks, string(checks))
	c.history = append(c.history, string(history))
	c.versions = append(c.versions, st.Version)
	return nil
}

// queueLevels sets subject levels. A level's first write may find the row
// Plan.Subjects records without a level (version 0): it takes that row over.
func queueLevels(b *pgx.Batch, levels []*kycd.LevelState) {
	var ins, upd levelColumns
	for _, l := range levels {
		if l.Version == 0 {
			ins.add(l)
		} else {
			upd.add(l)
		}
	}
	if len(ins.types) > 0 {
		b.Queue(`
			INSERT INTO subjects (type, id, level, level_at, level_event_id, version)
			SELECT type, id, level, level_at, level_event_id, 1
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS u(type, id, level, level_at, level_event_id)
			ON CONFLICT (id, type) DO UPDATE SET level = excluded.level, level_at = excluded.level_at,
				level_event_id = excluded.level_event_id, version = subjects.version + 1
			WHERE subjects.version = 0 AND subjects.level IS NULL`,
			ins.types, ins.ids, ins.levels, ins.at, ins.events,
		).Exec(expect(len(ins.types), "new subject levels"))
	}
	if len(upd.types) > 0 {
		b.Queue(`
			UPDATE subjects s SET level = u.level, level_at = u.level_at, level_event_id = u.level_event_id, version = s.version + 1
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[])
				AS u(type, id, level, level_at, level_event_id, version)
			WHERE s.id = u.id AND s.type = u.type AND s.version = u.version`,
			upd.types, upd.ids, upd.levels, upd.at, upd.events, upd.versions,
		).Exec(expect(len(upd.types), "subject levels"))
	}
}

// levelColumns are levels as the arrays of a multi-row statement.
type levelColumns struct {
	types, ids, levels, events []string
	at                         []time.Time
	versions                   []int64
}

func (c *levelColumns) add(l *kycd.LevelState) {
	c.types = append(c.types, l.Subject.Type)
	c.ids = append(c.ids, l.Subject.ID)
	c.levels = append(c.levels, l.Level)
	c.at = append(c.at, l.At)
	c.events = append(c.events, l.EventID)
	c.versions = append(c.versions, l.Version)
}

// queueSubjects records subjects without a level unless they have a row.
func queueSubjects(b *pgx.Batch, subjects []kycd.SubjectRef) {
	var types, ids []string
	for _, sub := range subjects {
		if !sub.IsZero() {
			types, ids = append(types, sub.Type), append(ids, sub.ID)
		}
	}
	if len(types) == 0 {
		return
	}
	b.Queue(`
		INSERT INTO subjects (type, id, version) SELECT type, id, 0 FROM unnest($1::text[], $2::text[]) AS u(type, id)
		ON CONFLICT (id, type) DO NOTHING`, types, ids)
}

// queueNotifications inserts notifications and a pending delivery per
// sink. Deliveries go only with a notification this statement inserted: a
// notification that exists already (a projection redone, a rebuild) was
// delivered or is pending, and must not be sent twice.
func queueNotifications(b *pgx.Batch, plan *kycd.Plan) error {
	out := plan.Notifications
	if len(out) == 0 {
		return nil
	}
	handed := map[string]*kycd.Delivery{} // the new deliveries that may be handed off, by id
	var ids, types, events, payloads []string
	var created []time.Time
	var deliveryIDs, deliveryNotifications, sinks, keys []string
	for _, o := range out {
		n := o.Notification
		payload, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("notification %s: %w", n.ID, err)
		}
		ids, types, events, payloads = append(ids, n.ID), append(types, n.Type), append(events, n.SourceEventID), append(payloads, string(payload))
		created = append(created, o.CreatedAt)
		key := n.OrderKey()
		for _, sink := range o.Sinks {
			// Version 7 ids are time-ordered: deliveries append to the
			// right of their primary key index.
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("delivery id: %w", err)
			}
			deliveryIDs, deliveryNotifications, sinks = append(deliveryIDs, id.String()), append(deliveryNotifications, n.ID), append(sinks, sink)
			keys = append(keys, key)
			if plan.Handoff != nil && slices.Contains(plan.Handoff.Sinks, sink) {
				handed[id.String()] = kycd.NewDelivery(id.String(), o, sink, payload)
			}
		}
	}
	b.Queue(`
		WITH n AS (
			INSERT INTO notifications (id, type, event_id, payload, created_at)
			SELECT id, type, event_id, payload::json, created_at
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS u(id, type, event_id, payload, created_at)
			ON CONFLICT (id) DO NOTHING
			RETURNING id, created_at
		)
		-- The ordinals of the batch, taken at once: base + i for the i-th
		-- delivery (i from 1), in the order of application. Only projection
		-- transactions, which hold the projection lock, take ordinals, so
		-- nothing takes one between the nextval and the setval.
		, base AS (SELECT setval('delivery_ordinal', nextval('delivery_ordinal') + $10) - $10 - 1 AS b)
		INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at, order_key, ordinal)
		SELECT d.id, d.notification_id, d.sink, 'pending', n.created_at, n.created_at, n.created_at, n.created_at, d.order_key, base.b + d.i
		FROM unnest($6::text[], $7::text[], $8::text[], $9::text[]) WITH ORDINALITY AS d(id, notification_id, sink, order_key, i)
		JOIN n ON n.id = d.notification_id CROSS JOIN base
		ORDER BY d.i`,
		ids, types, events, payloads, created, deliveryIDs, deliveryNotifications, sinks, keys, len(deliveryIDs))
	if len(handed) > 0 {
		queueHandoff(b, plan, handed)
	}
	return nil
}

// queueHandoff leases, of the deliveries just written (only those of
// notifications the statement before inserted exist), those that head their
// sink's order key to plan.Handoff's owner, and lists them in
// plan.HandedOff, oldest first. The statement sees the earlier deliveries
// of this batch, pending, so only the first of a key in the batch can be
// a head. What another replica commits meanwhile can only make fewer of
// them heads: ordinals only grow, and a head stays pending until its
// outcome commits.
func queueHandoff(b *pgx.Batch, plan *kycd.Plan, candidates map[string]*kycd.Delivery) {
	ids := slices.Sorted(maps.Keys(candidates))
	b.Queue(`
		UPDATE deliveries d SET lease_owner = $1, lease_until = $2
		WHERE d.id = ANY($3) AND `+sendable+`
		RETURNING d.id`, plan.Handoff.Owner, plan.Handoff.Until, ids).Query(func(rows pgx.Rows) error {
		leased, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		slices.Sort(leased)
		for _, id := range leased {
			plan.HandedOff = append(plan.HandedOff, candidates[id])
		}
		return nil
	})
}

// queueQuarantine keeps the conflicts the plan found. Their ids are
// derived from the entries, so a projection redone keeps each once.
func queueQuarantine(b *pgx.Batch, items []*kycd.Quarantined) {
	if len(items) == 0 {
		return
	}
	n := len(items)
	ids, reasons, problems := make([]string, n), make([]string, n), make([]string, n)
	received := make([]time.Time, n)
	events := make([]*string, n)
	bodies, originals := make([][]byte, n), make([][]byte, n)
	for i, q := range items {
		ids[i], received[i], reasons[i], problems[i] = q.ID, q.ReceivedAt, q.Reason, string(q.Problem)
		events[i], bodies[i], originals[i] = nullString(q.EventID), q.Body, q.OriginalBody
		if bodies[i] == nil {
			bodies[i] = []byte{} // the column is NOT NULL; a purged body is an empty one
		}
	}
	b.Queue(`
		INSERT INTO quarantine (id, received_at, reason, problem, event_id, body, original_body)
		SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bytea[])
		ON CONFLICT (id) DO NOTHING`,
		ids, received, reasons, problems, events, bodies, originals)
}

// LogBody returns an entry's body within the transaction.
func (p *projection) LogBody(ctx context.Context, seq int64) ([]byte, error) {
	return logBody(ctx, p.s, p.tx, seq)
}

// Commit makes the projection visible and releases the projection lock.
func (p *projection) Commit(ctx context.Context) error {
	if err := p.tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit projection: %w", translate(p.s, err))
	}
	return nil
}

// Rollback ends the transaction without effect; after Commit it does
// nothing.
func (p *projection) Rollback(ctx context.Context) error {
	if err := p.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("postgres: rollback projection: %w", translate(p.s, err))
	}
	return nil
}
