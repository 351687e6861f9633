package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/kycd/kycd"
)

// foundQueries read the records of each kind whose id is in a range, each
// a range of an index on that id (the subjects' of both their rows and
// their sessions), by id, bounded: arguments from, to, limit (the
// subjects' from, to, from, to, limit). Every query gives the columns of
// scanFound.
var foundQueries = []string{
	`SELECT 'session', id, '', status, '', subject_type, subject_id, '' FROM sessions WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`,
	`SELECT 'subject', id, type, '', '', '', '', '' FROM (
		SELECT id, type FROM subjects WHERE id >= ? AND id < ?
		UNION SELECT subject_id, subject_type FROM sessions WHERE subject_id >= ? AND subject_id < ?) ORDER BY id, type LIMIT ?`,
	`SELECT 'event', id, type, '', coalesce(session_id, ''), coalesce(subject_type, ''), coalesce(subject_id, ''), '' FROM events
		WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`,
	`SELECT 'notification', n.id, n.type, '', coalesce(e.session_id, ''), coalesce(e.subject_type, ''), coalesce(e.subject_id, ''), ''
		FROM notifications n LEFT JOIN events e ON e.id = n.event_id WHERE n.id >= ? AND n.id < ? ORDER BY n.id LIMIT ?`,
	`SELECT 'delivery', d.id, n.type, d.state, '', '', '', d.sink FROM deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.id >= ? AND d.id < ? ORDER BY d.id LIMIT ?`,
	`SELECT 'quarantine', id, '', reason, '', '', '', '' FROM quarantine WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`,
}

// FindIDs reads the records of every kind whose id is in r, at most
// r.Limit of each.
func (s *Store) FindIDs(ctx context.Context, r kycd.IDRange) ([]kycd.Found, error) {
	out := []kycd.Found{}
	for _, q := range foundQueries {
		args := []any{r.From, r.To, r.Limit}
		if q == foundQueries[1] {
			args = []any{r.From, r.To, r.From, r.To, r.Limit}
		}
		err := queryRows(ctx, s.r, q, args, func(rows *sql.Rows) error {
			var f kycd.Found
			err := rows.Scan(&f.Kind, &f.ID, &f.Type, &f.Status, &f.SessionID, &f.Subject.Type, &f.Subject.ID, &f.Sink)
			out = append(out, f)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("sqlite: find ids: %w", translate(s, err))
		}
	}
	return out, nil
}
