package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd"
)

// lockProjection takes the advisory lock that makes projection
// transactions (and resets) take turns across replicas. Its second key is
// the OID of the event_log table, so that each schema of a database (one
// per test, or several deployments) has a lock of its own.
const lockProjection = `SELECT pg_advisory_xact_lock($1, 'event_log'::regclass::oid::int)`

// projectionLockClass is the first key of the projection lock ("kycd").
const projectionLockClass int32 = 0x6b796364

// AppendLog commits entries in one statement, hence one transaction, and
// one round trip. Seqs are drawn in the order of entries, and each entry
// gets the seq drawn for its own position, whatever order the rows come
// back in. Durability is PostgreSQL's synchronous commit (on unless the
// operator turned it off). Failures are EUNAVAILABLE: nothing was committed
// and the webhook answers so that Ralio retries.
func (s *Store) AppendLog(ctx context.Context, entries []*kycd.LogEntry) error {
	if s.closed.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	if len(entries) == 0 {
		return nil
	}
	ids := make([]string, len(entries))
	ats := make([]time.Time, len(entries))
	bodies := make([][]byte, len(entries))
	hashes := make([]string, len(entries))
	for i, e := range entries {
		ids[i], ats[i], bodies[i], hashes[i] = e.EventID, e.ReceivedAt, e.Body, e.BodyHash
	}
	// nextval in a materialized CTE draws one seq per input row, in input
	// order; the insert and the answer both read that one draw.
	rows, err := s.pool.Query(ctx, `
		WITH input AS (
			SELECT nextval('event_log_seq_seq') AS seq, e.*
			FROM unnest($1::text[], $2::timestamptz[], $3::bytea[], $4::text[]) WITH ORDINALITY AS e(event_id, received_at, body, body_hash, n)
		), appended AS (
			INSERT INTO event_log (seq, event_id, received_at, body, body_hash)
			SELECT seq, event_id, received_at, body, body_hash FROM input ORDER BY n
		)
		SELECT n, seq FROM input`, ids, ats, bodies, hashes)
	if err != nil {
		return fmt.Errorf("postgres: append log: %w", unavailable(s, err))
	}
	got := 0
	var n, seq int64
	_, err = pgx.ForEachRow(rows, []any{&n, &seq}, func() error {
		if n < 1 || int(n) > len(entries) {
			return fmt.Errorf("row %d of %d", n, len(entries))
		}
		entries[n-1].Seq = seq
		got++
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: append log: %w", unavailable(s, err))
	}
	if got != len(entries) {
		return fmt.Errorf("postgres: append log: %w", kycd.Unrecorded(fmt.Errorf("%d seqs for %d entries", got, len(entries))))
	}
	return nil
}

// KnownEvents reads the events among ids that are projected (the events
// id index) or appended by any replica and not yet projected (the partial
// index of the unprojected log), the projected copy first.
func (s *Store) KnownEvents(ctx context.Context, ids []string) (map[string]kycd.KnownEvent, error) {
	out := make(map[string]kycd.KnownEvent, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, seq, body_hash, 0 AS o FROM events WHERE id = ANY($1)
		UNION ALL
		SELECT event_id, seq, body_hash, 1 FROM event_log WHERE NOT projected AND event_id = ANY($1)
		ORDER BY o, seq`, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: known events: %w", unavailable(s, err))
	}
	var id string
	var k kycd.KnownEvent
	var o int
	if _, err := pgx.ForEachRow(rows, []any{&id, &k.Seq, &k.BodyHash, &o}, func() error {
		if _, ok := out[id]; !ok {
			out[id] = k
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: known events: %w", unavailable(s, err))
	}
	return out, nil
}

// UnprojectedLog reads the backlog through the partial index of
// unprojected entries.
func (s *Store) UnprojectedLog(ctx context.Context, through int64, limit int) ([]*kycd.LogEntry, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT seq, event_id, received_at, body_hash FROM event_log
		WHERE NOT projected AND seq <= $1 ORDER BY seq LIMIT $2`, through, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: unprojected log: %w", translate(s, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*kycd.LogEntry, error) {
		var e kycd.LogEntry
		if err := row.Scan(&e.Seq, &e.EventID, &e.ReceivedAt, &e.BodyHash); err != nil {
			return nil, err
		}
		e.ReceivedAt = e.ReceivedAt.UTC()
		return &e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: unprojected log: %w", translate(s, err))
	}
	return out, nil
}

// LogHead returns the greatest seq committed. On several replicas a smaller
// seq may still commit after it.
func (s *Store) LogHead(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM event_log`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: log head: %w", translate(s, err))
	}
	return seq, nil
}

// LogBody returns an entry's body, nil once purged; ENOTFOUND for an
// unknown seq.
func (s *Store) LogBody(ctx context.Context, seq int64) ([]byte, error) {
	return logBody(ctx, s, s.pool, seq)
}

func logBody(ctx context.Context, s *Store, q querier, seq int64) ([]byte, error) {
	var body []byte
	if err := q.QueryRow(ctx, `SELECT body FROM event_log WHERE seq = $1`, seq).Scan(&body); err != nil {
		return nil, fmt.Errorf("postgres: log body: %w", s.notFound(err, "log entry %d not found", seq))
	}
	return body, nil
}

// querier is what a pool and a transaction have in common.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ResetProjection makes the entries that still have a body unprojected and
// deletes what they derived: their events rows, the sessions they belong to
// and the subjects whose level they set. It takes the projection lock, so
// it waits for a projection in progress and no projection sees half of it.
func (s *Store) ResetProjection(ctx context.Context) (int64, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, fmt.Errorf("postgres: reset projection: %w", translate(s, err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var n int64
	b := &pgx.Batch{}
	b.Queue(lockProjection, projectionLockClass)
	b.Queue(`SELECT count(*) FROM event_log WHERE body IS NOT NULL`).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
	b.Queue(`
		WITH gone AS (
			DELETE FROM events e USING event_log l
			WHERE l.seq = e.seq AND l.body IS NOT NULL
			RETURNING e.type, e.session_id, e.subject_type, e.subject_id
		), sessions_gone AS (
			DELETE FROM sessions WHERE id IN (SELECT session_id FROM gone)
		)
		DELETE FROM subjects WHERE (type, id) IN (
			SELECT subject_type, subject_id FROM gone WHERE type IN ('kyc_state_updated', 'kyb_state_updated'))`)
	b.Queue(`UPDATE event_log SET projected = false WHERE body IS NOT NULL AND projected`)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("postgres: reset projection: %w", translate(s, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: reset projection: commit: %w", translate(s, err))
	}
	return n, nil
}
