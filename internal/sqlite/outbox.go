package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// deliveryColumns are read from deliveryFrom: a delivery with its
// notification and its sink's flags. A delivery whose sink has no row is
// orphaned as much as one whose sink is no longer configured.
const (
	deliveryColumns = `d.id, d.notification_id, n.type, d.sink, d.state, d.attempts, d.round_attempts, d.round_started_at,
	d.next_attempt_at, d.last_error, d.created_at, d.updated_at, n.payload,
	d.state IN ('pending', 'dead') AND coalesce(s.configured, 0) = 0, d.state = 'pending' AND s.paused_at IS NOT NULL`
	deliveryFrom = ` FROM deliveries d JOIN notifications n ON n.id = d.notification_id LEFT JOIN sinks s ON s.name = d.sink `
	orphaned     = `d.state IN ('pending', 'dead') AND coalesce(s.configured, 0) = 0`
	// notPaused keeps the deliveries of a paused sink from being claimed.
	notPaused = `NOT EXISTS (SELECT 1 FROM sinks p WHERE p.name = d.sink AND p.paused_at IS NOT NULL)`
)

func scanDelivery(row interface{ Scan(...any) error }) (*kycd.Delivery, error) {
	var d kycd.Delivery
	var roundStarted, next, created, updated string
	var lastError sql.NullString
	var payload []byte
	if err := row.Scan(&d.ID, &d.NotificationID, &d.NotificationType, &d.Sink, &d.State, &d.AttemptCount, &d.RoundAttempts,
		&roundStarted, &next, &lastError, &created, &updated, &payload, &d.Orphaned, &d.SinkPaused); err != nil {
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

// ClaimDeliveries leases due deliveries. The write connection's IMMEDIATE
// transaction makes the select-then-update atomic against every other
// writer, in this process or another.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, sinks []string, now time.Time, lease time.Duration, limit int) (_ []*kycd.Delivery, err error) {
	if len(sinks) == 0 || limit <= 0 {
		return nil, nil
	}
	ts := formatTime(now)
	args := []any{ts, ts}
	for _, sink := range sinks {
		args = append(args, sink)
	}
	const due = `d.state = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?) AND ` + notPaused + ` AND d.sink IN (`
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
			tx.Rollback()
		}
	}()
	rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+deliveryFrom+`
		WHERE `+due+placeholders(len(sinks))+`)
		ORDER BY d.next_attempt_at, d.id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
	}
	var out []*kycd.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: claim deliveries: %w", translate(s, err))
		}
		out = append(out, d)
	}
	rows.Close()
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
			tx.Rollback()
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
	insert, err := tx.PrepareContext(ctx,
		`INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
	}
	errs := make([]error, len(recs))
	for i, r := range recs {
		a, next := r.Attempt, r.Next
		var n int
		err := update.QueryRowContext(ctx,
			next.State, formatTime(next.NextAttemptAt), nullString(next.Error), formatTime(a.At.Add(time.Duration(a.DurationMS)*time.Millisecond)), r.DeliveryID, owner,
		).Scan(&n)
		if err == sql.ErrNoRows {
			errs[i] = kycd.Errorf(kycd.ECONFLICT, "delivery %s is no longer leased by %s", r.DeliveryID, owner)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
		}
		if _, err := insert.ExecContext(ctx,
			r.DeliveryID, n, formatTime(a.At), a.DurationMS, a.Outcome, sql.NullInt64{Int64: int64(a.StatusCode), Valid: a.StatusCode != 0}, nullString(a.Error),
		); err != nil {
			return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: record attempts: %w", translate(s, err))
	}
	return errs, nil
}

