package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// RegisteredSinks reads every registered sink.
func (s *Store) RegisteredSinks(ctx context.Context) ([]*kycd.SinkInfo, error) {
	out, err := registeredSinks(ctx, s.pool, "", "")
	if err != nil {
		return nil, fmt.Errorf("postgres: sinks: %w", translate(s, err))
	}
	return out, nil
}

// WaitingDeliveries counts the pending and dead deliveries by sink.
func (s *Store) WaitingDeliveries(ctx context.Context) ([]kycd.SinkCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT sink, state, count(*) FROM deliveries WHERE state IN ('pending', 'dead') GROUP BY sink, state`)
	if err != nil {
		return nil, fmt.Errorf("postgres: waiting deliveries: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[kycd.SinkCount])
	if err != nil {
		return nil, fmt.Errorf("postgres: waiting deliveries: %w", translate(s, err))
	}
	return out, nil
}

const sinkColumns = `name, type, target, events, coalesce((SELECT o.ordering FROM sink_orderings o WHERE o.name = sinks.name), 'session'), configured, registered_at, paused_at, pause_reason, resumed_at, resumed_by`

// registeredSinks reads the sinks table, one row by name or whole, with
// lock ("" or a locking clause) on the rows it reads.
func registeredSinks(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, name, lock string) ([]*kycd.SinkInfo, error) {
	rows, err := q.Query(ctx, `SELECT `+sinkColumns+` FROM sinks WHERE $1 = '' OR name = $1 `+lock, name)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.SinkInfo, error) {
		var k kycd.SinkInfo
		var events string
		var paused, resumed *time.Time
		var reason, by *string
		if err := row.Scan(&k.Name, &k.Type, &k.Target, &events, &k.Order, &k.Configured, &k.RegisteredAt, &paused, &reason, &resumed, &by); err != nil {
			return nil, err
		}
		if events != "" {
			k.Events = strings.Split(events, ",")
		}
		k.RegisteredAt = k.RegisteredAt.UTC()
		if paused != nil {
			k.PausedAt = paused.UTC()
		}
		if resumed != nil {
			k.ResumedAt = resumed.UTC()
		}
		k.PauseReason, k.ResumedBy = deref(reason), deref(by)
		return &k, nil
	})
}

// LockSink reads a registered sink and locks its row.
func (t *tx) LockSink(ctx context.Context, name string) (*kycd.SinkInfo, error) {
	sinks, err := registeredSinks(ctx, t.tx, name, "FOR UPDATE")
	switch {
	case err != nil:
		return nil, fmt.Errorf("postgres: lock sink: %w", translate(t.s, err))
	case len(sinks) == 0 || name == "":
		return nil, kycd.Errorf(kycd.ENOTFOUND, "sink %s not found", name)
	}
	return sinks[0], nil
}

// RegisteredSinks reads every registered sink, and keeps a registration
// from changing them (FOR SHARE) until the transaction ends.
func (t *tx) RegisteredSinks(ctx context.Context) ([]*kycd.SinkInfo, error) {
	sinks, err := registeredSinks(ctx, t.tx, "", "FOR SHARE")
	if err != nil {
		return nil, fmt.Errorf("postgres: registered sinks: %w", translate(t.s, err))
	}
	return sinks, nil
}

// PutSink records a sink, keeping its pause and resume, and its order
// unless k names one.
func (t *tx) PutSink(ctx context.Context, k kycd.SinkInfo) error {
	if _, err := t.tx.Exec(ctx, `
		INSERT INTO sinks (name, type, target, events, configured, registered_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO UPDATE SET type = excluded.type, target = excluded.target, events = excluded.events,
			configured = excluded.configured, registered_at = excluded.registered_at`,
		k.Name, k.Type, k.Target, strings.Join(k.Events, ","), k.Configured, k.RegisteredAt); err != nil {
		return fmt.Errorf("postgres: put sink %s: %w", k.Name, translate(t.s, err))
	}
	if k.Order == "" {
		return nil // kept as it is
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO sink_orderings (name, ordering) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET ordering = excluded.ordering`, k.Name, k.Order); err != nil {
		return fmt.Errorf("postgres: put sink %s: %w", k.Name, translate(t.s, err))
	}
	return nil
}

// UnconfigureSinks marks every sink not configured.
func (t *tx) UnconfigureSinks(ctx context.Context) error {
	if _, err := t.tx.Exec(ctx, `UPDATE sinks SET configured = false WHERE configured`); err != nil {
		return fmt.Errorf("postgres: unconfigure sinks: %w", translate(t.s, err))
	}
	return nil
}

// SetSinkPause sets or clears a sink's pause.
func (t *tx) SetSinkPause(ctx context.Context, name string, at time.Time, reason string) error {
	var ts *time.Time
	if !at.IsZero() {
		ts = &at
	}
	if _, err := t.tx.Exec(ctx, `UPDATE sinks SET paused_at = $1, pause_reason = $2 WHERE name = $3`, ts, nullString(reason), name); err != nil {
		return fmt.Errorf("postgres: set sink pause: %w", translate(t.s, err))
	}
	return nil
}

// SetSinkResumed notes a sink's resume.
func (t *tx) SetSinkResumed(ctx context.Context, name, by string, at time.Time) error {
	if _, err := t.tx.Exec(ctx, `UPDATE sinks SET resumed_at = $1, resumed_by = $2 WHERE name = $3`, at, by, name); err != nil {
		return fmt.Errorf("postgres: set sink resumed: %w", translate(t.s, err))
	}
	return nil
}
