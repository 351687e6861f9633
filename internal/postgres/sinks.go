package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kycd/kycd"
)

// RegisterSinks records the configured sinks, and every other one as no
// longer configured, in one transaction.
func (s *Store) RegisterSinks(ctx context.Context, sinks []kycd.SinkInfo, at time.Time) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: register sinks: %w", translate(s, err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `UPDATE sinks SET configured = false WHERE configured`); err != nil {
		return fmt.Errorf("postgres: register sinks: %w", translate(s, err))
	}
	for _, k := range sinks {
		if _, err := tx.Exec(ctx, `
			INSERT INTO sinks (name, type, target, events, configured, registered_at) VALUES ($1, $2, $3, $4, true, $5)
			ON CONFLICT (name) DO UPDATE SET type = excluded.type, target = excluded.target, events = excluded.events,
				configured = true, registered_at = excluded.registered_at`,
			k.Name, k.Type, k.Target, strings.Join(k.Events, ","), at); err != nil {
			return fmt.Errorf("postgres: register sink %s: %w", k.Name, translate(s, err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: register sinks: %w", translate(s, err))
	}
	return nil
}

// Sinks lists the registered sinks and those only deliveries name.
func (s *Store) Sinks(ctx context.Context) ([]*kycd.SinkInfo, error) {
	byName := map[string]*kycd.SinkInfo{}
	rows, err := s.pool.Query(ctx, `SELECT name, type, target, events, configured, registered_at, paused_at, pause_reason, resumed_at, resumed_by FROM sinks`)
	if err != nil {
		return nil, fmt.Errorf("postgres: sinks: %w", translate(s, err))
	}
	defer rows.Close()
	for rows.Next() {
		var k kycd.SinkInfo
		var events string
		var paused, resumed *time.Time
		var reason, by *string
		if err := rows.Scan(&k.Name, &k.Type, &k.Target, &events, &k.Configured, &k.RegisteredAt, &paused, &reason, &resumed, &by); err != nil {
			return nil, fmt.Errorf("postgres: sinks: %w", translate(s, err))
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
		byName[k.Name] = &k
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: sinks: %w", translate(s, err))
	}
	counts, err := s.pool.Query(ctx, `SELECT sink, state, count(*) FROM deliveries WHERE state IN ('pending', 'dead') GROUP BY sink, state`)
	if err != nil {
		return nil, fmt.Errorf("postgres: sinks: %w", translate(s, err))
	}
	defer counts.Close()
	for counts.Next() {
		var name, state string
		var n int
		if err := counts.Scan(&name, &state, &n); err != nil {
			return nil, fmt.Errorf("postgres: sinks: %w", translate(s, err))
		}
		k, ok := byName[name]
		if !ok {
			k = &kycd.SinkInfo{Name: name}
			byName[name] = k
		}
		if state == kycd.DeliveryPending {
			k.Pending = n
		} else {
			k.Dead = n
		}
	}
	if err := counts.Err(); err != nil {
		return nil, fmt.Errorf("postgres: sinks: %w", translate(s, err))
	}
	out := make([]*kycd.SinkInfo, 0, len(byName))
	for _, k := range byName {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *kycd.SinkInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// PauseSink marks a sink paused unless it is already.
func (s *Store) PauseSink(ctx context.Context, name, reason string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO sinks (name, type, target, events, configured, registered_at, paused_at, pause_reason) VALUES ($1, '', '', '', true, $2, $2, $3)
		ON CONFLICT (name) DO UPDATE SET paused_at = coalesce(sinks.paused_at, excluded.paused_at),
			pause_reason = CASE WHEN sinks.paused_at IS NULL THEN excluded.pause_reason ELSE sinks.pause_reason END`,
		name, at, reason); err != nil {
		return fmt.Errorf("postgres: pause sink: %w", translate(s, err))
	}
	return nil
}

// ResumeSink lifts a sink's pause and makes its pending deliveries due.
func (s *Store) ResumeSink(ctx context.Context, name, actor string, at time.Time) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: resume sink: %w", translate(s, err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var paused *time.Time
	if err := tx.QueryRow(ctx, `SELECT paused_at FROM sinks WHERE name = $1 FOR UPDATE`, name).Scan(&paused); err != nil {
		return 0, fmt.Errorf("postgres: resume sink: %w", s.notFound(err, "sink %s not found", name))
	}
	if paused == nil {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE sinks SET paused_at = NULL, pause_reason = NULL, resumed_at = $1, resumed_by = $2 WHERE name = $3`,
		at, actor, name); err != nil {
		return 0, fmt.Errorf("postgres: resume sink: %w", translate(s, err))
	}
	tag, err := tx.Exec(ctx, `UPDATE deliveries SET next_attempt_at = $1, round_attempts = 0, round_started_at = $1, updated_at = $1
		WHERE sink = $2 AND state = 'pending'`, at, name)
	if err != nil {
		return 0, fmt.Errorf("postgres: resume sink: %w", translate(s, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: resume sink: %w", translate(s, err))
	}
	return int(tag.RowsAffected()), nil
}

// SwapSetting replaces a setting's value if it is still old.
func (s *Store) SwapSetting(ctx context.Context, key, old, value string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE settings SET value = $1 WHERE key = $2 AND value = $3`, value, key, old)
	if err != nil {
		return fmt.Errorf("postgres: swap setting: %w", translate(s, err))
	}
	if tag.RowsAffected() == 0 {
		return kycd.Errorf(kycd.ECONFLICT, "setting %s changed meanwhile", key)
	}
	return nil
}
