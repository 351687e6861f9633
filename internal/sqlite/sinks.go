package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kycd/kycd"
)

// RegisteredSinks reads every registered sink.
func (s *Store) RegisteredSinks(ctx context.Context) ([]*kycd.SinkInfo, error) {
	out, err := registeredSinks(ctx, s.r, "")
	if err != nil {
		return nil, fmt.Errorf("sqlite: sinks: %w", translate(s, err))
	}
	return out, nil
}

// WaitingDeliveries counts the pending and dead deliveries by sink.
func (s *Store) WaitingDeliveries(ctx context.Context) ([]kycd.SinkCount, error) {
	var out []kycd.SinkCount
	err := queryRows(ctx, s.r, `SELECT sink, state, count(*) FROM deliveries WHERE state IN ('pending', 'dead') GROUP BY sink, state`,
		nil, func(rows *sql.Rows) error {
			var c kycd.SinkCount
			err := rows.Scan(&c.Sink, &c.State, &c.N)
			out = append(out, c)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: waiting deliveries: %w", translate(s, err))
	}
	return out, nil
}

const sinkColumns = `name, type, target, events, coalesce((SELECT o.ordering FROM sink_orderings o WHERE o.name = sinks.name), 'session'), configured, registered_at, paused_at, pause_reason, resumed_at, resumed_by`

// registeredSinks reads the sinks table, where (one row by name) or
// whole.
func registeredSinks(ctx context.Context, q queryer, name string) ([]*kycd.SinkInfo, error) {
	var out []*kycd.SinkInfo
	err := queryRows(ctx, q, `SELECT `+sinkColumns+` FROM sinks WHERE ? = '' OR name = ?`, []any{name, name}, func(rows *sql.Rows) error {
		var k kycd.SinkInfo
		var events, registered string
		var paused, reason, resumed, by sql.NullString
		if err := rows.Scan(&k.Name, &k.Type, &k.Target, &events, &k.Order, &k.Configured, &registered, &paused, &reason, &resumed, &by); err != nil {
			return err
		}
		if events != "" {
			k.Events = strings.Split(events, ",")
		}
		var err error
		if k.RegisteredAt, err = parseTime(registered); err != nil {
			return err
		}
		if k.PausedAt, err = parseNullTime(paused); err != nil {
			return err
		}
		if k.ResumedAt, err = parseNullTime(resumed); err != nil {
			return err
		}
		k.PauseReason, k.ResumedBy = reason.String, by.String
		out = append(out, &k)
		return nil
	})
	return out, err
}

// LockSink reads a registered sink; the write connection's transaction
// holds it.
func (t *tx) LockSink(ctx context.Context, name string) (*kycd.SinkInfo, error) {
	sinks, err := registeredSinks(ctx, t.tx, name)
	switch {
	case err != nil:
		return nil, fmt.Errorf("sqlite: lock sink: %w", translate(t.s, err))
	case len(sinks) == 0 || name == "":
		return nil, kycd.Errorf(kycd.ENOTFOUND, "sink %s not found", name)
	}
	return sinks[0], nil
}

// RegisteredSinks reads every registered sink.
func (t *tx) RegisteredSinks(ctx context.Context) ([]*kycd.SinkInfo, error) {
	sinks, err := registeredSinks(ctx, t.tx, "")
	if err != nil {
		return nil, fmt.Errorf("sqlite: registered sinks: %w", translate(t.s, err))
	}
	return sinks, nil
}

// PutSink records a sink, keeping its pause and resume, and its order
// unless k names one.
func (t *tx) PutSink(ctx context.Context, k kycd.SinkInfo) error {
	if _, err := t.tx.ExecContext(ctx, `
		INSERT INTO sinks (name, type, target, events, configured, registered_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET type = excluded.type, target = excluded.target, events = excluded.events,
			configured = excluded.configured, registered_at = excluded.registered_at`,
		k.Name, k.Type, k.Target, strings.Join(k.Events, ","), k.Configured, formatTime(k.RegisteredAt)); err != nil {
		return fmt.Errorf("sqlite: put sink %s: %w", k.Name, translate(t.s, err))
	}
	if k.Order == "" {
		return nil // kept as it is
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO sink_orderings (name, ordering) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET ordering = excluded.ordering`, k.Name, k.Order); err != nil {
		return fmt.Errorf("sqlite: put sink %s: %w", k.Name, translate(t.s, err))
	}
	return nil
}

// UnconfigureSinks marks every sink not configured.
func (t *tx) UnconfigureSinks(ctx context.Context) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE sinks SET configured = 0 WHERE configured`); err != nil {
		return fmt.Errorf("sqlite: unconfigure sinks: %w", translate(t.s, err))
	}
	return nil
}

// SetSinkPause sets or clears a sink's pause.
func (t *tx) SetSinkPause(ctx context.Context, name string, at time.Time, reason string) error {
	var ts sql.NullString
	if !at.IsZero() {
		ts = sql.NullString{String: formatTime(at), Valid: true}
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE sinks SET paused_at = ?, pause_reason = ? WHERE name = ?`, ts, nullString(reason), name); err != nil {
		return fmt.Errorf("sqlite: set sink pause: %w", translate(t.s, err))
	}
	return nil
}

// SetSinkResumed notes a sink's resume.
func (t *tx) SetSinkResumed(ctx context.Context, name, by string, at time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE sinks SET resumed_at = ?, resumed_by = ? WHERE name = ?`, formatTime(at), by, name); err != nil {
		return fmt.Errorf("sqlite: set sink resumed: %w", translate(t.s, err))
	}
	return nil
}
