package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kycd/kycd"
)

// deliveryColumns are read from deliveryFrom: a delivery with its
// notification.
const (
	deliveryColumns = `d.id, d.notification_id, n.type, d.sink, d.state, d.attempts, d.round_attempts, d.round_started_at,
	d.next_attempt_at, d.last_error, d.created_at, d.updated_at, n.payload`
	deliveryFrom = ` FROM deliveries d JOIN notifications n ON n.id = d.notification_id `
	// notPaused keeps the deliveries of a paused sink from being claimed.
	notPaused = `NOT EXISTS (SELECT 1 FROM sinks p WHERE p.name = d.sink AND p.paused_at IS NOT NULL)`
	// isHead keeps a delivery from being claimed while an earlier one of its
	// sink and order key is pending (unless the sink is of order none): one
	// that is due, leased, or waiting for its next attempt holds the later
	// ones back, a dead, dropped or delivered one does not. The partial
	// index deliveries_order answers it.
	isHead = `(EXISTS (SELECT 1 FROM sink_orderings o WHERE o.name = d.sink AND o.ordering = 'none')
		OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.sink = d.sink AND e.order_key = d.order_key AND e.state = 'pending'
			AND (e.ordinal < d.ordinal OR (e.ordinal = d.ordinal AND e.id < d.id))))`
)

// scanDelivery reads deliveryColumns.
func scanDelivery(row interface{ Scan(...any) error }) (*kycd.Delivery, error) {
	var d kycd.Delivery
	var roundStarted, next, created, updated string
	var lastError sql.NullString
	var payload []byte
	if err := row.Scan(&d.ID, &d.NotificationID, &d.NotificationType, &d.Sink, &d.State, &d.AttemptCount, &d.RoundAttempts,
		&roundStarted, &next, &lastError, &created, &updated, &payload); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&d.RoundStartedAt, roundStarted}, {&d.NextAttemptAt, next}, {&d.CreatedAt, created}, {&d.UpdatedAt, updated}} {
		t, err := parseTime(f.src)
		if err != nil {
			return nil, err
		}
		*f.dst = t
	}
	if d.State != kycd.DeliveryPending {
		d.NextAttemptAt = time.Time{}
	}
	d.LastError = lastError.String
	d.Payload = payload
	return &d, nil
}

// ClaimDeliveries leases due deliveries, each the head of its sink's
// order key (isHead). The write connection's IMMEDIATE transaction makes
// the select-then-update atomic against every other writer, in this
// process or another.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, sinks []string, now time.Time, lease time.Duration, limit int) (_ []*kycd.Delivery, err error) {
	if len(sinks) == 0 || limit <= 0 {
		return nil, nil
	}
	ts := formatTime(now)
	args := []any{ts, ts}
	for _, sink := range sinks {
		args = append(args, sink)
	}
	const due = `d.state = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?) AND ` + notPaused + ` AND ` + isHead + ` AND d.sink IN (`
	// An idle outbox is the common case: a look through the read pool
	// spares the write lock that a claim takes.
	var one int
	switch err := s.r.QueryRowContext(ctx, `SELECT 1 FROM deliveries d WHERE `+due+placeholders(len(sinks))+`) LIMIT 1`, args...).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
	}
	args = append(args, limit)

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // err, which ended the transaction, is the one to report
		}
	}()
	//nolint:gosec // G202: constant fragments and "?, " placeholders only; every value is a bound argument
	rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+deliveryFrom+`
		WHERE `+due+placeholders(len(sinks))+`)
		ORDER BY d.next_attempt_at, d.id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
	}
	// Reading every row closes rows before the update below; the deferred
	// Close is for a scan that fails.
	defer rows.Close()
	var out []*kycd.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
	}
	if len(out) == 0 {
		return nil, tx.Rollback()
	}
	leaseArgs := []any{owner, formatTime(now.Add(lease))}
	for _, d := range out {
		leaseArgs = append(leaseArgs, d.ID)
	}
	//nolint:gosec // G202: constant fragments and "?, " placeholders only; every value is a bound argument
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE id IN (`+placeholders(len(out))+`)`, leaseArgs...); err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
	}
	return out, nil
}

