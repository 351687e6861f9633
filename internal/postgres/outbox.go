package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// sendable holds for a delivery d that may be sent now as far as its sink
// goes: the sink is not paused, and d heads its order key there (no
// earlier delivery of the key is pending) unless the sink is of order none.
// The partial index deliveries_order answers the second.
const sendable = `NOT EXISTS (SELECT 1 FROM sinks p WHERE p.name = d.sink AND p.paused_at IS NOT NULL)
	AND (EXISTS (SELECT 1 FROM sink_orderings o WHERE o.name = d.sink AND o.ordering = 'none')
		OR NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.sink = d.sink AND e.order_key = d.order_key
			AND e.state = 'pending' AND (e.ordinal, e.id) < (d.ordinal, d.id)))`

// deliveryColumns are read from deliveryFrom: a delivery with its
// notification.
const (
	deliveryColumns = `d.id, d.notification_id, n.type, d.sink, d.state, d.attempts, d.round_attempts, d.round_started_at,
	d.next_attempt_at, d.last_error, d.created_at, d.updated_at, n.payload::text`
	deliveryFrom = ` FROM deliveries d JOIN notifications n ON n.id = d.notification_id `
)

// scanDelivery reads deliveryColumns.
func scanDelivery(row pgx.Row) (*kycd.Delivery, error) {
	var d kycd.Delivery
	var lastError *string
	var payload string
	if err := row.Scan(&d.ID, &d.NotificationID, &d.NotificationType, &d.Sink, &d.State, &d.AttemptCount, &d.RoundAttempts,
		&d.RoundStartedAt, &d.NextAttemptAt, &lastError, &d.CreatedAt, &d.UpdatedAt, &payload); err != nil {
		return nil, err
	}
	d.RoundStartedAt, d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = d.RoundStartedAt.UTC(), d.NextAttemptAt.UTC(), d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	if d.State != kycd.DeliveryPending {
		d.NextAttemptAt = time.Time{}
	}
	d.LastError = deref(lastError)
	d.Payload = []byte(payload)
	return &d, nil
}

// ClaimDeliveries leases due deliveries, each the head of its sink's
// order key: no earlier delivery of the key is pending (unless the sink is
// of order none). FOR UPDATE SKIP LOCKED lets replicas claim at the same
// moment without waiting for, or taking, one another's rows; it never lets
// two replicas send one key's deliveries out of order, because the head
// stays pending, and so holds back the rest, from its claim until its
// outcome commits: a replica that sees it pending skips the later ones,
// one that sees it leased skips it, and a lease that ran out (its owner
// killed) makes that same head claimable again, never the one behind it.
// Ordinals only grow (the projection lock hands them out), so no delivery
// made later can come before a head already claimed.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, sinks []string, now time.Time, lease time.Duration, limit int) ([]*kycd.Delivery, error) {
	if len(sinks) == 0 || limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		WITH due AS (
			SELECT id FROM deliveries d
			WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) AND sink = ANY($2)
				AND `+sendable+`
			ORDER BY next_attempt_at, id LIMIT $3
			FOR UPDATE SKIP LOCKED
		), leased AS (
			UPDATE deliveries SET lease_owner = $4, lease_until = $5 FROM due WHERE deliveries.id = due.id
			RETURNING deliveries.*
		)
		SELECT `+deliveryColumns+` FROM leased d JOIN notifications n ON n.id = d.notification_id
		ORDER BY d.next_attempt_at, d.id`,
		now, sinks, limit, owner, now.Add(lease))
	if err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: %w", translate(s, err))
	}
	defer rows.Close()
	var out []*kycd.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: claim deliveries: %w", translate(s, err))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: %w", translate(s, err))
	}
	return out, nil
}

// RecordAttempts appends attempts and moves their deliveries on, for those
// owner still holds, in one transaction.
func (s *Store) RecordAttempts(ctx context.Context, owner string, recs []kycd.AttemptRecord) ([]error, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: record attempts: %w", translate(s, err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	errs := make([]error, len(recs))
	for i, r := range recs {
		a, next := r.Attempt, r.Next
		var n int
		err := tx.QueryRow(ctx, `
			UPDATE deliveries SET state = $1, attempts = attempts + 1, round_attempts = round_attempts + 1,
				next_attempt_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL, updated_at = $4
			WHERE id = $5 AND lease_owner = $6 RETURNING attempts`,
			next.State, next.NextAttemptAt, nullString(next.Error), a.At.Add(time.Duration(a.DurationMS)*time.Millisecond), r.DeliveryID, owner,
		).Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			errs[i] = kycd.Errorf(kycd.ECONFLICT, "delivery %s is no longer leased by %s", r.DeliveryID, owner)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("postgres: record attempts: %w", translate(s, err))
		}
		var status *int
		if a.StatusCode != 0 {
			status = &a.StatusCode
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			r.DeliveryID, n, a.At, a.DurationMS, a.Outcome, status, nullString(a.Error), nullString(a.ResponseBody)); err != nil {
			return nil, fmt.Errorf("postgres: record attempts: %w", translate(s, err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: record attempts: %w", translate(s, err))
	}
	return errs, nil
}

// ReleaseDeliveries ends owner's lease of the pending deliveries ids.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, ids []string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE deliveries SET lease_owner = NULL, lease_until = NULL
		WHERE lease_owner = $1 AND state = 'pending' AND id = ANY($2)`, owner, ids); err != nil {
		return fmt.Errorf("postgres: release deliveries: %w", translate(s, err))
	}
	return nil
}

