-- +goose Up
-- The webhook is acknowledged once its body is in the event log; sessions,
-- subjects, events and the outbox are projected from the log afterwards.
-- The projection keeps a session in one row (its checks and history as
-- JSON), so an event dirties few pages. Old data is converted in place:
-- every old event becomes a projected log entry (seq in arrival order) and
-- an events row under the same seq.

-- Replicas commit sequence values out of order, so progress is a flag per
-- entry, not a watermark; the partial index holds only the backlog.
CREATE TABLE event_log (
    seq         bigserial PRIMARY KEY,
    event_id    text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    body        bytea,            -- NULL once purged by retention
    body_hash   text NOT NULL,
    projected   boolean NOT NULL DEFAULT false
);
CREATE INDEX event_log_unprojected ON event_log (seq) WHERE NOT projected;
-- Replicas share the log: a retry that lands on another replica before the
-- first copy is projected is found here. Only unprojected rows are indexed,
-- so the index stays as small as the backlog.
CREATE INDEX event_log_unprojected_id ON event_log (event_id) WHERE NOT projected;

ALTER TABLE events RENAME TO events_v1;
ALTER INDEX events_pkey RENAME TO events_v1_pkey;
DROP INDEX events_type_received;
DROP INDEX events_received;

-- seq orders the list (last received first); id is the index dedupe reads.
CREATE TABLE events (
    seq          bigint PRIMARY KEY,
    id           text COLLATE "C" NOT NULL UNIQUE,
    type         text NOT NULL,
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    body_hash    text NOT NULL,
    outcome      text NOT NULL,
    session_id   text COLLATE "C",
    subject_type text,
    subject_id   text COLLATE "C"
);
CREATE INDEX events_type ON events (type, seq);

-- Ordered so that seq DESC lists them as before: received_at DESC, id.
INSERT INTO event_log (seq, event_id, received_at, body, body_hash, projected)
SELECT row_number() OVER (ORDER BY received_at, id DESC), id, received_at, body, body_hash, true
FROM events_v1;
SELECT setval(pg_get_serial_sequence('event_log', 'seq'), max(seq)) FROM event_log;

-- The old events kept no subject: a session event's is its session's, an
-- applied level event's is the subject it set; others have none.
INSERT INTO events (seq, id, type, ts, received_at, body_hash, outcome, session_id, subject_type, subject_id)
SELECT l.seq, v.id, v.type, v.ts, v.received_at, v.body_hash, v.outcome, v.session_id,
       coalesce(s.subject_type, sub.type), coalesce(s.subject_id, sub.id)
FROM events_v1 v
JOIN event_log l ON l.event_id = v.id
LEFT JOIN sessions s ON s.id = v.session_id
LEFT JOIN subjects sub ON sub.level_event_id = v.id;
DROP TABLE events_v1;