// RecordAttempts appends attempts and moves their deliveries on, for those
// owner still holds, in one transaction.
func (s *Store) RecordAttempts(ctx context.Context, owner string, recs []kycd.AttemptRecord) (_ []error, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // err, which ended the transaction, is the one to report
		}
	}()
	// Prepared once for the whole batch.
	update, err := tx.PrepareContext(ctx, `
		UPDATE deliveries SET state = ?, attempts = attempts + 1, round_attempts = round_attempts + 1,
			next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
		WHERE id = ? AND lease_owner = ? RETURNING attempts`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
	}
	defer func() { _ = update.Close() }() // the statement ends with the transaction anyway
	insert, err := tx.PrepareContext(ctx,
		`INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error, response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
	}
	defer func() { _ = insert.Close() }() // as update
	errs := make([]error, len(recs))
	for i, r := range recs {
		a, next := r.Attempt, r.Next
		var n int
		err := update.QueryRowContext(ctx,
			next.State, formatTime(next.NextAttemptAt), nullString(next.Error), formatTime(a.At.Add(time.Duration(a.DurationMS)*time.Millisecond)), r.DeliveryID, owner,
		).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			errs[i] = kycd.Errorf(kycd.ECONFLICT, "delivery %s is no longer leased by %s", r.DeliveryID, owner)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
		}
		if _, err := insert.ExecContext(ctx,
			r.DeliveryID, n, formatTime(a.At), a.DurationMS, a.Outcome, sql.NullInt64{Int64: int64(a.StatusCode), Valid: a.StatusCode != 0}, nullString(a.Error), nullString(a.ResponseBody),
		); err != nil {
			return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
	}
	return errs, nil
}

// ReleaseDeliveries ends owner's lease of the pending deliveries ids,
// maxIn a statement.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, ids []string) error {
	for chunk := range slices.Chunk(ids, maxIn) {
		args := []any{owner}
		for _, id := range chunk {
			args = append(args, id)
		}
		//nolint:gosec // G202: constant fragments and "?, " placeholders only; every value is a bound argument
		if _, err := s.w.ExecContext(ctx, `UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
			WHERE lease_owner = ? AND state = 'pending' AND id IN (`+placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("sqlite: release deliveries: %w", translate(s, err))
		}
	}
	return nil
}

// Deliveries reads the deliveries q selects, oldest first.
func (s *Store) Deliveries(ctx context.Context, q kycd.DeliveryQuery) ([]*kycd.Delivery, error) {
	var args []any
	query := `SELECT ` + deliveryColumns + deliveryFrom + `WHERE ` + deliveryWhere(q, &args)
	if q.AfterID != "" {
		at := formatTime(q.After)
		query += ` AND (d.created_at > ? OR (d.created_at = ? AND d.id > ?))`
		args = append(args, at, at, q.AfterID)
	}
	query += ` ORDER BY d.created_at, d.id`
	if q.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, q.Limit)
	}
	out := []*kycd.Delivery{}
	err := queryRows(ctx, s.r, query, args, func(rows *sql.Rows) error {
		d, err := scanDelivery(rows)
		out = append(out, d)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: deliveries: %w", translate(s, err))
	}
	return out, nil
}

// Delivery returns one delivery with its attempts and actions, without
// the Orphaned and SinkPaused flags (kycd.FlagSinks sets those).
func (s *Store) Delivery(ctx context.Context, id string) (*kycd.Delivery, error) {
	d, err := scanDelivery(s.r.QueryRowContext(ctx, `SELECT `+deliveryColumns+deliveryFrom+`WHERE d.id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: delivery: %w", s.notFound(err, "delivery %s not found", id))
	}
	err = queryRows(ctx, s.r, `SELECT attempt, started_at, duration_ms, outcome, status_code, error, response_body FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt`,
		[]any{id}, func(rows *sql.Rows) error {
			var a kycd.Attempt
			var at string
			var code sql.NullInt64
			var msg, body sql.NullString
			if err := rows.Scan(&a.N, &at, &a.DurationMS, &a.Outcome, &code, &msg, &body); err != nil {
				return err
			}
			var err error
			if a.At, err = parseTime(at); err != nil {
				return err
			}
			a.StatusCode, a.Error, a.ResponseBody = int(code.Int64), msg.String, body.String
			d.Attempts = append(d.Attempts, a)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: delivery attempts: %w", translate(s, err))
	}
	err = queryRows(ctx, s.r, `SELECT at, actor, action, from_sink, to_sink FROM delivery_actions WHERE delivery_id = ? ORDER BY at, rowid`,
		[]any{id}, func(rows *sql.Rows) error {
			var a kycd.DeliveryAction
			var at string
			var to sql.NullString
			if err := rows.Scan(&at, &a.Actor, &a.Action, &a.From, &to); err != nil {
				return err
			}
			var err error
			if a.At, err = parseTime(at); err != nil {
				return err
			}
			a.To = to.String
			d.Actions = append(d.Actions, a)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: delivery actions: %w", translate(s, err))
	}
	d.NameConcerned()
	return d, nil
}

// LockDelivery reads a delivery; the write connection's transaction holds
// it against every other writer.
func (t *tx) LockDelivery(ctx context.Context, id string) (*kycd.DeliveryRow, error) {
	d, err := t.deliveryRow(ctx, `WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock delivery: %w", t.s.notFound(err, "delivery %s not found", id))
	}
	return d, nil
}

// DeliveryTo reads the delivery of a notification to a sink.
func (t *tx) DeliveryTo(ctx context.Context, notification, sink string) (*kycd.DeliveryRow, error) {
	d, err := t.deliveryRow(ctx, `WHERE notification_id = ? AND sink = ?`, notification, sink)
	if err != nil {
		return nil, fmt.Errorf("sqlite: delivery to sink: %w", t.s.notFound(err, "notification %s has no delivery to %s", notification, sink))
	}
	return d, nil
}

func (t *tx) deliveryRow(ctx context.Context, where string, args ...any) (*kycd.DeliveryRow, error) {
	var d kycd.DeliveryRow
	var lease sql.NullString
	err := t.tx.QueryRowContext(ctx, `SELECT id, notification_id, sink, state, lease_until FROM deliveries `+where, args...).
		Scan(&d.ID, &d.NotificationID, &d.Sink, &d.State, &lease)
	if err != nil {
		return nil, err
	}
	if d.LeaseUntil, err = parseNullTime(lease); err != nil {
		return nil, err
	}
	return &d, nil
}

// DeliveryIDs lists the ids of the deliveries in a state.
func (t *tx) DeliveryIDs(ctx context.Context, state, sink string) ([]string, error) {
	var ids []string
	err := queryRows(ctx, t.tx, `SELECT id FROM deliveries WHERE state = ? AND (? = '' OR sink = ?)`, []any{state, sink, sink},
		func(rows *sql.Rows) error {
			var id string
			err := rows.Scan(&id)
			ids = append(ids, id)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: delivery ids: %w", translate(t.s, err))
	}
	return ids, nil
}

// StartRound makes deliveries due in a new round of attempts, maxIn ids
// a statement.
func (t *tx) StartRound(ctx context.Context, at time.Time, ids ...string) error {
	ts := formatTime(at)
	for chunk := range slices.Chunk(ids, maxIn) {
		args := []any{ts, ts, ts}
		for _, id := range chunk {
			args = append(args, id)
		}
		//nolint:gosec // G202: constant fragments and "?, " placeholders only; every value is a bound argument
		if _, err := t.tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', next_attempt_at = ?, round_attempts = 0, round_started_at = ?,
			lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id IN (`+placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("sqlite: start round: %w", translate(t.s, err))
		}
	}
	return nil
}

// SetDeliverySink gives a delivery to a sink.
func (t *tx) SetDeliverySink(ctx context.Context, id, sink string, at time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE deliveries SET sink = ?, updated_at = ? WHERE id = ?`, sink, formatTime(at), id); err != nil {
		return fmt.Errorf("sqlite: set delivery sink: %w", translate(t.s, err))
	}
	return nil
}

// SetDeliveryState sets a delivery's state and ends its lease.
func (t *tx) SetDeliveryState(ctx context.Context, id, state string, at time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE deliveries SET state = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`,
		state, formatTime(at), id); err != nil {
		return fmt.Errorf("sqlite: set delivery state: %w", translate(t.s, err))
	}
	return nil
}

