package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// deliveryWhere is the condition on deliveryFrom's rows that q selects,
// its After, AfterID and Limit aside, with arg numbering its values.
func deliveryWhere(q kycd.DeliveryQuery, arg func(any) string) string {
	where := `true`
	if len(q.States) > 0 {
		where += ` AND d.state = ANY(` + arg(q.States) + `)`
	}
	if q.Sink != "" {
		where += ` AND d.sink = ` + arg(q.Sink)
	}
	if len(q.NotSinks) > 0 {
		where += ` AND NOT d.sink = ANY(` + arg(q.NotSinks) + `)`
	}
	if q.Type != "" {
		where += ` AND n.type = ` + arg(q.Type)
	}
	if q.SessionID != "" {
		where += ` AND n.payload ->> 'sessionId' = ` + arg(q.SessionID)
	}
	if q.SubjectID != "" {
		where += ` AND n.payload -> 'subject' ->> 'id' = ` + arg(q.SubjectID)
	}
	if !q.Since.IsZero() {
		where += ` AND d.created_at >= ` + arg(q.Since)
	}
	if !q.Until.IsZero() {
		where += ` AND d.created_at < ` + arg(q.Until)
	}
	if q.Error != "" {
		// strpos, not LIKE: the piece is plain text, % and _ included.
		where += ` AND strpos(lower(coalesce(d.last_error, '')), lower(` + arg(q.Error) + `)) > 0`
	}
	return where
}

// numbered is an arg for deliveryWhere over args.
func numbered(args *[]any) func(any) string {
	return func(v any) string {
		*args = append(*args, v)
		return fmt.Sprintf("$%d", len(*args))
	}
}

// DeliverySummary counts the deliveries q selects by sink and last error.
func (s *Store) DeliverySummary(ctx context.Context, q kycd.DeliveryQuery) ([]kycd.DeliveryGroup, error) {
	var args []any
	rows, err := s.pool.Query(ctx, `SELECT d.sink, coalesce(d.last_error, '') AS e, count(*)::int AS c`+deliveryFrom+
		`WHERE `+deliveryWhere(q, numbered(&args))+` GROUP BY d.sink, e ORDER BY c DESC, d.sink, e`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery summary: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (kycd.DeliveryGroup, error) {
		var g kycd.DeliveryGroup
		err := row.Scan(&g.Sink, &g.LastError, &g.Count)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery summary: %w", translate(s, err))
	}
	return out, nil
}

// MatchingDeliveries reads the deliveries q selects, locked (FOR UPDATE)
// until the transaction ends.
func (t *tx) MatchingDeliveries(ctx context.Context, q kycd.DeliveryQuery) ([]*kycd.DeliveryRow, error) {
	var args []any
	rows, err := t.tx.Query(ctx, `SELECT d.id, d.notification_id, d.sink, d.state, d.lease_until`+deliveryFrom+
		`WHERE `+deliveryWhere(q, numbered(&args))+` ORDER BY d.created_at, d.id FOR UPDATE OF d`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: matching deliveries: %w", translate(t.s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.DeliveryRow, error) {
		var d kycd.DeliveryRow
		var lease *time.Time
		if err := row.Scan(&d.ID, &d.NotificationID, &d.Sink, &d.State, &lease); err != nil {
			return nil, err
		}
		if lease != nil {
			d.LeaseUntil = lease.UTC()
		}
		return &d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: matching deliveries: %w", translate(t.s, err))
	}
	return out, nil
}