-- The JSON is spelt as Go's encoding/json spells []kycd.Check and
-- []kycd.HistoryEntry (compact, field order, category omitted when empty,
-- times in RFC 3339 UTC without trailing zeros), as the projector writes it.
ALTER TABLE sessions ADD COLUMN checks json, ADD COLUMN history json, ADD COLUMN version bigint;
UPDATE sessions s SET
    checks = coalesce((
        SELECT '[' || string_agg(
            '{"type":' || to_json(c.type)::text || ',"state":' || to_json(c.state)::text || ',"reasons":[' || coalesce((
                SELECT string_agg(
                    '{"type":' || to_json(r.type)::text || ',"code":' || to_json(r.code)::text ||
                    ',"message":' || to_json(r.message)::text ||
                    CASE WHEN r.category <> '' THEN ',"category":' || to_json(r.category)::text ELSE '' END || '}',
                    ',' ORDER BY r.position)
                FROM check_reasons r WHERE r.session_id = c.session_id AND r.check_position = c.position
            ), '') || ']}',
            ',' ORDER BY c.position) || ']'
        FROM session_checks c WHERE c.session_id = s.id
    ), '[]')::json,
    history = coalesce((
        SELECT '[' || string_agg(
            '{"eventId":' || to_json(h.event_id)::text || ',"event":' || to_json(h.event)::text ||
            ',"timestamp":"' || rtrim(rtrim(to_char(h.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z"' ||
            ',"receivedAt":"' || rtrim(rtrim(to_char(h.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z"' ||
            ',"status":' || to_json(h.status)::text || ',"applied":' || CASE WHEN h.applied THEN 'true' ELSE 'false' END || '}',
            ',' ORDER BY h.ts, h.event_id)  || ']'
        FROM session_history h WHERE h.session_id = s.id
    ), '[]')::json,
    version = 1;
ALTER TABLE sessions
    ALTER COLUMN checks SET NOT NULL,
    ALTER COLUMN history SET NOT NULL,
    ALTER COLUMN version SET NOT NULL;
DROP INDEX sessions_status_at;
DROP TABLE check_reasons;
DROP TABLE session_checks;
DROP TABLE session_history;

-- Version 0 is a subject recorded without a level.
ALTER TABLE subjects ADD COLUMN version bigint NOT NULL DEFAULT 0;
UPDATE subjects SET version = 1 WHERE level IS NOT NULL;
ALTER TABLE subjects ALTER COLUMN version DROP DEFAULT;

-- Notification ids derive from event ids, and a redone projection inserts
-- with ON CONFLICT (id) DO NOTHING: these indexes only cost writes.
ALTER TABLE notifications DROP CONSTRAINT notifications_event_id_key;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_notification_id_sink_key;

-- +goose Down
-- Entries not yet projected have no place in the old schema and are lost:
-- let the projector catch up before migrating down.
CREATE TABLE session_history (
    session_id  text COLLATE "C" NOT NULL,
    event_id    text COLLATE "C" NOT NULL,
    event       text NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    status      text NOT NULL,
    applied     boolean NOT NULL,
    PRIMARY KEY (session_id, event_id)
);
INSERT INTO session_history (session_id, event_id, event, ts, received_at, status, applied)
SELECT s.id, h->>'eventId', h->>'event', (h->>'timestamp')::timestamptz, (h->>'receivedAt')::timestamptz,
       h->>'status', (h->>'applied')::boolean
FROM sessions s, json_array_elements(s.history) h;

CREATE TABLE session_checks (
    session_id text COLLATE "C" NOT NULL,
    position   integer NOT NULL,
    type       text NOT NULL,
    state      text NOT NULL,
    PRIMARY KEY (session_id, position)
);
INSERT INTO session_checks (session_id, position, type, state)
SELECT s.id, c.n - 1, c.v->>'type', c.v->>'state'
FROM sessions s, json_array_elements(s.checks) WITH ORDINALITY c(v, n);

CREATE TABLE check_reasons (
    session_id     text COLLATE "C" NOT NULL,
    check_position integer NOT NULL,
    position       integer NOT NULL,
    type           text NOT NULL,
    code           text NOT NULL,
    message        text NOT NULL,
    category       text NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, check_position, position)
);
CREATE INDEX check_reasons_code ON check_reasons (code);
INSERT INTO check_reasons (session_id, check_position, position, type, code, message, category)
SELECT s.id, c.n - 1, r.n - 1, r.v->>'type', r.v->>'code', r.v->>'message', coalesce(r.v->>'category', '')
FROM sessions s, json_array_elements(s.checks) WITH ORDINALITY c(v, n),
     json_array_elements(CASE WHEN json_typeof(c.v->'reasons') = 'array' THEN c.v->'reasons' ELSE '[]' END) WITH ORDINALITY r(v, n);

ALTER TABLE sessions DROP COLUMN checks, DROP COLUMN history, DROP COLUMN version;
CREATE INDEX sessions_status_at ON sessions (status_at);

ALTER TABLE subjects DROP COLUMN version;
INSERT INTO subjects (type, id) SELECT DISTINCT subject_type, subject_id FROM sessions ON CONFLICT (id, type) DO NOTHING;

ALTER TABLE events RENAME TO events_v2;
ALTER INDEX events_pkey RENAME TO events_v2_pkey;
ALTER INDEX events_id_key RENAME TO events_v2_id_key;
DROP INDEX events_type;
CREATE TABLE events (
    id          text COLLATE "C" PRIMARY KEY,
    type        text NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    body        bytea,            -- NULL once purged by retention
    body_hash   text NOT NULL,
    outcome     text NOT NULL,
    session_id  text COLLATE "C"
);
INSERT INTO events (id, type, ts, received_at, body, body_hash, outcome, session_id)
SELECT e.id, e.type, e.ts, e.received_at, l.body, e.body_hash, e.outcome, e.session_id
FROM events_v2 e LEFT JOIN event_log l ON l.seq = e.seq;
CREATE INDEX events_type_received ON events (type, received_at);
CREATE INDEX events_received ON events (received_at);
DROP TABLE events_v2;
DROP TABLE event_log;

ALTER TABLE notifications ADD CONSTRAINT notifications_event_id_key UNIQUE (event_id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_notification_id_sink_key UNIQUE (notification_id, sink);
