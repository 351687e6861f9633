-- +goose Up
-- Times are TEXT in one fixed-width UTC form (2006-01-02T15:04:05.000000000Z)
-- so they sort as strings and read as dates.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

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
CREATE INDEX events_type_received ON events (type, received_at);
CREATE INDEX events_received ON events (received_at);

CREATE TABLE subjects (
    type           TEXT NOT NULL,
    id             TEXT NOT NULL,
    level          TEXT,
    level_at       TEXT,
    level_event_id TEXT,
    PRIMARY KEY (id, type)
);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    status          TEXT NOT NULL,
    status_at       TEXT NOT NULL,
    status_event_id TEXT NOT NULL
);
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

CREATE TABLE session_checks (
    session_id TEXT NOT NULL,
    position   INTEGER NOT NULL,
    type       TEXT NOT NULL,
    state      TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);

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
CREATE INDEX check_reasons_code ON check_reasons (code);

CREATE TABLE quarantine (
    id            TEXT PRIMARY KEY,
    received_at   TEXT NOT NULL,
    reason        TEXT NOT NULL,
    problem       TEXT NOT NULL,
    event_id      TEXT,
    body          BLOB NOT NULL,
    original_body BLOB,
    replayed_at   TEXT,
    replay_result TEXT
);
CREATE INDEX quarantine_received ON quarantine (received_at);

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    event_id   TEXT NOT NULL UNIQUE,
    payload    BLOB NOT NULL,
    created_at TEXT NOT NULL
);

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

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE notifications;
DROP TABLE quarantine;
DROP TABLE check_reasons;
DROP TABLE session_checks;
DROP TABLE session_history;
DROP TABLE sessions;
DROP TABLE subjects;
DROP TABLE events;
DROP TABLE settings;
