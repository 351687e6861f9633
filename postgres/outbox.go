package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

const deliveryColumns = `d.id, d.notification_id, n.type, d.sink, d.state, d.attempts, d.round_attempts, d.round_started_at,
	d.next_attempt_at, d.last_error, d.created_at, d.updated_at, n.payload::text`

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

// Deliveries lists deliveries, oldest first.
func (s *Store) Deliveries(ctx context.Context, state string, limit int) ([]*kycd.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+`
		FROM deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE ($1 = '' OR d.state = $1) ORDER BY d.created_at, d.id LIMIT $2`, state, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: deliveries: %w", translate(s, err))
	}
	defer rows.Close()
	out := []*kycd.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: deliveries: %w", translate(s, err))
		}
		d.Payload = nil
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: deliveries: %w", translate(s, err))
	}
	return out, nil
}

// Delivery returns one delivery with its attempts.
func (s *Store) Delivery(ctx context.Context, id string) (*kycd.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+`
		FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = $1`, id))
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
	return d, nil
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
	out := map[string]int{kycd.DeliveryPending: 0, kycd.DeliveryDelivered: 0, kycd.DeliveryDead: 0}
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
