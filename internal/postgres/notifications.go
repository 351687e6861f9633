package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/kycd/kycd"
)

// Notifications returns the notifications among ids, oldest first, each
// with its deliveries. A delivery is created with its notification and
// keeps its creation time, so deliveries_created finds a notification's
// deliveries by that time: no index from notification to delivery costs
// the projection a write.
func (s *Store) Notifications(ctx context.Context, ids []string) ([]*kycd.SentNotification, error) {
	out := []*kycd.SentNotification{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, type, event_id, created_at, payload::text FROM notifications
		WHERE id = ANY($1) ORDER BY created_at, id`, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: notifications: %w", translate(s, err))
	}
	created := map[string]time.Time{}
	for rows.Next() {
		n := &kycd.SentNotification{Deliveries: []*kycd.Delivery{}}
		var payload string
		if err := rows.Scan(&n.ID, &n.Type, &n.EventID, &n.CreatedAt, &payload); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: notifications: %w", translate(s, err))
		}
		created[n.ID] = n.CreatedAt
		n.CreatedAt = n.CreatedAt.UTC()
		n.Payload = []byte(payload)
		out = append(out, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: notifications: %w", translate(s, err))
	}
	for _, n := range out {
		rows, err := s.pool.Query(ctx, `SELECT id FROM deliveries WHERE created_at = $1 AND notification_id = $2 ORDER BY id`, created[n.ID], n.ID)
		if err != nil {
			return nil, fmt.Errorf("postgres: notification deliveries: %w", translate(s, err))
		}
		var deliveries []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("postgres: notification deliveries: %w", translate(s, err))
			}
			deliveries = append(deliveries, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("postgres: notification deliveries: %w", translate(s, err))
		}
		for _, id := range deliveries {
			d, err := s.Delivery(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("postgres: notification deliveries: %w", err)
			}
			d.Payload = nil
			n.Deliveries = append(n.Deliveries, d)
		}
	}
	return out, nil
}
