package postgres

import (
	"context"
	"fmt"

	"github.com/kycd/kycd"
)

// foundQueries read the records of each kind whose id is in a range
// ($1 <= id < $2, COLLATE "C": byte order), each a range of an index on
// that id (the subjects' of both their rows and their sessions), by id, at
// most $3. Every query gives the columns FindIDs scans.
var foundQueries = []string{
	`SELECT 'session', id, '', status, '', subject_type, subject_id, '' FROM sessions WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3`,
	`SELECT 'subject', id, type, '', '', '', '', '' FROM (
		SELECT id, type FROM subjects WHERE id >= $1 AND id < $2
		UNION SELECT subject_id, subject_type FROM sessions WHERE subject_id >= $1 AND subject_id < $2) AS s ORDER BY id, type LIMIT $3`,
	`SELECT 'event', id, type, '', coalesce(session_id, ''), coalesce(subject_type, ''), coalesce(subject_id, ''), '' FROM events
		WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3`,
	`SELECT 'notification', n.id, n.type, '', coalesce(e.session_id, ''), coalesce(e.subject_type, ''), coalesce(e.subject_id, ''), ''
		FROM notifications n LEFT JOIN events e ON e.id = n.event_id WHERE n.id >= $1 AND n.id < $2 ORDER BY n.id LIMIT $3`,
	`SELECT 'delivery', d.id, n.type, d.state, '', '', '', d.sink FROM deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.id >= $1 AND d.id < $2 ORDER BY d.id LIMIT $3`,
	`SELECT 'quarantine', id, '', reason, '', '', '', '' FROM quarantine WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3`,
}

// FindIDs reads the records of every kind whose id is in r, at most
// r.Limit of each.
func (s *Store) FindIDs(ctx context.Context, r kycd.IDRange) ([]kycd.Found, error) {
	out := []kycd.Found{}
	for _, q := range foundQueries {
		rows, err := s.pool.Query(ctx, q, r.From, r.To, r.Limit)
		if err != nil {
			return nil, fmt.Errorf("postgres: find ids: %w", translate(s, err))
		}
		for rows.Next() {
			var f kycd.Found
			if err := rows.Scan(&f.Kind, &f.ID, &f.Type, &f.Status, &f.SessionID, &f.Subject.Type, &f.Subject.ID, &f.Sink); err != nil {
				rows.Close()
				return nil, fmt.Errorf("postgres: find ids: %w", translate(s, err))
			}
			out = append(out, f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("postgres: find ids: %w", translate(s, err))
		}
	}
	return out, nil
}
