-- +goose Up
-- The event log moves to its own file (sqlite/logmigrations) and the
-- projection is rebuilt for few pages written per event: one row per session
-- (checks and history as JSON), events keyed by their log seq, no unique
-- constraints that only a second index could check. Existing data is kept:
-- the old events table stays as events_v1 until Migrate has copied its
-- bodies into the log file (a Go step: SQL cannot write the other file).

-- First, so that a second run (another process migrating at the same
-- moment) fails at once and rolls back.
CREATE TABLE projection_watermark (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL -- every log entry up to it is projected
);

DROP INDEX events_type_received;
DROP INDEX events_received;
ALTER TABLE events RENAME TO events_v1;

-- One row per projected event; the body stays in the log. seq is the log
-- entry's, so the table is in arrival order and appends go to its end.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE, -- what deduplication reads
    type         TEXT NOT NULL,
    ts           TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    body_hash    TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    session_id   TEXT,
    subject_type TEXT,
    subject_id   TEXT
);

DROP INDEX sessions_subject;
DROP INDEX sessions_status;
ALTER TABLE sessions RENAME TO sessions_v1;

-- Everything about a session in one row, so one page: checks and history
-- are JSON arrays of kycd.Check and kycd.HistoryEntry as encoding/json
-- writes them, history by (timestamp, event id). version counts the row's
-- writes, for the projector's optimistic check. A rowid table, not WITHOUT
-- ROWID: new sessions, the common case, append at the end of the table,
-- and only the id index (small entries) takes a write at a random place.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    status          TEXT NOT NULL,
    status_at       TEXT NOT NULL,
    status_event_id TEXT NOT NULL,
    checks          TEXT NOT NULL,
    history         TEXT NOT NULL,
    version         INTEGER NOT NULL
);

-- Times in JSON as encoding/json writes a UTC time.Time: trailing zeros of
-- the fraction dropped.
INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id, checks, history, version)
SELECT s.id, s.subject_type, s.subject_id, s.status, s.status_at, s.status_event_id,
    (SELECT json_group_array(json_object(
            'type', c.type,
            'state', c.state,
            'reasons', json((SELECT json_group_array(json(CASE WHEN r.category = ''
                    THEN json_object('type', r.type, 'code', r.code, 'message', r.message)
                    ELSE json_object('type', r.type, 'code', r.code, 'message', r.message, 'category', r.category) END)
                ORDER BY r.position)
                FROM check_reasons r WHERE r.session_id = c.session_id AND r.check_position = c.position))
        ) ORDER BY c.position)
        FROM session_checks c WHERE c.session_id = s.id),
    (SELECT json_group_array(json_object(
            'eventId', h.event_id,
            'event', h.event,
            'timestamp', rtrim(rtrim(substr(h.ts, 1, 29), '0'), '.') || 'Z',
            'receivedAt', rtrim(rtrim(substr(h.received_at, 1, 29), '0'), '.') || 'Z',
            'status', h.status,
            'applied', json(CASE WHEN h.applied THEN 'true' ELSE 'false' END)
        ) ORDER BY h.ts, h.event_id)
        FROM session_history h WHERE h.session_id = s.id),
    1
FROM sessions_v1 s;
CREATE INDEX sessions_subject ON sessions (subject_id);
CREATE INDEX sessions_status ON sessions (status, status_at);

ALTER TABLE subjects RENAME TO subjects_v1;

-- A row only for subjects with a level or an expiration warning; others
-- are known by their sessions. version as for sessions: 0 without a level.
CREATE TABLE subjects (
    type           TEXT NOT NULL,
    id             TEXT NOT NULL,
    level          TEXT,
    level_at       TEXT,
    level_event_id TEXT,
    version        INTEGER NOT NULL,
    PRIMARY KEY (id, type)
) WITHOUT ROWID;
INSERT INTO subjects (type, id, level, level_at, level_event_id, version)
SELECT type, id, level, level_at, level_event_id, CASE WHEN level IS NULL THEN 0 ELSE 1 END FROM subjects_v1;

