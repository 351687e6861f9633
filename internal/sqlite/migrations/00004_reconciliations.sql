-- +goose Up
-- Runs of kycd reconcile / serve --reconcile-every. repaired and errors are
-- JSON arrays of strings.
CREATE TABLE reconciliations (
    id          TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    state       TEXT NOT NULL,
    users       INTEGER NOT NULL,
    checked     INTEGER NOT NULL,
    drift       INTEGER NOT NULL,
    repaired    TEXT NOT NULL,
    errors      TEXT NOT NULL,
    cursor      TEXT NOT NULL
);
CREATE INDEX reconciliations_started ON reconciliations (started_at);

-- +goose Down
DROP TABLE reconciliations;
