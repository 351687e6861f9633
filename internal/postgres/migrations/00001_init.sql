-- +goose Up
-- Ids are text in the "C" collation, so they order byte by byte, as Go
-- compares strings: the (timestamp, id) rule must agree everywhere.

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

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
CREATE INDEX events_type_received ON events (type, received_at);
CREATE INDEX events_received ON events (received_at);

CREATE TABLE subjects (
    type           text NOT NULL,
    id             text COLLATE "C" NOT NULL,
    level          text,
    level_at       timestamptz,
    level_event_id text COLLATE "C",
    PRIMARY KEY (id, type)
);

CREATE TABLE sessions (
    id              text COLLATE "C" PRIMARY KEY,
    subject_type    text NOT NULL,
    subject_id      text COLLATE "C" NOT NULL,
    status          text NOT NULL,
    status_at       timestamptz NOT NULL,
    status_event_id text COLLATE "C" NOT NULL
);
CREATE INDEX sessions_subject ON sessions (subject_id);
CREATE INDEX sessions_status ON sessions (status, status_at);
CREATE INDEX sessions_status_at ON sessions (status_at);

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

CREATE TABLE session_checks (
    session_id text COLLATE "C" NOT NULL,
    position   integer NOT NULL,
    type       text NOT NULL,
    state      text NOT NULL,
    PRIMARY KEY (session_id, position)
);

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

CREATE TABLE quarantine (
    id            text COLLATE "C" PRIMARY KEY,
    received_at   timestamptz NOT NULL,
    reason        text NOT NULL,
    problem       text NOT NULL,
    event_id      text COLLATE "C",
    body          bytea NOT NULL,
    original_body bytea,
    replayed_at   timestamptz,
    replay_result text
);
CREATE INDEX quarantine_received ON quarantine (received_at);

CREATE TABLE notifications (
    id         text COLLATE "C" PRIMARY KEY,
    type       text NOT NULL,
    event_id   text COLLATE "C" NOT NULL UNIQUE,
    payload    json NOT NULL, -- json, not jsonb: the bytes sent are the bytes stored
    created_at timestamptz NOT NULL
);

CREATE TABLE deliveries (
    id               text COLLATE "C" PRIMARY KEY,
    notification_id  text COLLATE "C" NOT NULL REFERENCES notifications (id),
    sink             text NOT NULL,
    state            text NOT NULL, -- pending | delivered | dead
    attempts         integer NOT NULL DEFAULT 0,
    round_attempts   integer NOT NULL DEFAULT 0,
    round_started_at timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (notification_id, sink)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);

CREATE TABLE delivery_attempts (
    delivery_id text COLLATE "C" NOT NULL REFERENCES deliveries (id),
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms bigint NOT NULL,
    outcome     text NOT NULL,
    status_code integer,
    error       text,
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