// AddDelivery records a new delivery, in the place of its notification's
// other deliveries in the order of their keys (a notification made with no
// delivery has none, and is ordered with nothing).
func (t *tx) AddDelivery(ctx context.Context, d kycd.DeliveryRow, at time.Time) error {
	ts := formatTime(at)
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at,
			order_key, ordinal)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?,
			coalesce((SELECT order_key FROM deliveries WHERE notification_id = ? LIMIT 1), 'n:' || ?),
			coalesce((SELECT ordinal FROM deliveries WHERE notification_id = ? LIMIT 1), 0))`,
		d.ID, d.NotificationID, d.Sink, d.State, ts, ts, ts, ts, d.NotificationID, d.NotificationID, d.NotificationID); err != nil {
		return fmt.Errorf("sqlite: add delivery: %w", translate(t.s, err))
	}
	return nil
}

// AddDeliveryAction notes an operator's change of a delivery.
func (t *tx) AddDeliveryAction(ctx context.Context, id string, a kycd.DeliveryAction) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO delivery_actions (delivery_id, at, actor, action, from_sink, to_sink) VALUES (?, ?, ?, ?, ?, ?)`,
		id, formatTime(a.At), a.Actor, a.Action, a.From, nullString(a.To)); err != nil {
		return fmt.Errorf("sqlite: add delivery action: %w", translate(t.s, err))
	}
	return nil
}

// LockNotification reads a notification's type; the write connection's
// transaction holds it.
func (t *tx) LockNotification(ctx context.Context, id string) (string, error) {
	var typ string
	if err := t.tx.QueryRowContext(ctx, `SELECT type FROM notifications WHERE id = ?`, id).Scan(&typ); err != nil {
		return "", fmt.Errorf("sqlite: lock notification: %w", t.s.notFound(err, "notification %s not found", id))
	}
	return typ, nil
}

// OutboxDepth counts deliveries by state.
func (s *Store) OutboxDepth(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM deliveries GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: outbox depth: %w", translate(s, err))
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("sqlite: outbox depth: %w", translate(s, err))
		}
		out[state] = n
	}
	return out, rows.Err()
}

// OldestPending returns, per sink, when its oldest pending delivery's round
// began.
func (s *Store) OldestPending(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := queryRows(ctx, s.r, `SELECT sink, min(round_started_at) FROM deliveries WHERE state = 'pending' GROUP BY sink`, nil,
		func(rows *sql.Rows) error {
			var sink, at string
			if err := rows.Scan(&sink, &at); err != nil {
				return err
			}
			t, err := parseTime(at)
			out[sink] = t
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: oldest pending: %w", translate(s, err))
	}
	return out, nil
}
