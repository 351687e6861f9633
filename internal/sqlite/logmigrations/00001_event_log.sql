-- +goose Up
-- The event log: every signed, valid body, committed before the webhook is
-- answered. It is a file of its own (the main file's path + "-log") so that
-- appending to it never waits for the projection's write lock.
-- seq is the rowid without AUTOINCREMENT: one writer appends max(seq)+1 and
-- no row is ever deleted, so seqs grow in commit order. No other index: an
-- append writes the table's last page and nothing else.
CREATE TABLE event_log (
    seq         INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body        BLOB,            -- NULL once purged by retention
    body_hash   TEXT NOT NULL
);

-- +goose Down
DROP TABLE event_log;