// Deliveries lists deliveries by creation, oldest first, a page at a time.
func (s *Store) Deliveries(ctx context.Context, f kycd.DeliveryFilter) (*kycd.DeliveryPage, error) {
	limit := kycd.PageLimit(f.Limit)
	q := `SELECT ` + deliveryColumns + deliveryFrom + `WHERE 1 = 1`
	var args []any
	if f.State != "" {
		q += ` AND d.state = ?`
		args = append(args, f.State)
	}
	if f.Sink != "" {
		q += ` AND d.sink = ?`
		args = append(args, f.Sink)
	}
	if f.Orphaned {
		q += ` AND ` + orphaned
	}
	if f.Cursor != "" {
		t, id, err := kycd.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		at := formatTime(t)
		q += ` AND (d.created_at > ? OR (d.created_at = ? AND d.id > ?))`
		args = append(args, at, at, id)
	}
	q += ` ORDER BY d.created_at, d.id LIMIT ?`
	args = append(args, limit+1)
	page := &kycd.DeliveryPage{Items: []*kycd.Delivery{}}
	err := queryRows(ctx, s.r, q, args, func(rows *sql.Rows) error {
		d, err := scanDelivery(rows)
		if err != nil {
			return err
		}
		if len(page.Items) == limit {
			last := page.Items[limit-1]
			page.NextCursor = kycd.EncodeCursor(last.CreatedAt, last.ID)
			return nil
		}
		d.NameConcerned()
		d.Payload = nil
		page.Items = append(page.Items, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: deliveries: %w", translate(s, err))
	}
	return page, nil
}

// Delivery returns one delivery with its attempts and actions.
func (s *Store) Delivery(ctx context.Context, id string) (*kycd.Delivery, error) {
	d, err := scanDelivery(s.r.QueryRowContext(ctx, `SELECT `+deliveryColumns+deliveryFrom+`WHERE d.id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: delivery: %w", s.notFound(err, "delivery %s not found", id))
	}
	err = queryRows(ctx, s.r, `SELECT attempt, started_at, duration_ms, outcome, status_code, error FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt`,
		[]any{id}, func(rows *sql.Rows) error {
			var a kycd.Attempt
			var at string
			var code sql.NullInt64
			var msg sql.NullString
			if err := rows.Scan(&a.N, &at, &a.DurationMS, &a.Outcome, &code, &msg); err != nil {
				return err
			}
			var err error
			if a.At, err = parseTime(at); err != nil {
				return err
			}
			a.StatusCode, a.Error = int(code.Int64), msg.String
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

// MoveDelivery gives a delivery to another configured sink, in one
// transaction with the note of who did it.
func (s *Store) MoveDelivery(ctx context.Context, id, sink, actor string, at time.Time) error {
	err := s.changeDelivery(ctx, id, at, func(tx *sql.Tx, d deliveryRow) error {
		if err := kycd.CheckMove(d.sink, sink); err != nil {
			return err
		}
		var configured bool
		switch err := tx.QueryRowContext(ctx, `SELECT configured FROM sinks WHERE name = ?`, sink).Scan(&configured); {
		case errors.Is(err, sql.ErrNoRows), err == nil && !configured:
			return kycd.Errorf(kycd.EINVALID, "sink %q is not configured", sink)
		case err != nil:
			return err
		}
		var other int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE notification_id = ? AND sink = ? AND state <> 'dropped'`,
			d.notificationID, sink).Scan(&other); err != nil {
			return err
		}
		if other > 0 {
			return kycd.Errorf(kycd.ECONFLICT, "notification %s has a delivery to %s already; drop this one instead", d.notificationID, sink)
		}
		ts := formatTime(at)
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET sink = ?, state = 'pending', next_attempt_at = ?, round_attempts = 0,
			round_started_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`, sink, ts, ts, ts, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO delivery_actions (delivery_id, at, actor, action, from_sink, to_sink) VALUES (?, ?, ?, ?, ?, ?)`,
			id, ts, actor, kycd.ActionMove, d.sink, sink)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: move delivery: %w", translate(s, err))
	}
	return nil
}

// DropDelivery gives a delivery up, in one transaction with the note of who
// did it.
func (s *Store) DropDelivery(ctx context.Context, id, actor string, at time.Time) error {
	err := s.changeDelivery(ctx, id, at, func(tx *sql.Tx, d deliveryRow) error {
		ts := formatTime(at)
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'dropped', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`,
			ts, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO delivery_actions (delivery_id, at, actor, action, from_sink) VALUES (?, ?, ?, ?, ?)`,
			id, ts, actor, kycd.ActionDrop, d.sink)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: drop delivery: %w", translate(s, err))
	}
	return nil
}

// deliveryRow is what an operator's change checks of a delivery.
type deliveryRow struct {
	sink, state, notificationID string
	leaseUntil                  sql.NullString
}

// changeDelivery runs change on a delivery that an operator may change at
// at (kycd.CheckChange), in one write transaction.
func (s *Store) changeDelivery(ctx context.Context, id string, at time.Time, change func(tx *sql.Tx, d deliveryRow) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var d deliveryRow
	err = tx.QueryRowContext(ctx, `SELECT sink, state, notification_id, lease_until FROM deliveries WHERE id = ?`, id).
		Scan(&d.sink, &d.state, &d.notificationID, &d.leaseUntil)
	if err != nil {
		return s.notFound(err, "delivery %s not found", id)
	}
	leased := d.leaseUntil.Valid && d.leaseUntil.String > formatTime(at)
	if err := kycd.CheckChange(id, d.state, leased); err != nil {
		return err
	}
	if err := change(tx, d); err != nil {
		return err
	}
	return tx.Commit()
}

const retrySQL = `UPDATE deliveries SET state = 'pending', next_attempt_at = ?, round_attempts = 0, round_started_at = ?,
	lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE `

// RetryDelivery makes a delivery due now, in a new round of attempts.
func (s *Store) RetryDelivery(ctx context.Context, id string, now time.Time) error {
	ts := formatTime(now)
	r, err := s.w.ExecContext(ctx, retrySQL+`id = ?`, ts, ts, ts, id)
	if err != nil {
		return fmt.Errorf("sqlite: retry delivery: %w", translate(s, err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return kycd.Errorf(kycd.ENOTFOUND, "delivery %s not found", id)
	}
	return nil
}

// RetryDeadDeliveries makes every dead delivery due now.
func (s *Store) RetryDeadDeliveries(ctx context.Context, now time.Time) (int, error) {
	ts := formatTime(now)
	r, err := s.w.ExecContext(ctx, retrySQL+`state = 'dead'`, ts, ts, ts)
	if err != nil {
		return 0, fmt.Errorf("sqlite: retry dead deliveries: %w", translate(s, err))
	}
	n, _ := r.RowsAffected()
	return int(n), nil
}

// OutboxDepth counts deliveries by state.
func (s *Store) OutboxDepth(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, count(*) FROM deliveries GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: outbox depth: %w", translate(s, err))
	}
	defer rows.Close()
	out := map[string]int{kycd.DeliveryPending: 0, kycd.DeliveryDelivered: 0, kycd.DeliveryDead: 0, kycd.DeliveryDropped: 0}
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

// ResendNotification starts a new round of a notification to the sinks
// route names, in one write transaction.
func (s *Store) ResendNotification(ctx context.Context, id string, route func(typ string) ([]string, error), at time.Time) ([]kycd.Resent, error) {
	out, err := s.resend(ctx, id, route, at)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resend notification: %w", translate(s, err))
	}
	return out, nil
}

func (s *Store) resend(ctx context.Context, id string, route func(typ string) ([]string, error), at time.Time) ([]kycd.Resent, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var typ string
	if err := tx.QueryRowContext(ctx, `SELECT type FROM notifications WHERE id = ?`, id).Scan(&typ); err != nil {
		return nil, s.notFound(err, "notification %s not found", id)
	}
	sinks, err := route(typ)
	if err != nil {
		return nil, err
	}
	ts := formatTime(at)
	out := []kycd.Resent{}
	for _, sink := range sinks {
		var configured bool
		switch err := tx.QueryRowContext(ctx, `SELECT configured FROM sinks WHERE name = ?`, sink).Scan(&configured); {
		case errors.Is(err, sql.ErrNoRows), err == nil && !configured:
			return nil, kycd.Errorf(kycd.EINVALID, "sink %q is not configured", sink)
		case err != nil:
			return nil, err
		}
		r := kycd.Resent{Sink: sink}
		switch err := tx.QueryRowContext(ctx, `SELECT id FROM deliveries WHERE notification_id = ? AND sink = ?`, id, sink).Scan(&r.DeliveryID); {
		case errors.Is(err, sql.ErrNoRows):
			did, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("delivery id: %w", err)
			}
			r.DeliveryID, r.Created = did.String(), true
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, notification_id, sink, state, next_attempt_at, round_started_at, created_at, updated_at)
				VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)`, r.DeliveryID, id, sink, ts, ts, ts, ts); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		default:
			if _, err := tx.ExecContext(ctx, retrySQL+`id = ?`, ts, ts, ts, r.DeliveryID); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, tx.Commit()
}
