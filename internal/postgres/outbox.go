package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// deliveryColumns are read from deliveryFrom: a delivery with its
// notification and its sink's flags. A delivery whose sink has no row is
// orphaned as much as one whose sink is no longer configured.
const (
	deliveryColumns = `d.id, d.notification_id, n.type, d.sink, d.state, d.attempts, d.round_attempts, d.round_started_at,
	d.next_attempt_at, d.last_error, d.created_at, d.updated_at, n.payload::text,
	d.state IN ('pending', 'dead') AND NOT coalesce(s.configured, false), d.state = 'pending' AND s.paused_at IS NOT NULL`
	deliveryFrom = ` FROM deliveries d JOIN notifications n ON n.id = d.notification_id LEFT JOIN sinks s ON s.name = d.sink `
	orphaned     = `d.state IN ('pending', 'dead') AND NOT coalesce(s.configured, false)`
)

func scanDelivery(row pgx.Row) (*kycd.Delivery, error) {
	var d kycd.Delivery
	var lastError *string
	var payload string
	if err := row.Scan(&d.ID, &d.NotificationID, &d.NotificationType, &d.Sink, &d.State, &d.AttemptCount, &d.RoundAttempts,
		&d.RoundStartedAt, &d.NextAttemptAt, &lastError, &d.CreatedAt, &d.UpdatedAt, &payload, &d.Orphaned, &d.SinkPaused); err != nil {
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

// ClaimDeliveries leases due deliveries. FOR UPDATE SKIP LOCKED lets
// replicas claim at the same moment without waiting for, or taking, one
// another's rows.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, sinks []string, now time.Time, lease time.Duration, limit int) ([]*kycd.Delivery, error) {
	if len(sinks) == 0 || limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		WITH due AS (
			SELECT id FROM deliveries
			WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) AND sink = ANY($2)
				AND NOT EXISTS (SELECT 1 FROM sinks p WHERE p.name = deliveries.sink AND p.paused_at IS NOT NULL)
			ORDER BY next_attempt_at, id LIMIT $3
			FOR UPDATE SKIP LOCKED
		), leased AS (
			UPDATE deliveries SET lease_owner = $4, lease_until = $5 FROM due WHERE deliveries.id = due.id
			RETURNING deliveries.*
		)
		SELECT `+deliveryColumns+` FROM leased d JOIN notifications n ON n.id = d.notification_id LEFT JOIN sinks s ON s.name = d.sink
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
		if err == pgx.ErrNoRows {
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
			`INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			r.DeliveryID, n, a.At, a.DurationMS, a.Outcome, status, nullString(a.Error)); err != nil {
			return nil, fmt.Errorf("postgres: record attempts: %w", translate(s, err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: record attempts: %w", translate(s, err))
	}
	return errs, nil
}

// Deliveries lists deliveries by creation, oldest first, a page at a time.
func (s *Store) Deliveries(ctx context.Context, f kycd.DeliveryFilter) (*kycd.DeliveryPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q := `SELECT ` + deliveryColumns + deliveryFrom + `WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.State != "" {
		q += ` AND d.state = ` + arg(f.State)
	}
	if f.Sink != "" {
		q += ` AND d.sink = ` + arg(f.Sink)
	}
	if f.Orphaned {
		q += ` AND ` + orphaned
	}
	if f.Cursor != "" {
		t, id, err := kycd.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		q += ` AND (d.created_at, d.id) > (` + arg(t) + `, ` + arg(id) + `)`
	}
	q += ` ORDER BY d.created_at, d.id LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: deliveries: %w", translate(s, err))
	}
	defer rows.Close()
	page := &kycd.DeliveryPage{Items: []*kycd.Delivery{}}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: deliveries: %w", translate(s, err))
		}
		if len(page.Items) == limit {
			last := page.Items[limit-1]
			page.NextCursor = kycd.EncodeCursor(last.CreatedAt, last.ID)
			break
		}
		d.NameConcerned()
		d.Payload = nil
		page.Items = append(page.Items, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: deliveries: %w", translate(s, err))
	}
	return page, nil
}

// Delivery returns one delivery with its attempts and actions.
func (s *Store) Delivery(ctx context.Context, id string) (*kycd.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+deliveryFrom+`WHERE d.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery: %w", s.notFound(err, "delivery %s not found", id))
	}
	rows, err := s.pool.Query(ctx,
		`SELECT attempt, started_at, duration_ms, outcome, status_code, error FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery attempts: %w", translate(s, err))
	}
	defer rows.Close()
	for rows.Next() {
		var a kycd.Attempt
		var code *int
		var msg *string
		if err := rows.Scan(&a.N, &a.At, &a.DurationMS, &a.Outcome, &code, &msg); err != nil {
			return nil, fmt.Errorf("postgres: delivery attempts: %w", translate(s, err))
		}
		a.At = a.At.UTC()
		if code != nil {
			a.StatusCode = *code
		}
		a.Error = deref(msg)
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

// MoveDelivery gives a delivery to another configured sink, in one
// transaction with the note of who did it.
func (s *Store) MoveDelivery(ctx context.Context, id, sink, actor string, at time.Time) error {
	err := s.changeDelivery(ctx, id, at, func(tx pgx.Tx, d deliveryRow) error {
		if err := kycd.CheckMove(d.sink, sink); err != nil {
			return err
		}
		var configured bool
		switch err := tx.QueryRow(ctx, `SELECT configured FROM sinks WHERE name = $1 FOR SHARE`, sink).Scan(&configured); {
		case errors.Is(err, pgx.ErrNoRows), err == nil && !configured:
			return kycd.Errorf(kycd.EINVALID, "sink %q is not configured", sink)
		case err != nil:
			return err
		}
		var other bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE notification_id = $1 AND sink = $2 AND state <> 'dropped')`,
			d.notificationID, sink).Scan(&other); err != nil {
			return err
		}
		if other {
			return kycd.Errorf(kycd.ECONFLICT, "notification %s has a delivery to %s already; drop this one instead", d.notificationID, sink)
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET sink = $1, state = 'pending', next_attempt_at = $2, round_attempts = 0,
			round_started_at = $2, lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE id = $3`, sink, at, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO delivery_actions (delivery_id, at, actor, action, from_sink, to_sink) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, at, actor, kycd.ActionMove, d.sink, sink)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: move delivery: %w", translate(s, err))
	}
	return nil
}

// DropDelivery gives a delivery up, in one transaction with the note of who
// did it.
func (s *Store) DropDelivery(ctx context.Context, id, actor string, at time.Time) error {
	err := s.changeDelivery(ctx, id, at, func(tx pgx.Tx, d deliveryRow) error {
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = 'dropped', lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE id = $2`,
			at, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO delivery_actions (delivery_id, at, actor, action, from_sink) VALUES ($1, $2, $3, $4, $5)`,
			id, at, actor, kycd.ActionDrop, d.sink)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: drop delivery: %w", translate(s, err))
	}
	return nil
}

// deliveryRow is what an operator's change checks of a delivery.
type deliveryRow struct {
	sink, state, notificationID string
	leaseUntil                  *time.Time
}

// changeDelivery runs change on a delivery that an operator may change at
// at (kycd.CheckChange), in one transaction that holds the delivery's row,
// so a dispatcher's claim waits for it or skips it.
func (s *Store) changeDelivery(ctx context.Context, id string, at time.Time, change func(tx pgx.Tx, d deliveryRow) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var d deliveryRow
	err = tx.QueryRow(ctx, `SELECT sink, state, notification_id, lease_until FROM deliveries WHERE id = $1 FOR UPDATE`, id).
		Scan(&d.sink, &d.state, &d.notificationID, &d.leaseUntil)
	if err != nil {
		return s.notFound(err, "delivery %s not found", id)
	}
	leased := d.leaseUntil != nil && d.leaseUntil.After(at)
	if err := kycd.CheckChange(id, d.state, leased); err != nil {
		return err
	}
	if err := change(tx, d); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

const retrySQL = `UPDATE deliveries SET state = 'pending', next_attempt_at = $1, round_attempts = 0, round_started_at = $1,
	lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE `

// RetryDelivery makes a delivery due now, in a new round of attempts.
func (s *Store) RetryDelivery(ctx context.Context, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, retrySQL+`id = $2`, now, id)
	if err != nil {
		return fmt.Errorf("postgres: retry delivery: %w", translate(s, err))
	}
	if tag.RowsAffected() == 0 {
		return kycd.Errorf(kycd.ENOTFOUND, "delivery %s not found", id)
	}
	return nil
}

// RetryDeadDeliveries makes every dead delivery due now.
func (s *Store) RetryDeadDeliveries(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, retrySQL+`state = 'dead'`, now)
	if err != nil {
		return 0, fmt.Errorf("postgres: retry dead deliveries: %w", translate(s, err))
	}
	return int(tag.RowsAffected()), nil
}

// OutboxDepth counts deliveries by state.
func (s *Store) OutboxDepth(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM deliveries GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox depth: %w", translate(s, err))
	}
	defer rows.Close()
	out := map[string]int{kycd.DeliveryPending: 0, kycd.DeliveryDelivered: 0, kycd.DeliveryDead: 0, kycd.DeliveryDropped: 0}
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

// ResendNotification starts a new round of a notification to the sinks
// route names, in one transaction that holds the notification's row, so
// two resends of one notification take turns.
func (s *Store) ResendNotification(ctx context.Context, id string, route func(typ string) ([]string, error), at time.Time) ([]kycd.Resent, error) {
	out, err := s.resend(ctx, id, route, at)
	if err != nil {
		return nil, fmt.Errorf("postgres: resend notification: %w", translate(s, err))
	}
	return out, nil
}

func (s *Store) resend(ctx context.Context, id string, route func(typ string) ([]string, error), at time.Time) ([]kycd.Resent, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var typ string
	if err := tx.QueryRow(ctx, `SELECT type FROM notifications WHERE id = $1 FOR UPDATE`, id).Scan(&typ); err != nil {
		return nil, s.notFound(err, "notification %s not found", id)
	}
	sinks, err := route(typ)
	if err != nil {
		return nil, err
	}
	out := []kycd.Resent{}
	for _, sink := range sinks {
		var configured bool
		switch err := tx.QueryRow(ctx, `SELECT configured FROM sinks WHERE name = $1 FOR SHARE`, sink).Scan(&configured); {
		case errors.Is(err, pgx.ErrNoRows), err == nil && !configured:
			return nil, kycd.Errorf(kycd.EINVALID, "sink %q is not configured", sink)
		case err != nil:
			return nil, err
		}
		r := kycd.Resent{Sink: sink}
		switch err := tx.QueryRow(ctx, `SELECT id FROM deliveries WHERE notification_id = $1 AND sink = $2`, id, sink).Scan(&r.DeliveryID); {
		case errors.Is(err, pgx.ErrNoRows):
			did, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("delivery id: %w", err)
			}
			r.DeliveryID, r.Created = did.String(), true
			if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at)
				VALUES ($1, $2, $3, 'pending', $4, $4, $4, $4)`, r.DeliveryID, id, sink, at); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		default:
			if _, err := tx.Exec(ctx, retrySQL+`id = $2`, at, r.DeliveryID); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, tx.Commit(ctx)
}