// Deliveries reads the deliveries q selects, oldest first.
func (s *Store) Deliveries(ctx context.Context, q kycd.DeliveryQuery) ([]*kycd.Delivery, error) {
	var args []any
	arg := numbered(&args)
	query := `SELECT ` + deliveryColumns + deliveryFrom + `WHERE ` + deliveryWhere(q, arg)
	if q.AfterID != "" {
		query += ` AND (d.created_at, d.id) > (` + arg(q.After) + `, ` + arg(q.AfterID) + `)`
	}
	query += ` ORDER BY d.created_at, d.id`
	if q.Limit > 0 {
		query += ` LIMIT ` + arg(q.Limit)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: deliveries: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.Delivery, error) { return scanDelivery(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: deliveries: %w", translate(s, err))
	}
	return out, nil
}

// Delivery returns one delivery with its attempts and actions, without
// the Orphaned and SinkPaused flags (kycd.FlagSinks sets those).
func (s *Store) Delivery(ctx context.Context, id string) (*kycd.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+deliveryFrom+`WHERE d.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery: %w", s.notFound(err, "delivery %s not found", id))
	}
	rows, err := s.pool.Query(ctx,
		`SELECT attempt, started_at, duration_ms, outcome, status_code, error, response_body FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery attempts: %w", translate(s, err))
	}
	defer rows.Close()
	for rows.Next() {
		var a kycd.Attempt
		var code *int
		var msg, body *string
		if err := rows.Scan(&a.N, &a.At, &a.DurationMS, &a.Outcome, &code, &msg, &body); err != nil {
			return nil, fmt.Errorf("postgres: delivery attempts: %w", translate(s, err))
		}
		a.At = a.At.UTC()
		if code != nil {
			a.StatusCode = *code
		}
		a.Error, a.ResponseBody = deref(msg), deref(body)
		d.Attempts = append(d.Attempts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: delivery attempts: %w", translate(s, err))
	}
	actions, err := s.pool.Query(ctx,
		`SELECT at, actor, action, from_sink, to_sink FROM delivery_actions WHERE delivery_id = $1 ORDER BY at, ctid`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery actions: %w", translate(s, err))
	}
	defer actions.Close()
	for actions.Next() {
		var a kycd.DeliveryAction
		var to *string
		if err := actions.Scan(&a.At, &a.Actor, &a.Action, &a.From, &to); err != nil {
			return nil, fmt.Errorf("postgres: delivery actions: %w", translate(s, err))
		}
		a.At, a.To = a.At.UTC(), deref(to)
		d.Actions = append(d.Actions, a)
	}
	if err := actions.Err(); err != nil {
		return nil, fmt.Errorf("postgres: delivery actions: %w", translate(s, err))
	}
	d.NameConcerned()
	return d, nil
}

// LockDelivery reads a delivery and locks its row (FOR UPDATE), so a
// dispatcher's claim waits for the transaction or skips the row.
func (t *tx) LockDelivery(ctx context.Context, id string) (*kycd.DeliveryRow, error) {
	d, err := t.deliveryRow(ctx, `WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: lock delivery: %w", t.s.notFound(err, "delivery %s not found", id))
	}
	return d, nil
}

// DeliveryTo reads the delivery of a notification to a sink.
func (t *tx) DeliveryTo(ctx context.Context, notification, sink string) (*kycd.DeliveryRow, error) {
	d, err := t.deliveryRow(ctx, `WHERE notification_id = $1 AND sink = $2`, notification, sink)
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery to sink: %w", t.s.notFound(err, "notification %s has no delivery to %s", notification, sink))
	}
	return d, nil
}

func (t *tx) deliveryRow(ctx context.Context, where string, args ...any) (*kycd.DeliveryRow, error) {
	var d kycd.DeliveryRow
	var lease *time.Time
	err := t.tx.QueryRow(ctx, `SELECT id, notification_id, sink, state, lease_until FROM deliveries `+where, args...).
		Scan(&d.ID, &d.NotificationID, &d.Sink, &d.State, &lease)
	if err != nil {
		return nil, err
	}
	if lease != nil {
		d.LeaseUntil = lease.UTC()
	}
	return &d, nil
}

// DeliveryIDs lists the ids of the deliveries in a state.
func (t *tx) DeliveryIDs(ctx context.Context, state, sink string) ([]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT id FROM deliveries WHERE state = $1 AND ($2 = '' OR sink = $2)`, state, sink)
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery ids: %w", translate(t.s, err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery ids: %w", translate(t.s, err))
	}
	return ids, nil
}