-- Subjects of session events from their sessions, of level events from the
-- subject whose level they set; other events did not record theirs.
INSERT INTO events (seq, id, type, ts, received_at, body_hash, outcome, session_id, subject_type, subject_id)
SELECT e.rowid, e.id, e.type, e.ts, e.received_at, e.body_hash, e.outcome, e.session_id,
    coalesce(s.subject_type, l.type), coalesce(s.subject_id, l.id)
FROM events_v1 e
LEFT JOIN sessions_v1 s ON s.id = e.session_id
LEFT JOIN subjects_v1 l ON l.level_event_id = e.id AND e.session_id IS NULL
ORDER BY e.rowid;
CREATE INDEX events_type ON events (type, seq);

INSERT INTO projection_watermark (id, seq) SELECT 1, coalesce(max(rowid), 0) FROM events_v1;

DROP TABLE check_reasons;
DROP TABLE session_checks;
DROP TABLE session_history;
DROP TABLE sessions_v1;
DROP TABLE subjects_v1;

-- The outbox without its unique constraints, which cost an index each:
-- notification ids derive from event ids now, and the projector writes a
-- notification's deliveries only with the notification. Renaming a table
-- rewrites the foreign keys that name it, so all three tables move aside
-- and come back; the old ones are dropped children first, so that no
-- foreign key ever points at a missing row.
DROP INDEX deliveries_due;
DROP INDEX deliveries_notification;
ALTER TABLE notifications RENAME TO notifications_v1;
ALTER TABLE deliveries RENAME TO deliveries_v1;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_v1;

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO notifications (id, type, event_id, payload, created_at)
SELECT id, type, event_id, payload, created_at FROM notifications_v1 ORDER BY rowid;

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    sink            TEXT NOT NULL,
    state           TEXT NOT NULL, -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    round_attempts  INTEGER NOT NULL DEFAULT 0, -- attempts since creation or the last manual retry
    round_started_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
INSERT INTO deliveries (id, notification_id, sink, state, attempts, round_attempts, round_started_at, next_attempt_at,
    lease_owner, lease_until, last_error, created_at, updated_at)
SELECT id, notification_id, sink, state, attempts, round_attempts, round_started_at, next_attempt_at,
    lease_owner, lease_until, last_error, created_at, updated_at
FROM deliveries_v1 ORDER BY rowid;
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);

CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    attempt     INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    status_code INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error)
SELECT delivery_id, attempt, started_at, duration_ms, outcome, status_code, error FROM delivery_attempts_v1;

DROP TABLE delivery_attempts_v1;
DROP TABLE deliveries_v1;
DROP TABLE notifications_v1;

-- +goose Down
-- Back to the tables of 00001. Event bodies stay in the log file, so events
-- come back without them (as if purged); migrating up again copies them
-- back from the log. Run it on a store that Migrate brought up completely
-- (events_v1 gone).

-- JSON times back to the fixed-width form: the fraction padded to nine
-- digits. Times were written in UTC, ending in Z.

DROP TABLE projection_watermark;

DROP INDEX events_type;
ALTER TABLE events RENAME TO events_v2;
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    ts          TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body        BLOB,            -- NULL once purged by retention
    body_hash   TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    session_id  TEXT
);
INSERT INTO events (rowid, id, type, ts, received_at, body, body_hash, outcome, session_id)
SELECT seq, id, type, ts, received_at, NULL, body_hash, outcome, session_id FROM events_v2 ORDER BY seq;
CREATE INDEX events_type_received ON events (type, received_at);
CREATE INDEX events_received ON events (received_at);
DROP TABLE events_v2;

DROP INDEX sessions_subject;
DROP INDEX sessions_status;
ALTER TABLE sessions RENAME TO sessions_v2;
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    status          TEXT NOT NULL,
    status_at       TEXT NOT NULL,
    status_event_id TEXT NOT NULL
);
INSERT INTO sessions (id, subject_type, subject_id, status, status_at, status_event_id)
SELECT id, subject_type, subject_id, status, status_at, status_event_id FROM sessions_v2;
CREATE INDEX sessions_subject ON sessions (subject_id);
CREATE INDEX sessions_status ON sessions (status, status_at);

