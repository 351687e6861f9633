package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kycd/kycd"
)

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

func (sc *scope) seqs() []any {
	seqs := make([]any, len(sc.events))
	for i, e := range sc.events {
		seqs[i] = e.seq
	}
	return seqs
}

// subjectScope finds a subject's sessions and its events with a seq above
// after (events are appended in seq order between rebuilds). ENOTFOUND
// when the subject has neither a row nor a session.
func subjectScope(ctx context.Context, q queryer, sub kycd.SubjectRef, after int64) (*scope, error) {
	sc := &scope{history: map[string][]string{}}
	known := false
	err := queryRows(ctx, q, `SELECT 1 FROM subjects WHERE id = ? AND type = ?`, []any{sub.ID, sub.Type}, func(*sql.Rows) error {
		known = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = queryRows(ctx, q, `SELECT id, history FROM sessions WHERE subject_id = ? AND subject_type = ? ORDER BY status_at DESC, id`,
		[]any{sub.ID, sub.Type}, func(rows *sql.Rows) error {
			var id string
			var history []byte
			if err := rows.Scan(&id, &history); err != nil {
				return err
			}
			var h []kycd.HistoryEntry
			if err := json.Unmarshal(history, &h); err != nil {
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
	if err := sc.addEvents(ctx, q, sub, after); err != nil {
		return nil, err
	}
	return sc, nil
}

// addEvents adds the subject's events above seq after: those that name it,
// and those of its sessions. The events table has no index by subject (the
// projection would pay for it on every event), so this is a scan.
func (sc *scope) addEvents(ctx context.Context, q queryer, sub kycd.SubjectRef, after int64) error {
	query := `SELECT seq, id FROM events WHERE seq > ? AND ((subject_id = ? AND subject_type = ?)`
	args := []any{after, sub.ID, sub.Type}
	if len(sc.sessions) > 0 {
		query += ` OR session_id IN (` + placeholders(len(sc.sessions)) + `)`
		for _, id := range sc.sessions {
			args = append(args, id)
		}
	}
	return queryRows(ctx, q, query+`) ORDER BY seq`, args, func(rows *sql.Rows) error {
		var e eventKey
		if err := rows.Scan(&e.seq, &e.id); err != nil {
			return err
		}
		sc.events = append(sc.events, e)
		return nil
	})
}

// quarantineNaming returns the ids of the quarantine items whose event id
// is one of the subject's, or whose bodies name it or one of its sessions.
func quarantineNaming(ctx context.Context, q queryer, sub kycd.SubjectRef, sc *scope) ([]string, error) {
	var ids []string
	add := func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	}
	if err := queryIn(ctx, q, `SELECT id FROM quarantine WHERE event_id IN (%s)`, sc.eventIDs(), add); err != nil {
		return nil, err
	}
	var conds []string
	var args []any
	for _, n := range kycd.Needles(sub, sc.sessions) {
		conds = append(conds, `instr(body, ?) > 0`, `instr(coalesce(original_body, x''), ?) > 0`)
		args = append(args, n, n)
	}
	if err := queryRows(ctx, q, `SELECT id FROM quarantine WHERE `+strings.Join(conds, ` OR `), args, add); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// ExportSubject gathers everything kept about a subject.
func (s *Store) ExportSubject(ctx context.Context, sub kycd.SubjectRef, at time.Time) (*kycd.SubjectExport, error) {
	out, err := s.exportSubject(ctx, sub, at)
	if err != nil {
		return nil, fmt.Errorf("sqlite: export subject: %w", translate(s, err))
	}
	return out, nil
}

func (s *Store) exportSubject(ctx context.Context, sub kycd.SubjectRef, at time.Time) (*kycd.SubjectExport, error) {
	sc, err := subjectScope(ctx, s.r, sub, 0)
	if err != nil {
		return nil, err
	}
	x := &kycd.SubjectExport{ExportedAt: at.UTC(), Subject: sub, Sessions: []*kycd.Session{}, Events: []*kycd.EventRecord{},
		Notifications: []*kycd.NotificationRecord{}, Quarantine: []*kycd.QuarantineRecord{}}
	var level, levelAt sql.NullString
	err = s.r.QueryRowContext(ctx, `SELECT level, level_at FROM subjects WHERE id = ? AND type = ?`, sub.ID, sub.Type).Scan(&level, &levelAt)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	x.Level = level.String
	if x.LevelAt, err = parseNullTime(levelAt); err != nil {
		return nil, err
	}
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
	err = queryIn(ctx, s.r, `SELECT id, type, created_at, payload FROM notifications WHERE id IN (%s)`,
		kycd.SubjectNotificationIDs(sc.eventIDs(), sc.history), func(rows *sql.Rows) error {
			n := &kycd.NotificationRecord{Deliveries: []*kycd.Delivery{}}
			var created string
			var payload []byte
			if err := rows.Scan(&n.ID, &n.Type, &created, &payload); err != nil {
				return err
			}
			n.Notification = payload
			var err error
			n.CreatedAt, err = parseTime(created)
			x.Notifications = append(x.Notifications, n)
			notifications[n.ID] = n
			return err
		})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(x.Notifications, func(a, b *kycd.NotificationRecord) int {
		return cmpTimeID(a.CreatedAt, a.ID, b.CreatedAt, b.ID)
	})
	var deliveryIDs []string
	err = queryIn(ctx, s.r, `SELECT id FROM deliveries WHERE notification_id IN (%s) ORDER BY created_at, id`, keys(notifications), func(rows *sql.Rows) error {
		var id string
		err := rows.Scan(&id)
		deliveryIDs = append(deliveryIDs, id)
		return err
	})
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
	qids, err := quarantineNaming(ctx, s.r, sub, sc)
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
		return cmpTimeID(a.ReceivedAt, a.ID, b.ReceivedAt, b.ID)
	})
	return x, nil
}

func cmpTimeID(at time.Time, a string, bt time.Time, b string) int {
	if c := at.Compare(bt); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// EraseSubject removes a subject's personal data. The main file is changed
// in one write transaction, which projections wait for; the raw bodies are
// in the log file, which is changed after it commits. Should that fail,
// erasing again finishes the work.
func (s *Store) EraseSubject(ctx context.Context, sub kycd.SubjectRef, at time.Time) (*kycd.ErasureReceipt, error) {
	r, err := s.eraseSubject(ctx, sub, at)
	if err != nil {
		return nil, fmt.Errorf("sqlite: erase subject: %w", translate(s, err))
	}
	return r, nil
}

func (s *Store) eraseSubject(ctx context.Context, sub kycd.SubjectRef, at time.Time) (*kycd.ErasureReceipt, error) {
	// The scan for the subject's events takes no lock; the transaction
	// then looks only at the events projected since. The projection
	// commits events in seq order, so every event up to the newest one
	// seen before the scan is in it.
	var scanned int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&scanned); err != nil {
		return nil, err
	}
	pre, err := subjectScope(ctx, s.r, sub, 0)
	if err != nil {
		return nil, err
	}
	receipt := &kycd.ErasureReceipt{Subject: sub, ErasedAt: at.UTC()}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	sc, err := subjectScope(ctx, tx, sub, scanned)
	if err != nil {
		return nil, err
	}
	sc.events = append(pre.events, sc.events...)
	// Events are never deleted but by a rebuild, which re-inserts the same
	// seqs: the scan before the transaction still holds.
	slices.SortFunc(sc.events, func(a, b eventKey) int { return cmpInt64(a.seq, b.seq) })
	sc.events = slices.CompactFunc(sc.events, func(a, b eventKey) bool { return a.seq == b.seq })

	for _, id := range sc.sessions {
		var raw []byte
		if err := tx.QueryRowContext(ctx, `SELECT checks FROM sessions WHERE id = ?`, id).Scan(&raw); err != nil {
			return nil, err
		}
		var checks []kycd.Check
		if err := json.Unmarshal(raw, &checks); err != nil {
			return nil, fmt.Errorf("session %s checks: %w", id, err)
		}
		erased, changed := kycd.EraseChecks(checks)
		if !changed {
			continue
		}
		js, err := json.Marshal(erased)
		if err != nil {
			return nil, err
		}
		// A new version, so that a projection that read the row before
		// cannot write its messages back.
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET checks = ?, version = version + 1 WHERE id = ?`, string(js), id); err != nil {
			return nil, err
		}
		receipt.Erased.Sessions++
	}

	type payload struct {
		id   string
		body []byte
	}
	var payloads []payload
	err = queryIn(ctx, tx, `SELECT id, payload FROM notifications WHERE id IN (%s)`, kycd.SubjectNotificationIDs(sc.eventIDs(), sc.history),
		func(rows *sql.Rows) error {
			var p payload
			err := rows.Scan(&p.id, &p.body)
			payloads = append(payloads, p)
			return err
		})
	if err != nil {
		return nil, err
	}
	for _, p := range payloads {
		erased, changed, err := kycd.ErasePayload(p.body)
		if err != nil {
			return nil, fmt.Errorf("notification %s: %w", p.id, err)
		}
		if !changed {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE notifications SET payload = ? WHERE id = ?`, erased, p.id); err != nil {
			return nil, err
		}
		receipt.Erased.Notifications++
	}

	qids, err := quarantineNaming(ctx, tx, sub, sc)
	if err != nil {
		return nil, err
	}
	ts := formatTime(at)
	for _, id := range qids {
		r, err := tx.ExecContext(ctx, `UPDATE quarantine SET body = x'', original_body = NULL,
				replayed_at = coalesce(replayed_at, ?), replay_result = coalesce(replay_result, ?)
			WHERE id = ? AND (length(body) > 0 OR original_body IS NOT NULL)`, ts, kycd.ErasedReplayResult, id)
		if err != nil {
			return nil, err
		}
		n, _ := r.RowsAffected()
		receipt.Erased.Quarantine += int(n)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}

	seqs := sc.seqs()
	for len(seqs) > 0 {
		part := seqs[:min(len(seqs), maxIn)]
		seqs = seqs[len(part):]
		r, err := s.lw.ExecContext(ctx, `UPDATE event_log SET body = NULL WHERE body IS NOT NULL AND seq IN (`+placeholders(len(part))+`)`, part...)
		if err != nil {
			return nil, fmt.Errorf("event log: %w", err)
		}
		n, _ := r.RowsAffected()
		receipt.Erased.EventBodies += int(n)
	}
	s.truncateWAL(ctx)
	return receipt, nil
}

// truncateWAL checkpoints both files and empties their write-ahead logs,
// whose old frames would otherwise keep what was just erased or purged
// until they are written over. It does what it can: a reader in the
// middle of a read keeps the frames it needs, and the next purge or
// erasure tries again.
func (s *Store) truncateWAL(ctx context.Context) {
	for _, db := range []*sql.DB{s.w, s.lw} {
		var busy, logPages, checkpointed int
		db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &checkpointed)
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