// StartRound makes deliveries due in a new round of attempts.
func (t *tx) StartRound(ctx context.Context, at time.Time, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := t.tx.Exec(ctx, `UPDATE deliveries SET state = 'pending', next_attempt_at = $1, round_attempts = 0, round_started_at = $1,
		lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE id = ANY($2)`, at, ids); err != nil {
		return fmt.Errorf("postgres: start round: %w", translate(t.s, err))
	}
	return nil
}

// SetDeliverySink gives a delivery to a sink.
func (t *tx) SetDeliverySink(ctx context.Context, id, sink string, at time.Time) error {
	if _, err := t.tx.Exec(ctx, `UPDATE deliveries SET sink = $1, updated_at = $2 WHERE id = $3`, sink, at, id); err != nil {
		return fmt.Errorf("postgres: set delivery sink: %w", translate(t.s, err))
	}
	return nil
}

// SetDeliveryState sets a delivery's state and ends its lease.
func (t *tx) SetDeliveryState(ctx context.Context, id, state string, at time.Time) error {
	if _, err := t.tx.Exec(ctx, `UPDATE deliveries SET state = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE id = $3`,
		state, at, id); err != nil {
		return fmt.Errorf("postgres: set delivery state: %w", translate(t.s, err))
	}
	return nil
}

// AddDelivery records a new delivery, in the place of its notification's
// other deliveries in the order of their keys (a notification made with no
// delivery has none, and is ordered with nothing).
func (t *tx) AddDelivery(ctx context.Context, d kycd.DeliveryRow, at time.Time) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at,
			order_key, ordinal)
		VALUES ($1, $2, $3, $4, $5, $5, $5, $5,
			coalesce((SELECT order_key FROM deliveries WHERE notification_id = $2 LIMIT 1), 'n:' || $2),
			coalesce((SELECT ordinal FROM deliveries WHERE notification_id = $2 LIMIT 1), 0))`, d.ID, d.NotificationID, d.Sink, d.State, at); err != nil {
		return fmt.Errorf("postgres: add delivery: %w", translate(t.s, err))
	}
	return nil
}

// AddDeliveryAction notes an operator's change of a delivery.
func (t *tx) AddDeliveryAction(ctx context.Context, id string, a kycd.DeliveryAction) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO delivery_actions (delivery_id, at, actor, action, from_sink, to_sink) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, a.At, a.Actor, a.Action, a.From, nullString(a.To)); err != nil {
		return fmt.Errorf("postgres: add delivery action: %w", translate(t.s, err))
	}
	return nil
}

// LockNotification reads a notification's type and locks its row, so two
// resends of one notification take turns.
func (t *tx) LockNotification(ctx context.Context, id string) (string, error) {
	var typ string
	if err := t.tx.QueryRow(ctx, `SELECT type FROM notifications WHERE id = $1 FOR UPDATE`, id).Scan(&typ); err != nil {
		return "", fmt.Errorf("postgres: lock notification: %w", t.s.notFound(err, "notification %s not found", id))
	}
	return typ, nil
}

// OutboxDepth counts deliveries by state.
func (s *Store) OutboxDepth(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM deliveries GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox depth: %w", translate(s, err))
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("postgres: outbox depth: %w", translate(s, err))
		}
		out[state] = n
	}
	return out, rows.Err()
}

// OldestPending returns, per sink, when its oldest pending delivery's round
// began.
func (s *Store) OldestPending(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT sink, min(round_started_at) FROM deliveries WHERE state = 'pending' GROUP BY sink`)
	if err != nil {
		return nil, fmt.Errorf("postgres: oldest pending: %w", translate(s, err))
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var sink string
		var at time.Time
		if err := rows.Scan(&sink, &at); err != nil {
			return nil, fmt.Errorf("postgres: oldest pending: %w", translate(s, err))
		}
		out[sink] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: oldest pending: %w", translate(s, err))
	}
	return out, nil
}
