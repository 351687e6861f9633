-- +goose Up
-- Runs of kycd reconcile / serve --reconcile-every.
CREATE TABLE reconciliations (
    id          text COLLATE "C" PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    state       text NOT NULL,
    users       integer NOT NULL,
    checked     integer NOT NULL,
    drift       integer NOT NULL,
    repaired    json NOT NULL,
    errors      json NOT NULL,
    cursor      text COLLATE "C" NOT NULL
);
CREATE INDEX reconciliations_started ON reconciliations (started_at);

-- +goose Down
DROP TABLE reconciliations;
