package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/kycd/kycd"
)

// Notifications returns the notifications among ids, oldest first, each
// with its deliveries. A delivery is created with its notification and
// keeps its creation time, so deliveries_created finds a notification's
// deliveries by that time: no index from notification to delivery costs
// the projection a write.
func (s *Store) Notifications(ctx context.Context, ids []string) ([]*kycd.SentNotification, error) {
	out := []*kycd.SentNotification{}
	created := map[string]string{}
	for chunk := range slices.Chunk(ids, maxIn) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		err := queryRows(ctx, s.r, `SELECT id, type, event_id, created_at, payload FROM notifications WHERE id IN (`+placeholders(len(chunk))+`)`,
			args, func(rows *sql.Rows) error {
				n := &kycd.SentNotification{Deliveries: []*kycd.Delivery{}}
				var at string
				if err := rows.Scan(&n.ID, &n.Type, &n.EventID, &at, &n.Payload); err != nil {
					return err
				}
				var err error
				if n.CreatedAt, err = parseTime(at); err != nil {
					return err
				}
				created[n.ID] = at
				out = append(out, n)
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("sqlite: notifications: %w", translate(s, err))
		}
	}
	slices.SortFunc(out, func(a, b *kycd.SentNotification) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, n := range out {
		var deliveries []string
		err := queryRows(ctx, s.r, `SELECT id FROM deliveries WHERE created_at = ? AND notification_id = ? ORDER BY id`,
			[]any{created[n.ID], n.ID}, func(rows *sql.Rows) error {
				var id string
				err := rows.Scan(&id)
				deliveries = append(deliveries, id)
				return err
			})
		if err != nil {
			return nil, fmt.Errorf("sqlite: notification deliveries: %w", translate(s, err))
		}
		for _, id := range deliveries {
			d, err := s.Delivery(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("sqlite: notification deliveries: %w", err)
			}
			d.Payload = nil
			n.Deliveries = append(n.Deliveries, d)
		}
	}
	return out, nil
}
