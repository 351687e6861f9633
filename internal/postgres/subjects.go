package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// rowsQuerier is what a pool and a transaction have in common for reads.
type rowsQuerier interface {
	querier
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// scope is what a subject's records are found by: its sessions and their
// history's events, and its events.
type scope struct {
	sessions []string            // newest status first
	history  map[string][]string // session id → event ids of its history
	events   []eventKey          // by seq
}

type eventKey struct {
	seq int64
	id  string
}

func (sc *scope) eventIDs() []string {
	ids := make([]string, len(sc.events))
	for i, e := range sc.events {
		ids[i] = e.id
	}
	return ids
}

func (sc *scope) seqs() []int64 {
	seqs := make([]int64, len(sc.events))
	for i, e := range sc.events {
		seqs[i] = e.seq
	}
	return seqs
}

// subjectScope finds a subject's sessions and events; ENOTFOUND when it
// has neither a row nor a session. The events table has no index by
// subject (the projection would pay for it on every event), so finding
// its events is a scan.
func subjectScope(ctx context.Context, q rowsQuerier, sub kycd.SubjectRef) (*scope, error) {
	sc := &scope{history: map[string][]string{}}
	var known bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM subjects WHERE id = $1 AND type = $2)`, sub.ID, sub.Type).Scan(&known); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT id, history::text FROM sessions WHERE subject_id = $1 AND subject_type = $2 ORDER BY status_at DESC, id`, sub.ID, sub.Type)
	if err != nil {
		return nil, err
	}
	var id, history string
	_, err = pgx.ForEachRow(rows, []any{&id, &history}, func() error {
		var h []kycd.HistoryEntry
		if err := json.Unmarshal([]byte(history), &h); err != nil {
			return fmt.Errorf("session %s history: %w", id, err)
		}
		sc.sessions = append(sc.sessions, id)
		for _, e := range h {
			sc.history[id] = append(sc.history[id], e.EventID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !known && len(sc.sessions) == 0 {
		return nil, kycd.Errorf(kycd.ENOTFOUND, "subject %s %s not found", sub.Type, sub.ID)
	}
	rows, err = q.Query(ctx, `SELECT seq, id FROM events WHERE (subject_id = $1 AND subject_type = $2) OR session_id = ANY($3) ORDER BY seq`,
		sub.ID, sub.Type, sc.sessions)
	if err != nil {
		return nil, err
	}
	var e eventKey
	_, err = pgx.ForEachRow(rows, []any{&e.seq, &e.id}, func() error {
		sc.events = append(sc.events, e)
		return nil
	})
	return sc, err
}

// quarantineNaming returns the ids of the quarantine items whose event id
// is one of the subject's, or whose bodies name it or one of its sessions.
func quarantineNaming(ctx context.Context, q rowsQuerier, sub kycd.SubjectRef, sc *scope) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT id FROM quarantine
		WHERE event_id = ANY($1) OR EXISTS (
			SELECT 1 FROM unnest($2::bytea[]) AS n(needle)
			WHERE position(n.needle IN body) > 0 OR position(n.needle IN coalesce(original_body, ''::bytea)) > 0)
		ORDER BY id`, sc.eventIDs(), kycd.Needles(sub, sc.sessions))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ExportSubject gathers everything kept about a subject.
func (s *Store) ExportSubject(ctx context.Context, sub kycd.SubjectRef, at time.Time) (*kycd.SubjectExport, error) {
	out, err := s.exportSubject(ctx, sub, at)
	if err != nil {
		return nil, fmt.Errorf("postgres: export subject: %w", translate(s, err))
	}
	return out, nil
}

func (s *Store) exportSubject(ctx context.Context, sub kycd.SubjectRef, at time.Time) (*kycd.SubjectExport, error) {
	sc, err := subjectScope(ctx, s.pool, sub)
	if err != nil {
		return nil, err
	}
	x := &kycd.SubjectExport{ExportedAt: at.UTC(), Subject: sub, Sessions: []*kycd.Session{}, Events: []*kycd.EventRecord{},
		Notifications: []*kycd.NotificationRecord{}, Quarantine: []*kycd.QuarantineRecord{}}
	var level *string
	var levelAt *time.Time
	err = s.pool.QueryRow(ctx, `SELECT level, level_at FROM subjects WHERE id = $1 AND type = $2`, sub.ID, sub.Type).Scan(&level, &levelAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	x.Level, x.LevelAt = deref(level), derefTime(levelAt)
	for _, id := range sc.sessions {
		sess, err := s.Session(ctx, id)
		if err != nil {
			return nil, err
		}
		x.Sessions = append(x.Sessions, sess)
	}
	for _, e := range sc.events {
		rec, err := s.Event(ctx, e.id)
		if err != nil {
			return nil, err
		}
		x.Events = append(x.Events, rec)
	}
	notifications := map[string]*kycd.NotificationRecord{}
	var ids []string
	rows, err := s.pool.Query(ctx, `SELECT id, type, created_at, payload::text FROM notifications WHERE id = ANY($1) ORDER BY created_at, id`,
		kycd.SubjectNotificationIDs(sc.eventIDs(), sc.history))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		n := &kycd.NotificationRecord{Deliveries: []*kycd.Delivery{}}
		var payload string
		if err := rows.Scan(&n.ID, &n.Type, &n.CreatedAt, &payload); err != nil {
			rows.Close()
			return nil, err
		}
		n.CreatedAt, n.Notification = n.CreatedAt.UTC(), json.RawMessage(payload)
		x.Notifications = append(x.Notifications, n)
		notifications[n.ID] = n
		ids = append(ids, n.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.pool.Query(ctx, `SELECT id FROM deliveries WHERE notification_id = ANY($1) ORDER BY created_at, id`, ids)
	if err != nil {
		return nil, err
	}
	deliveryIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, id := range deliveryIDs {
		d, err := s.Delivery(ctx, id)
		if err != nil {
			return nil, err
		}
		d.Payload = nil
		n := notifications[d.NotificationID]
		n.Deliveries = append(n.Deliveries, d)
	}
	qids, err := quarantineNaming(ctx, s.pool, sub, sc)
	if err != nil {
		return nil, err
	}
	for _, id := range qids {
		q, err := s.QuarantineItem(ctx, id)
		if err != nil {
			return nil, err
		}
		x.Quarantine = append(x.Quarantine, kycd.NewQuarantineRecord(q))
	}
	slices.SortFunc(x.Quarantine, func(a, b *kycd.QuarantineRecord) int {
		if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return x, nil
}

// EraseSubject removes a subject's personal data in one transaction that
// holds the projection lock, so no projection reads a row before it and
// writes it back after.
func (s *Store) EraseSubject(ctx context.Context, sub kycd.SubjectRef, at time.Time) (*kycd.ErasureReceipt, error) {
	r, err := s.eraseSubject(ctx, sub, at)
	if err != nil {
		return nil, fmt.Errorf("postgres: erase subject: %w", translate(s, err))
	}
	return r, nil
}

func (s *Store) eraseSubject(ctx context.Context, sub kycd.SubjectRef, at time.Time) (*kycd.ErasureReceipt, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, lockProjection, projectionLockClass); err != nil {
		return nil, err
	}
	sc, err := subjectScope(ctx, tx, sub)
	if err != nil {
		return nil, err
	}
	receipt := &kycd.ErasureReceipt{Subject: sub, ErasedAt: at.UTC()}

	rows, err := tx.Query(ctx, `SELECT id, checks::text FROM sessions WHERE id = ANY($1)`, sc.sessions)
	if err != nil {
		return nil, err
	}
	erasedChecks := map[string]string{}
	var id, raw string
	_, err = pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
		var checks []kycd.Check
		if err := json.Unmarshal([]byte(raw), &checks); err != nil {
			return fmt.Errorf("session %s checks: %w", id, err)
		}
		if erased, changed := kycd.EraseChecks(checks); changed {
			js, err := json.Marshal(erased)
			erasedChecks[id] = string(js)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, checks := range erasedChecks {
		// A new version, so that a projection that read the row before
		// cannot write its messages back.
		if _, err := tx.Exec(ctx, `UPDATE sessions SET checks = $2::json, version = version + 1 WHERE id = $1`, id, checks); err != nil {
			return nil, err
		}
		receipt.Erased.Sessions++
	}

	rows, err = tx.Query(ctx, `SELECT id, payload::text FROM notifications WHERE id = ANY($1)`, kycd.SubjectNotificationIDs(sc.eventIDs(), sc.history))
	if err != nil {
		return nil, err
	}
	erasedPayloads := map[string]string{}
	_, err = pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
		erased, changed, err := kycd.ErasePayload([]byte(raw))
		if err != nil {
			return fmt.Errorf("notification %s: %w", id, err)
		}
		if changed {
			erasedPayloads[id] = string(erased)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, payload := range erasedPayloads {
		if _, err := tx.Exec(ctx, `UPDATE notifications SET payload = $2::json WHERE id = $1`, id, payload); err != nil {
			return nil, err
		}
		receipt.Erased.Notifications++
	}

	qids, err := quarantineNaming(ctx, tx, sub, sc)
	if err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `
		UPDATE quarantine SET body = ''::bytea, original_body = NULL,
			replayed_at = coalesce(replayed_at, $2), replay_result = coalesce(replay_result, $3)
		WHERE id = ANY($1) AND (length(body) > 0 OR original_body IS NOT NULL)`, qids, at, kycd.ErasedReplayResult)
	if err != nil {
		return nil, err
	}
	receipt.Erased.Quarantine = int(tag.RowsAffected())

	tag, err = tx.Exec(ctx, `UPDATE event_log SET body = NULL WHERE seq = ANY($1) AND body IS NOT NULL`, sc.seqs())
	if err != nil {
		return nil, err
	}
	receipt.Erased.EventBodies = int(tag.RowsAffected())
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return receipt, nil
}
