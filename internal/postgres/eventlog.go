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

// LockProjection takes the projection lock for the rest of the
// transaction.
func (t *tx) LockProjection(ctx context.Context) error {
	if _, err := t.tx.Exec(ctx, lockProjection, projectionLockClass); err != nil {
		return fmt.Errorf("postgres: lock projection: %w", translate(t.s, err))
	}
	return nil
}

// ProjectedLogRuns numbers the projected entries twice, all together and
// apart by whether they have a body: the difference is constant along a run.
func (t *tx) ProjectedLogRuns(ctx context.Context) ([]kycd.LogRun, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT min(seq), max(seq), count(*), has_body FROM (
			SELECT seq, body IS NOT NULL AS has_body,
				row_number() OVER (ORDER BY seq) - row_number() OVER (PARTITION BY body IS NOT NULL ORDER BY seq) AS run
			FROM event_log WHERE projected) l
		GROUP BY has_body, run ORDER BY min(seq)`)
	if err != nil {
		return nil, fmt.Errorf("postgres: projected log runs: %w", translate(t.s, err))
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (kycd.LogRun, error) {
		var r kycd.LogRun
		err := row.Scan(&r.From, &r.Through, &r.Entries, &r.HasBody)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: projected log runs: %w", translate(t.s, err))
	}
	return runs, nil
}

// inRuns joins the events rows e to the runs given as $1 (froms) and $2
// (throughs).
const inRuns = `SELECT e.* FROM events e JOIN unnest($1::bigint[], $2::bigint[]) r(lo, hi) ON e.seq BETWEEN r.lo AND r.hi`

func runBounds(runs []kycd.LogRun) (from, through []int64) {
	for _, r := range runs {
		from, through = append(from, r.From), append(through, r.Through)
	}
	return from, through
}

// DeleteRunSessions deletes the sessions of the runs' events rows.
func (t *tx) DeleteRunSessions(ctx context.Context, runs []kycd.LogRun) error {
	from, through := runBounds(runs)
	if _, err := t.tx.Exec(ctx, `DELETE FROM sessions WHERE id IN (SELECT session_id FROM (`+inRuns+`) e)`, from, through); err != nil {
		return fmt.Errorf("postgres: delete sessions of the log: %w", translate(t.s, err))
	}
	return nil
}

// DeleteRunSubjects deletes the subjects of the runs' events rows of the
// given types.
func (t *tx) DeleteRunSubjects(ctx context.Context, runs []kycd.LogRun, types []string) error {
	from, through := runBounds(runs)
	_, err := t.tx.Exec(ctx, `DELETE FROM subjects WHERE (type, id) IN (
		SELECT subject_type, subject_id FROM (`+inRuns+`) e WHERE e.type = ANY($3))`, from, through, types)
	if err != nil {
		return fmt.Errorf("postgres: delete subjects of the log: %w", translate(t.s, err))
	}
	return nil
}

// DeleteRunEvents deletes the runs' events rows.
func (t *tx) DeleteRunEvents(ctx context.Context, runs []kycd.LogRun) error {
	from, through := runBounds(runs)
	_, err := t.tx.Exec(ctx, `DELETE FROM events e USING unnest($1::bigint[], $2::bigint[]) r(lo, hi) WHERE e.seq BETWEEN r.lo AND r.hi`, from, through)
	if err != nil {
		return fmt.Errorf("postgres: delete events of the log: %w", translate(t.s, err))
	}
	return nil
}

// UnprojectLog clears the projected mark of the runs' entries.
func (t *tx) UnprojectLog(ctx context.Context, runs []kycd.LogRun) error {
	from, through := runBounds(runs)
	_, err := t.tx.Exec(ctx, `UPDATE event_log l SET projected = false FROM unnest($1::bigint[], $2::bigint[]) r(lo, hi)
		WHERE l.seq BETWEEN r.lo AND r.hi AND l.projected`, from, through)
	if err != nil {
		return fmt.Errorf("postgres: unproject the log: %w", translate(t.s, err))
	}
	return nil
}
