package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kycd/kycd"
)

// RegisterSinks records the configured sinks, and every other one as no
// longer configured, in one transaction.
func (s *Store) RegisterSinks(ctx context.Context, sinks []kycd.SinkInfo, at time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: register sinks: %w", translate(s, err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE sinks SET configured = 0`); err != nil {
		return fmt.Errorf("sqlite: register sinks: %w", translate(s, err))
	}
	for _, k := range sinks {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO sinks (name, type, target, events, configured, registered_at) VALUES (?, ?, ?, ?, 1, ?)
			ON CONFLICT (name) DO UPDATE SET type = excluded.type, target = excluded.target, events = excluded.events,
				configured = 1, registered_at = excluded.registered_at`,
			k.Name, k.Type, k.Target, strings.Join(k.Events, ","), formatTime(at)); err != nil {
			return fmt.Errorf("sqlite: register sink %s: %w", k.Name, translate(s, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: register sinks: %w", translate(s, err))
	}
	return nil
}

// Sinks lists the registered sinks and those only deliveries name.
func (s *Store) Sinks(ctx context.Context) ([]*kycd.SinkInfo, error) {
	byName := map[string]*kycd.SinkInfo{}
	err := queryRows(ctx, s.r, `SELECT name, type, target, events, configured, registered_at, paused_at, pause_reason, resumed_at, resumed_by FROM sinks`,
		nil, func(rows *sql.Rows) error {
			var k kycd.SinkInfo
			var events, registered string
			var paused, reason, resumed, by sql.NullString
			if err := rows.Scan(&k.Name, &k.Type, &k.Target, &events, &k.Configured, &registered, &paused, &reason, &resumed, &by); err != nil {
				return err
			}
			if events != "" {
				k.Events = strings.Split(events, ",")
			}
			for _, t := range []struct {
				dst *time.Time
				src sql.NullString
			}{{&k.RegisteredAt, sql.NullString{String: registered, Valid: true}}, {&k.PausedAt, paused}, {&k.ResumedAt, resumed}} {
				if t.src.Valid {
					v, err := parseTime(t.src.String)
					if err != nil {
						return err
					}
					*t.dst = v
				}
			}
			k.PauseReason, k.ResumedBy = reason.String, by.String
			byName[k.Name] = &k
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: sinks: %w", translate(s, err))
	}
	err = queryRows(ctx, s.r, `SELECT sink, state, count(*) FROM deliveries WHERE state IN ('pending', 'dead') GROUP BY sink, state`,
		nil, func(rows *sql.Rows) error {
			var name, state string
			var n int
			if err := rows.Scan(&name, &state, &n); err != nil {
				return err
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
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: sinks: %w", translate(s, err))
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
	ts := formatTime(at)
	if _, err := s.w.ExecContext(ctx, `
		INSERT INTO sinks (name, type, target, events, configured, registered_at, paused_at, pause_reason) VALUES (?, '', '', '', 1, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET paused_at = coalesce(sinks.paused_at, excluded.paused_at),
			pause_reason = CASE WHEN sinks.paused_at IS NULL THEN excluded.pause_reason ELSE sinks.pause_reason END`,
		name, ts, ts, reason); err != nil {
		return fmt.Errorf("sqlite: pause sink: %w", translate(s, err))
	}
	return nil
}

// ResumeSink lifts a sink's pause and makes its pending deliveries due.
func (s *Store) ResumeSink(ctx context.Context, name, actor string, at time.Time) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: resume sink: %w", translate(s, err))
	}
	defer tx.Rollback()
	var paused sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT paused_at FROM sinks WHERE name = ?`, name).Scan(&paused); err != nil {
		return 0, fmt.Errorf("sqlite: resume sink: %w", s.notFound(err, "sink %s not found", name))
	}
	if !paused.Valid {
		return 0, nil
	}
	ts := formatTime(at)
	if _, err := tx.ExecContext(ctx, `UPDATE sinks SET paused_at = NULL, pause_reason = NULL, resumed_at = ?, resumed_by = ? WHERE name = ?`,
		ts, actor, name); err != nil {
		return 0, fmt.Errorf("sqlite: resume sink: %w", translate(s, err))
	}
	r, err := tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?, round_attempts = 0, round_started_at = ?, updated_at = ?
		WHERE sink = ? AND state = 'pending'`, ts, ts, ts, name)
	if err != nil {
		return 0, fmt.Errorf("sqlite: resume sink: %w", translate(s, err))
	}
	n, _ := r.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: resume sink: %w", translate(s, err))
	}
	return int(n), nil
}

// SwapSetting replaces a setting's value if it is still old.
func (s *Store) SwapSetting(ctx context.Context, key, old, value string) error {
	r, err := s.w.ExecContext(ctx, `UPDATE settings SET value = ? WHERE key = ? AND value = ?`, value, key, old)
	if err != nil {
		return fmt.Errorf("sqlite: swap setting: %w", translate(s, err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return kycd.Errorf(kycd.ECONFLICT, "setting %s changed meanwhile", key)
	}
	return nil
}