CREATE TABLE session_history (
    session_id  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event       TEXT NOT NULL,
    ts          TEXT NOT NULL,
    received_at TEXT NOT NULL,
    status      TEXT NOT NULL,
    applied     INTEGER NOT NULL,
    PRIMARY KEY (session_id, event_id)
);
INSERT INTO session_history (session_id, event_id, event, ts, received_at, status, applied)
SELECT s.id, h.value ->> '$.eventId', h.value ->> '$.event',
    substr(h.value ->> '$.timestamp', 1, 19) || '.' || substr(CASE WHEN instr(h.value ->> '$.timestamp', '.') > 0
        THEN substr(h.value ->> '$.timestamp', 21, length(h.value ->> '$.timestamp') - 21) ELSE '' END || '000000000', 1, 9) || 'Z',
    substr(h.value ->> '$.receivedAt', 1, 19) || '.' || substr(CASE WHEN instr(h.value ->> '$.receivedAt', '.') > 0
        THEN substr(h.value ->> '$.receivedAt', 21, length(h.value ->> '$.receivedAt') - 21) ELSE '' END || '000000000', 1, 9) || 'Z',
    h.value ->> '$.status', h.value ->> '$.applied'
FROM sessions_v2 s, json_each(s.history) h;

CREATE TABLE session_checks (
    session_id TEXT NOT NULL,
    position   INTEGER NOT NULL,
    type       TEXT NOT NULL,
    state      TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
INSERT INTO session_checks (session_id, position, type, state)
SELECT s.id, c.key, c.value ->> '$.type', c.value ->> '$.state' FROM sessions_v2 s, json_each(s.checks) c;

CREATE TABLE check_reasons (
    session_id     TEXT NOT NULL,
    check_position INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    type           TEXT NOT NULL,
    code           TEXT NOT NULL,
    message        TEXT NOT NULL,
    category       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, check_position, position)
);
INSERT INTO check_reasons (session_id, check_position, position, type, code, message, category)
SELECT s.id, c.key, r.key, r.value ->> '$.type', r.value ->> '$.code', r.value ->> '$.message', coalesce(r.value ->> '$.category', '')
FROM sessions_v2 s, json_each(s.checks) c, json_each(c.value, '$.reasons') r WHERE r.type = 'object';
CREATE INDEX check_reasons_code ON check_reasons (code);
DROP TABLE sessions_v2;

ALTER TABLE subjects RENAME TO subjects_v2;
CREATE TABLE subjects (
    type           TEXT NOT NULL,
    id             TEXT NOT NULL,
    level          TEXT,
    level_at       TEXT,
    level_event_id TEXT,
    PRIMARY KEY (id, type)
);
INSERT INTO subjects (type, id, level, level_at, level_event_id)
SELECT type, id, level, level_at, level_event_id FROM subjects_v2;
-- 00001 kept a row for the subject of every session.
INSERT OR IGNORE INTO subjects (type, id) SELECT DISTINCT subject_type, subject_id FROM sessions;
DROP TABLE subjects_v2;

DROP INDEX deliveries_due;
ALTER TABLE notifications RENAME TO notifications_v2;
ALTER TABLE deliveries RENAME TO deliveries_v2;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_v2;
CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    event_id   TEXT NOT NULL UNIQUE,
    payload    BLOB NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO notifications (id, type, event_id, payload, created_at)
SELECT id, type, event_id, payload, created_at FROM notifications_v2 ORDER BY rowid;
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications (id),
    sink            TEXT NOT NULL,
    state           TEXT NOT NULL, -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    round_attempts  INTEGER NOT NULL DEFAULT 0, -- attempts since creation or the last manual retry
    round_started_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (notification_id, sink)
);
INSERT INTO deliveries (id, notification_id, sink, state, attempts, round_attempts, round_started_at, next_attempt_at,
    lease_owner, lease_until, last_error, created_at, updated_at)
SELECT id, notification_id, sink, state, attempts, round_attempts, round_started_at, next_attempt_at,
    lease_owner, lease_until, last_error, created_at, updated_at
FROM deliveries_v2 ORDER BY rowid;
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_notification ON deliveries (notification_id);
CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    attempt     INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    status_code INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, status_code, error)
SELECT delivery_id, attempt, started_at, duration_ms, outcome, status_code, error FROM delivery_attempts_v2;
DROP TABLE delivery_attempts_v2;
DROP TABLE deliveries_v2;
DROP TABLE notifications_v2;
