package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kycd/kycd"
)

// deliveryWhere is the condition on deliveryFrom's rows that q selects,
// its After, AfterID and Limit aside, appending its values to args.
func deliveryWhere(q kycd.DeliveryQuery, args *[]any) string {
	where := `1 = 1`
	arg := func(v any) string {
		*args = append(*args, v)
		return `?`
	}
	in := func(column string, values []string) string {
		for _, v := range values {
			*args = append(*args, v)
		}
		return column + ` IN (` + placeholders(len(values)) + `)`
	}
	if len(q.States) > 0 {
		where += ` AND ` + in(`d.state`, q.States)
	}
	if q.Sink != "" {
		where += ` AND d.sink = ` + arg(q.Sink)
	}
	if len(q.NotSinks) > 0 {
		where += ` AND NOT ` + in(`d.sink`, q.NotSinks)
	}
	if q.Type != "" {
		where += ` AND n.type = ` + arg(q.Type)
	}
	// The payload is stored as a BLOB, which SQLite's JSON functions would
	// read as JSONB: cast to text first.
	if q.SessionID != "" {
		where += ` AND json_extract(CAST(n.payload AS TEXT), '$.sessionId') = ` + arg(q.SessionID)
	}
	if q.SubjectID != "" {
		where += ` AND json_extract(CAST(n.payload AS TEXT), '$.subject.id') = ` + arg(q.SubjectID)
	}
	if !q.Since.IsZero() {
		where += ` AND d.created_at >= ` + arg(formatTime(q.Since))
	}
	if !q.Until.IsZero() {
		where += ` AND d.created_at < ` + arg(formatTime(q.Until))
	}
	if q.Error != "" {
		// instr, not LIKE: the piece is plain text, % and _ included.
		where += ` AND instr(lower(coalesce(d.last_error, '')), lower(` + arg(q.Error) + `)) > 0`
	}
	return where
}

// DeliverySummary counts the deliveries q selects by sink and last error.
func (s *Store) DeliverySummary(ctx context.Context, q kycd.DeliveryQuery) ([]kycd.DeliveryGroup, error) {
	var args []any
	query := `SELECT d.sink, coalesce(d.last_error, '') AS e, count(*) AS c` + deliveryFrom + `WHERE ` + deliveryWhere(q, &args) +
		` GROUP BY d.sink, e ORDER BY c DESC, d.sink, e`
	out := []kycd.DeliveryGroup{}
	err := queryRows(ctx, s.r, query, args, func(rows *sql.Rows) error {
		var g kycd.DeliveryGroup
		err := rows.Scan(&g.Sink, &g.LastError, &g.Count)
		out = append(out, g)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: delivery summary: %w", translate(s, err))
	}
	return out, nil
}

// MatchingDeliveries reads the deliveries q selects; the write
// connection's transaction holds them against every other writer.
func (t *tx) MatchingDeliveries(ctx context.Context, q kycd.DeliveryQuery) ([]*kycd.DeliveryRow, error) {
	var args []any
	query := `SELECT d.id, d.notification_id, d.sink, d.state, d.lease_until` + deliveryFrom + `WHERE ` + deliveryWhere(q, &args) +
		` ORDER BY d.created_at, d.id`
	var out []*kycd.DeliveryRow
	err := queryRows(ctx, t.tx, query, args, func(rows *sql.Rows) error {
		var d kycd.DeliveryRow
		var lease sql.NullString
		if err := rows.Scan(&d.ID, &d.NotificationID, &d.Sink, &d.State, &lease); err != nil {
			return err
		}
		var err error
		d.LeaseUntil, err = parseNullTime(lease)
		out = append(out, &d)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: matching deliveries: %w", translate(t.s, err))
	}
	return out, nil
}
